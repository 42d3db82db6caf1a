"""Alpaca adapters: broker and market clock (Trading API), prices (Market Data API)."""
