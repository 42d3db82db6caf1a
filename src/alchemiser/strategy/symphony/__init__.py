"""Symphonies: Composer-style strategy trees read from their exported text."""
