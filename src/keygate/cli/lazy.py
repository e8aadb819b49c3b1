"""Sub-commands registered by name and imported only when they run.

An agent runs the CLI many times, so start-up is paid on every call: `keygate --help` lists the
commands from their registered one-line help, and `keygate call` imports the call module and
nothing of the server. Each command lives in its own module, named here as "module:attribute".

The attribute is a `click.Command` (the client commands, `call` and `connect`, are written in
click: typer builds a pydantic validator for every parameter when a command runs, ~0.1 s), or
a `typer.Typer` / a typer-annotated function (the operator commands, which import the server
anyway). A typer command runs as a program of its own under `keygate NAME`, with the same plain
help style as the rest.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import click


@dataclass(frozen=True)
class LazyCommand:
    """A sub-command: its name, where it lives ("module:attribute") and its one-line help.

    `help` is what `keygate --help` lists without importing the module; a test checks it is the
    command's own short help, so the two cannot drift apart.
    """

    name: str
    target: str
    help: str


class LazyGroup(click.Group):
    """A click group whose commands come from a `LazyCommand` registry, loaded on first use."""

    registry: tuple[LazyCommand, ...] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loaded: dict[str, click.Command] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command, in registry order."""
        return [e.name for e in self.registry]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command, importing its module the first time it is asked for."""
        entry = next((e for e in self.registry if e.name == cmd_name), None)
        if entry is None:
            return None
        if cmd_name not in self._loaded:
            self._loaded[cmd_name] = load_command(entry)
        return self._loaded[cmd_name]

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List the commands with their registered help, importing none of them."""
        with formatter.section("Commands"):
            formatter.write_dl([(e.name, e.help) for e in self.registry])

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """Find the command; a mistyped name is answered with the closest real ones."""
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            from difflib import get_close_matches

            matches = get_close_matches(args[0], self.list_commands(ctx)) if args else []
            if not matches:
                raise
            suggestions = ", ".join(repr(m) for m in matches)
            message = f"{exc.message.rstrip('.')}. Did you mean {suggestions}?"
            raise click.UsageError(message, ctx=exc.ctx) from None


def load_command(entry: LazyCommand) -> click.Command:
    """Import the entry's module; its click command, or a typer one wrapped to run under it."""
    module_name, _, attribute = entry.target.partition(":")
    target = getattr(importlib.import_module(module_name), attribute)
    if isinstance(target, click.Command):
        target.name = entry.name
        return target
    return _typer_command(entry, target)


def _typer_command(entry: LazyCommand, target: Any) -> click.Command:
    """A click command that hands its arguments to a typer Typer or function, run whole."""
    import typer
    import typer.main

    # A throwaway parent gives the typer command the root's plain help style, as add_typer
    # would, and no completion options.
    parent = typer.Typer(rich_markup_mode=None, pretty_exceptions_enable=False)
    if isinstance(target, typer.Typer):
        parent.add_typer(target, name=entry.name)
        inner = typer.main.get_command(parent).commands[entry.name]  # type: ignore[attr-defined]
    else:
        parent.command(entry.name)(target)
        inner = typer.main.get_command(parent)

    @click.pass_context
    def run(ctx: click.Context, args: tuple[str, ...]) -> None:
        # Typer's main exits itself (SystemExit with the command's status), as a program does.
        inner.main(args=list(args), prog_name=ctx.command_path)

    return click.Command(
        entry.name,
        callback=run,
        params=[click.Argument(["args"], nargs=-1, type=click.UNPROCESSED)],
        help=entry.help,
        add_help_option=False,
        context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
    )
