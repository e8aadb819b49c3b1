"""The README's table of built-in apps says what the catalog says (a stale table is a bug)."""

from __future__ import annotations

import re
from pathlib import Path

from keygate.catalog.loader import load_catalog
from keygate.catalog.model import AppSpec

README = Path(__file__).resolve().parents[2] / "README.md"
_FIRST_CODE = re.compile(r"`([^`]+)`")


def table_rows() -> dict[str, list[str]]:
    """The rows of the "Built-in apps" table, by app: its cells after the app's name."""
    section = README.read_text().split("### Built-in apps", 1)[1].split("\n### ", 1)[0]
    rows = {}
    for line in section.splitlines():
        if line.startswith("| `"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            name = _FIRST_CODE.match(cells[0])
            assert name is not None, line
            rows[name.group(1)] = cells[1:]
    return rows


def names(cell: str) -> list[str]:
    """The first code span of each ';'-separated entry of a cell (none for '—')."""
    if cell == "—":
        return []
    found = []
    for entry in cell.split(";"):
        match = _FIRST_CODE.search(entry)
        assert match is not None, cell
        found.append(match.group(1))
    return found


def parameters(spec: AppSpec) -> list[str]:
    """Every parameter any method of the app asks for, in declared order, once each."""
    found: list[str] = []
    for method in spec.methods:
        for param in spec.params_for(method):
            if param.name not in found:
                found.append(param.name)
    return found


def test_the_table_lists_every_built_in_app() -> None:
    assert sorted(table_rows()) == sorted(load_catalog())


def test_each_row_shows_the_apps_methods_in_order() -> None:
    rows = table_rows()
    for name, spec in load_catalog().items():
        shown = [entry.split()[0] for entry in rows[name][0].split(";")]
        assert shown == spec.method_names, name


def test_each_row_names_the_parameters_and_learned_values() -> None:
    rows = table_rows()
    for name, spec in load_catalog().items():
        _methods, params, learned, _category = rows[name]
        assert names(params) == parameters(spec), name
        captured = [c for m in spec.methods for c in m.captured_names()]
        assert names(learned) == captured, name


def test_each_row_shows_the_apps_category() -> None:
    rows = table_rows()
    for name, spec in load_catalog().items():
        assert spec.category is not None, name
        assert rows[name][3] == spec.category.value, name
