"""explorer.data."""
