"""Package data: the embedded default configuration."""
