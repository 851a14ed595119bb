"""explorer.bench."""
