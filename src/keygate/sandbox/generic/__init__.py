"""The generic provider sandbox: any catalog entry played as a provider, from the entry alone.

`provider.py` holds the rules the entry gives (enforced in memory), `app.py` the HTTP face;
`generic_overrides` points Keygate's app at it. The hand-written Klaviyo and Constant Contact
sandboxes stay for their richer behaviour (data, rate limits, faults).
"""

from keygate.catalog.loader import AppOverrides
from keygate.sandbox.generic.app import create_generic_app
from keygate.sandbox.generic.provider import CLIENT_ID, CLIENT_SECRET, ProviderState
from keygate.secret import Secret


def generic_overrides(origin: str) -> AppOverrides:
    """The overrides that send an app's every URL to a generic sandbox at `origin`, with the
    client it has registered."""
    return AppOverrides(
        client_id=CLIENT_ID, client_secret=Secret(CLIENT_SECRET), sandbox_origin=origin
    )


__all__ = ["CLIENT_ID", "CLIENT_SECRET", "ProviderState", "create_generic_app", "generic_overrides"]
