"""AWS adapters: Secrets Manager (credentials)."""
