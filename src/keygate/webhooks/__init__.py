"""Webhooks: where deliveries may go, and the worker that sends the outbox."""
