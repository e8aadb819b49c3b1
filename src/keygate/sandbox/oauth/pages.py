"""The small HTML pages of the sandbox authorization servers (consent, device, errors)."""

from __future__ import annotations

from html import escape

from starlette.responses import HTMLResponse

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}"
    "button{font-size:1rem;padding:.5rem 1.2rem;margin-right:.5rem}"
    "li{margin:.2rem 0}.note{color:#666;font-size:.85rem}"
)


def _page(title: str, provider: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{escape(title)} · {escape(provider)} sandbox</title><style>{_STYLE}</style>"
        f"</head><body><h1>{escape(title)}</h1>{body}"
        f"<p class=note>{escape(provider)} sandbox (Keygate test server)</p></body></html>"
    )
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def _scope_list(scopes: tuple[str, ...]) -> str:
    items = "".join(f"<li><code>{escape(scope)}</code></li>" for scope in scopes)
    return f"<ul id=scopes>{items}</ul>"


def _decision_buttons() -> str:
    return (
        '<button id="approve" type="submit" name="decision" value="approve">Approve</button>'
        '<button id="deny" type="submit" name="decision" value="deny">Deny</button>'
    )


def consent_page(
    provider: str, client_name: str, scopes: tuple[str, ...], action: str, request_id: str
) -> HTMLResponse:
    """Render the consent page naming the client app and the scopes it asks for."""
    body = (
        f"<p><strong id=client-name>{escape(client_name)}</strong> wants to access your "
        f"{escape(provider)} account with these permissions:</p>{_scope_list(scopes)}"
        f'<form method="post" action="{escape(action)}">'
        f'<input type="hidden" name="request_id" value="{escape(request_id)}">'
        f"{_decision_buttons()}</form>"
    )
    return _page(f"Authorize {client_name}", provider, body)


def device_page(provider: str, action: str, user_code: str) -> HTMLResponse:
    """Render the page where a person types (or confirms) a device user code."""
    body = (
        "<p>Enter the code shown on your device, then approve or deny the request.</p>"
        f'<form method="post" action="{escape(action)}">'
        f'<label>Code <input id="user_code" name="user_code" value="{escape(user_code)}">'
        f"</label><p>{_decision_buttons()}</p></form>"
    )
    return _page("Activate your device", provider, body)


def message_page(provider: str, title: str, message: str, status: int = 200) -> HTMLResponse:
    """Render a plain result page (device approved, or similar)."""
    return _page(title, provider, f"<p id=message>{escape(message)}</p>", status)


def error_page(provider: str, error: str, message: str, status: int = 400) -> HTMLResponse:
    """Render an error the person sees instead of being redirected (RFC 6749 §4.1.2.1)."""
    body = f"<p id=error><code>{escape(error)}</code>: {escape(message)}</p>"
    return _page("Authorization error", provider, body, status)
