"""Adapters: the concrete implementations of the ports in ``alchemiser.ports``."""
