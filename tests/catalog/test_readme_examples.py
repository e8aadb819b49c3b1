"""The README's catalog examples are valid catalog files (a doc example that fails is a bug)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from keygate.catalog.auth import render_auth
from keygate.catalog.loader import AppOverrides, configure_app, load_app_file
from keygate.catalog.model import ApiKeyMethod

README = Path(__file__).resolve().parents[2] / "README.md"


def catalog_examples() -> list[str]:
    """The YAML blocks of the README's "Catalog files" section."""
    text = README.read_text()
    section = text.split("### Catalog files", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```yaml\n(.*?)```", section, re.S)


def test_the_full_example_is_a_valid_app_file(tmp_path: Path) -> None:
    full, *_ = catalog_examples()
    path = tmp_path / "weather-api.yaml"
    path.write_text(full)
    spec = load_app_file(path)
    method = spec.methods[0]
    assert isinstance(method, ApiKeyMethod)
    assert render_auth(method, {"api_key": "wk_x"}).headers == (("X-Api-Key", "wk_x"),)


def test_every_inject_example_is_valid() -> None:
    _, *snippets, _params = catalog_examples()
    assert len(snippets) == 4
    fields = [{"name": n, "label": n} for n in ("api_key", "email", "api_token", "account_id")]
    values = {"api_key": "k", "email": "e@x", "api_token": "t", "account_id": "1"}
    for snippet in snippets:
        method = ApiKeyMethod.model_validate(
            {"type": "API_KEY", "fields": fields, **yaml.safe_load(snippet)}
        )
        auth = render_auth(method, values)
        assert auth.headers or auth.query, snippet


def test_the_parameters_example_is_a_valid_app_file(tmp_path: Path) -> None:
    *_, example = catalog_examples()
    path = tmp_path / "help-desk.yaml"
    path.write_text(example)
    spec = load_app_file(path)
    app = configure_app(spec, AppOverrides())
    method = spec.methods[0]
    values = {"subdomain": "acme", "account_id": "1234"}
    assert app.connection_base_url(method, values) == "https://acme.help-desk.example/api/v2"
    assert [p.name for p in spec.params_for(method)] == ["subdomain"]
