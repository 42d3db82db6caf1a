"""Order placement, written against the Broker port only."""
