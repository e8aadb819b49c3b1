"""How the CLI prints: rich tables and `name: value` lines for people, JSON with --json, errors
as one line.

rich and orjson are imported where they are used: `keygate call` prints through here and must
start fast (see `main.py`).
"""

from __future__ import annotations

import sys
from collections.abc import Collection, Mapping, Sequence
from typing import Any, NoReturn

NONE = "<none>"


def emit_json(data: Any) -> None:
    """Print JSON for scripts."""
    import orjson

    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def plain(value: Any) -> str:
    """A value as a person reads it: no Python reprs (None, True, ['a'])."""
    if value is None:
        return NONE
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(plain(v) for v in value) if value else NONE
    return str(value)


def emit_table(
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    whole: Collection[str] = (),
) -> None:
    """Print a table for people; the `whole` columns (ids) are never cut, others wrap."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title)
    for index, column in enumerate(columns):
        if column in whole:
            # A person copies these from the table: no ellipsis, no wrapping, whatever the width.
            width = max([len(column), *(len(plain(row[index])) for row in rows)])
            table.add_column(column, no_wrap=True, min_width=width)
        else:
            table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if v is None else escape(plain(v)) for v in row))
    # Made per call, so the width follows COLUMNS and the terminal of this run.
    Console().print(table)


def emit_fields(view: Mapping[str, Any], indent: int = 0) -> None:
    """Print `name: value` lines for people, nested mappings indented beneath their name."""
    pad = "  " * indent
    for key, value in view.items():
        if isinstance(value, Mapping) and value:
            print(f"{pad}{key}:")
            emit_fields(value, indent + 1)
        else:
            print(f"{pad}{key}: {NONE if isinstance(value, Mapping) else plain(value)}")


def fail(message: str, code: int = 1) -> NoReturn:
    """Print a one-line error and exit non-zero."""
    from rich.console import Console
    from rich.markup import escape

    # One line whatever the message holds (YAML or validation errors span lines) and however
    # narrow the terminal; escaped so brackets in the message are not taken for markup.
    line = " ".join(message.split())
    Console(stderr=True).print(f"[red]error:[/red] {escape(line)}", highlight=False, soft_wrap=True)
    # SystemExit, not a click or typer Exit: the click root and typer commands both pass it on.
    raise SystemExit(code)
