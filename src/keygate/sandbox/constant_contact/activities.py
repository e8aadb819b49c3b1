"""The activity objects Constant Contact answers asynchronous deletes with (202)."""

from __future__ import annotations

from typing import Any

from keygate.sandbox.constant_contact.store import new_id


def finished_activity(now: str, *, with_status: bool) -> dict[str, Any]:
    """Return an activity record for a delete the sandbox already carried out."""
    activity_id = new_id()
    body: dict[str, Any] = {
        "activity_id": activity_id,
        "state": "initialized",
        "created_at": now,
        "updated_at": now,
        "percent_done": 0,
        "activity_errors": [],
    }
    if with_status:
        body["status"] = {"items_total_count": 1, "items_completed_count": 0}
    body["_links"] = {"self": {"href": f"/v3/activities/{activity_id}"}}
    return body
