"""The demo data a Klaviyo sandbox starts with in `keygate sandbox` and `serve --sandbox`.

Fixed ids, so the README's tour shows the same output on every machine.
"""

from __future__ import annotations

from keygate.sandbox.klaviyo.store import KlaviyoState, Profile, ProfileList

_PROFILES = (
    (
        "01JD2QG8Y4K3M5N7P9R1S3T5V7",
        {
            "email": "sarah.mason@example.com",
            "phone_number": "+16175550101",
            "first_name": "Sarah",
            "last_name": "Mason",
            "organization": "Mason Bakery",
            "location": {"city": "Boston", "region": "MA", "country": "United States"},
            "properties": {"favorite_product": "Sourdough"},
        },
    ),
    (
        "01JD2QG8Y4K3M5N7P9R1S3T5V8",
        {
            "email": "diego.ramirez@example.com",
            "first_name": "Diego",
            "last_name": "Ramírez",
            "location": {"city": "Austin", "region": "TX", "country": "United States"},
            "properties": {"loyalty_tier": "gold"},
        },
    ),
    (
        "01JD2QG8Y4K3M5N7P9R1S3T5V9",
        {
            "email": "amara.okafor@example.com",
            "first_name": "Amara",
            "last_name": "Okafor",
            "title": "Head of Marketing",
            "organization": "Okafor & Co",
        },
    ),
)

_LISTS = (
    ("Xs7Hq2", "Newsletter", "double_opt_in", ("V7", "V8", "V9")),
    ("Rt4Lm9", "VIP Customers", "single_opt_in", ("V8",)),
)


def seed_demo_data(state: KlaviyoState) -> None:
    """Add three profiles and two lists (everyone on Newsletter, one VIP)."""
    now = state.timestamp()
    for profile_id, attributes in _PROFILES:
        state.profiles[profile_id] = Profile(profile_id, dict(attributes), now, now)
    for list_id, name, opt_in, members in _LISTS:
        item = ProfileList(list_id, name, opt_in, now, now)
        item.members = {f"01JD2QG8Y4K3M5N7P9R1S3T5{suffix}": now for suffix in members}
        state.lists[list_id] = item
