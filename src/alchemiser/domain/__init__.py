"""Value types of the trading domain: frozen, validated, free of I/O."""
