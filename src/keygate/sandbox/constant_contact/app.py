"""The Constant Contact sandbox app: OAuth server, `/v3` endpoints and the admin API."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Route

from keygate.sandbox.admin import admin_routes, sandbox_app
from keygate.sandbox.clock import SandboxClock
from keygate.sandbox.config import SandboxConfig
from keygate.sandbox.constant_contact import account, contacts, custom_fields, lists, tags
from keygate.sandbox.constant_contact.seed import seed_demo_data
from keygate.sandbox.constant_contact.store import CONSTANT_CONTACT_OAUTH, ConstantContactState
from keygate.sandbox.oauth.routes import oauth_routes


def constant_contact_routes() -> list[BaseRoute]:
    """Return every route of the Constant Contact sandbox."""
    v3 = [
        ("/account/summary", account.account_summary, "GET"),
        ("/account/emails", account.account_emails, "GET"),
        ("/account/user/privileges", account.user_privileges, "GET"),
        ("/contacts", contacts.list_contacts, "GET"),
        ("/contacts", contacts.create_contact, "POST"),
        ("/contacts/sign_up_form", contacts.sign_up_form, "POST"),
        ("/contacts/counts", contacts.contact_counts, "GET"),
        ("/contacts/{contact_id}", contacts.get_contact, "GET"),
        ("/contacts/{contact_id}", contacts.update_contact, "PUT"),
        ("/contacts/{contact_id}", contacts.delete_contact, "DELETE"),
        ("/contact_lists", lists.list_lists, "GET"),
        ("/contact_lists", lists.create_list, "POST"),
        ("/contact_lists/{list_id}", lists.get_list, "GET"),
        ("/contact_lists/{list_id}", lists.update_list, "PUT"),
        ("/contact_lists/{list_id}", lists.delete_list, "DELETE"),
        ("/contact_tags", tags.list_tags, "GET"),
        ("/contact_tags", tags.create_tag, "POST"),
        ("/contact_tags/{tag_id}", tags.get_tag, "GET"),
        ("/contact_tags/{tag_id}", tags.update_tag, "PUT"),
        ("/contact_tags/{tag_id}", tags.delete_tag, "DELETE"),
        ("/contact_custom_fields", custom_fields.list_custom_fields, "GET"),
        ("/contact_custom_fields", custom_fields.create_custom_field, "POST"),
        ("/contact_custom_fields/{custom_field_id}", custom_fields.get_custom_field, "GET"),
        (
            "/contact_custom_fields/{custom_field_id}",
            custom_fields.delete_custom_field,
            "DELETE",
        ),
    ]
    routes: list[BaseRoute] = [*oauth_routes(CONSTANT_CONTACT_OAUTH), *admin_routes()]
    routes += [Route("/v3" + path, endpoint, methods=[method]) for path, endpoint, method in v3]
    return routes


def create_constant_contact_app(
    config: SandboxConfig, clock: SandboxClock | None = None
) -> Starlette:
    """Build the Constant Contact sandbox; its state is `app.state.sandbox`."""
    state = ConstantContactState(config, clock)
    return sandbox_app(constant_contact_routes(), state, seed_demo_data)
