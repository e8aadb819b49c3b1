"""Client authentication at a token or revocation endpoint (RFC 6749 §2.3.1)."""

from __future__ import annotations

import base64
from urllib.parse import quote

from keygate.secret import Secret


def basic_authorization(client_id: str, client_secret: Secret) -> str:
    """`Authorization: Basic …` with the id and secret form-encoded first, as §2.3.1 says."""
    pair = f"{quote(client_id, safe='')}:{quote(client_secret.reveal(), safe='')}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


def client_credentials(
    style: str, client_id: str, client_secret: Secret | None
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Extra (headers, form fields) for the client: HTTP Basic, or fields in the body."""
    if client_secret is None:
        return [], [("client_id", client_id)]
    if style == "basic":
        return [("Authorization", basic_authorization(client_id, client_secret))], []
    return [], [("client_id", client_id), ("client_secret", client_secret.reveal())]
