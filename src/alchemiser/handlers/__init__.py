"""Lambda entry points: each parses its input, builds dependencies, calls the service."""
