"""Price history read from local files: the bundled demo set or a user's directory."""
