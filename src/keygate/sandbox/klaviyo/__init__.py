"""The Klaviyo sandbox: OAuth server, `/api` JSON:API endpoints (accounts, profiles, lists)."""

from keygate.sandbox.klaviyo.app import create_klaviyo_app

__all__ = ["create_klaviyo_app"]
