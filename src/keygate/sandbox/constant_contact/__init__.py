"""The Constant Contact sandbox: Okta-style OAuth server and the `/v3` contacts API."""

from keygate.sandbox.constant_contact.app import create_constant_contact_app

__all__ = ["create_constant_contact_app"]
