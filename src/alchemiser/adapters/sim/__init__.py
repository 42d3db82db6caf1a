"""The simulated exchange and broker: the embedded default, backtests and tests."""
