"""explorer.studies."""
