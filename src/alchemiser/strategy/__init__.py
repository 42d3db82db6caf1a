"""Strategies turn price history into target weights; allocation combines them."""
