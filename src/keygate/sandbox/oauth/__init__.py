"""The sandboxes' OAuth 2.0 authorization server, shared by every provider sandbox.

Authorization code (with or without PKCE), refresh, revocation and the device flow, shaped per
provider by an `OAuthProfile` (`keygate.sandbox.state`).
"""
