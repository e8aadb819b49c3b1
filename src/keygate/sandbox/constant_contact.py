"""The Constant Contact sandbox app: OAuth server, `/v3` endpoints and the admin API."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Route

from keygate.sandbox import cc_account, cc_contacts, cc_custom_fields, cc_lists, cc_tags
from keygate.sandbox.admin import AdminInputError, admin_error_response, admin_routes
from keygate.sandbox.cc_store import CONSTANT_CONTACT_OAUTH, ConstantContactState
from keygate.sandbox.clock import SandboxClock
from keygate.sandbox.config import SandboxConfig
from keygate.sandbox.faults import SandboxStarlette
from keygate.sandbox.oauth_routes import oauth_routes


def constant_contact_routes() -> list[BaseRoute]:
    """Return every route of the Constant Contact sandbox."""
    v3 = [
        ("/account/summary", cc_account.account_summary, "GET"),
        ("/account/emails", cc_account.account_emails, "GET"),
        ("/account/user/privileges", cc_account.user_privileges, "GET"),
        ("/contacts", cc_contacts.list_contacts, "GET"),
        ("/contacts", cc_contacts.create_contact, "POST"),
        ("/contacts/sign_up_form", cc_contacts.sign_up_form, "POST"),
        ("/contacts/counts", cc_contacts.contact_counts, "GET"),
        ("/contacts/{contact_id}", cc_contacts.get_contact, "GET"),
        ("/contacts/{contact_id}", cc_contacts.update_contact, "PUT"),
        ("/contacts/{contact_id}", cc_contacts.delete_contact, "DELETE"),
        ("/contact_lists", cc_lists.list_lists, "GET"),
        ("/contact_lists", cc_lists.create_list, "POST"),
        ("/contact_lists/{list_id}", cc_lists.get_list, "GET"),
        ("/contact_lists/{list_id}", cc_lists.update_list, "PUT"),
        ("/contact_lists/{list_id}", cc_lists.delete_list, "DELETE"),
        ("/contact_tags", cc_tags.list_tags, "GET"),
        ("/contact_tags", cc_tags.create_tag, "POST"),
        ("/contact_tags/{tag_id}", cc_tags.get_tag, "GET"),
        ("/contact_tags/{tag_id}", cc_tags.update_tag, "PUT"),
        ("/contact_tags/{tag_id}", cc_tags.delete_tag, "DELETE"),
        ("/contact_custom_fields", cc_custom_fields.list_custom_fields, "GET"),
        ("/contact_custom_fields", cc_custom_fields.create_custom_field, "POST"),
        ("/contact_custom_fields/{custom_field_id}", cc_custom_fields.get_custom_field, "GET"),
        (
            "/contact_custom_fields/{custom_field_id}",
            cc_custom_fields.delete_custom_field,
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
    app = SandboxStarlette(
        routes=constant_contact_routes(),
        exception_handlers={AdminInputError: admin_error_response},
    )
    app.state.sandbox = ConstantContactState(config, clock)
    return app
