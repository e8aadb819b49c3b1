"""`keygate skills export`: the agent skills of this deployment, written as skill folders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from keygate.catalog.loader import ConfiguredApp
from keygate.cli.context import load_settings, run
from keygate.cli.output import emit_json, fail
from keygate.runtime import Runtime
from keygate.skills import (
    GENERAL_SKILL,
    LANGUAGES,
    Language,
    render_app_skill,
    render_general_skill,
)


def export(app_name: str | None, lang: str, out: Path, json_out: bool) -> None:
    """Write `OUT/<app>/SKILL.md` for one app, or for every app plus the general skill."""
    if lang not in LANGUAGES:
        fail(f"--lang must be one of {', '.join(LANGUAGES)}, not {lang!r}")
    language: Language = "zh" if lang == "zh" else "en"
    settings = load_settings()

    async def _apps(rt: Runtime) -> dict[str, ConfiguredApp]:
        return dict(rt.apps)

    apps = run(_apps, settings)
    if app_name is not None and app_name not in apps:
        fail(f"unknown app {app_name!r}; 'keygate apps list' shows the apps")
    texts = {
        name: render_app_skill(
            apps[name], settings.public_url, language, link_ttl_seconds=settings.session_ttl_seconds
        )
        for name in sorted(apps)
        if app_name in (None, name)
    }
    if app_name is None:
        texts[GENERAL_SKILL] = render_general_skill(apps, settings.public_url, language)
    written = []
    for name, text in texts.items():
        path = out / name / "SKILL.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(str(path))
    if json_out:
        emit_json({"lang": language, "public_url": settings.public_url, "written": written})
        return
    for path_text in written:
        typer.echo(path_text)


app = typer.Typer(help="Agent skills written for this deployment.", no_args_is_help=True)


@app.callback()
def skills() -> None:
    """Agent skills written for this deployment."""


@app.command("export")
def skills_export(
    app_name: Annotated[
        str | None, typer.Option("--app", help="Only this app (default: every app + keygate).")
    ] = None,
    lang: Annotated[str, typer.Option(help="Language of the texts: en or zh.")] = "en",
    out: Annotated[Path, typer.Option(help="Folder to write <skill>/SKILL.md into.")] = Path(
        "skills"
    ),
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Write the agent skills (Agent Skills format) for this deployment's public URL."""
    export(app_name, lang, out, json_out)
