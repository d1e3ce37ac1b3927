"""chaos: the real stack with processes killed under it."""
