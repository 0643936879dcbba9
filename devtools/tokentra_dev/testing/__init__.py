"""Test and benchmark fixtures that speak real wire protocols. Never a product code path."""
