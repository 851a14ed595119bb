"""explorer.session."""
