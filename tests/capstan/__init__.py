"""capstan."""
