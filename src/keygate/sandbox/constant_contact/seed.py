"""The demo data a Constant Contact sandbox starts with in `keygate sandbox` and `serve --sandbox`.

Fixed ids, so the README's tour shows the same output on every machine.
"""

from __future__ import annotations

from keygate.sandbox.constant_contact.store import ConstantContactState, Contact, ContactList, Tag

_NEWSLETTER = "4f0f7e2c-1b1a-4c55-9a63-0d5d7c1e2a01"
_CUSTOMERS = "4f0f7e2c-1b1a-4c55-9a63-0d5d7c1e2a02"
_EVENT_2026 = "9b8e3d1a-6c2f-4e7b-8a15-3f2c1d0e9b01"
_WHOLESALE = "9b8e3d1a-6c2f-4e7b-8a15-3f2c1d0e9b02"

_CONTACTS: tuple[tuple[str, str, dict[str, str], list[str], list[str]], ...] = (
    (
        "c3a1d2e4-5f60-4718-9a2b-3c4d5e6f7a01",
        "jordan.lee@example.com",
        {"first_name": "Jordan", "last_name": "Lee", "company_name": "Lee Outdoor Supply"},
        [_NEWSLETTER, _CUSTOMERS],
        [_WHOLESALE],
    ),
    (
        "c3a1d2e4-5f60-4718-9a2b-3c4d5e6f7a02",
        "priya.natarajan@example.com",
        {"first_name": "Priya", "last_name": "Natarajan", "job_title": "Event Planner"},
        [_NEWSLETTER],
        [_EVENT_2026],
    ),
    (
        "c3a1d2e4-5f60-4718-9a2b-3c4d5e6f7a03",
        "tom.becker@example.com",
        {"first_name": "Tom", "last_name": "Becker"},
        [_CUSTOMERS],
        [],
    ),
)


def seed_demo_data(state: ConstantContactState) -> None:
    """Add two lists, two tags and three contacts that belong to them."""
    now = state.timestamp()
    for list_id, name, description in (
        (_NEWSLETTER, "Monthly Newsletter", "Everyone who signed up on the website"),
        (_CUSTOMERS, "Customers", "People who bought something"),
    ):
        state.lists[list_id] = ContactList(list_id, name, description, False, now, now)
    for tag_id, name in ((_EVENT_2026, "Spring Fair 2026"), (_WHOLESALE, "Wholesale")):
        state.tags[tag_id] = Tag(tag_id, name, "Contact", now, now)
    for contact_id, email, fields, lists, tags in _CONTACTS:
        state.contacts[contact_id] = Contact(
            contact_id,
            email,
            "implicit",
            "Contact",
            now,
            now,
            fields=dict(fields),
            list_memberships=list(lists),
            taggings=list(tags),
        )
