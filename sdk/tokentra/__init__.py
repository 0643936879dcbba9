"""TokenTRA SDK."""
