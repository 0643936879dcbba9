"""Every API key and planted prompt text the tests make; the functions log is checked for them at the end."""

SECRETS_SEEN: list[str] = []
