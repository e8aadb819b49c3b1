"""The proxy hot path."""
