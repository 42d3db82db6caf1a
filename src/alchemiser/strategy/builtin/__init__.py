"""Built-in strategies, shipped as symphony files."""
