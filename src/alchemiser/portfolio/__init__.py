"""The pure portfolio core: targets and holdings in, reviewed order intents out."""
