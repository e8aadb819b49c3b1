"""The README's client-command examples (`keygate connect`, `keygate call`), run as written
against a live Keygate with the sandboxes and their demo data, their output checked against
what the README shows.

Each `$ ` line of a ```console block runs in bash with only `KEYGATE_URL` and
`KEYGATE_API_KEY` set; a stand-in person approves the connect links (the Klaviyo API-key form,
Constant Contact's consent page) and the browser `--open` starts is a script that records its
link. In the output the README shows, `…` stands for any text, and ids (connection ids,
request ids, session tokens) may differ.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.databases import fresh_database
from tests.support.harness import Tenant
from tests.support.sandboxes import SandboxedKeygate
from tests.support.snippets import Person, fenced_blocks

README = Path(__file__).resolve().parents[2] / "README.md"
README_URL = "http://127.0.0.1:8080"
"""The Keygate URL the README's examples show."""

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_WILDCARDS = {
    "any": ("…", ".*"),
    "uuid": (_UUID, _UUID),
    "hex": (r"\b[0-9a-f]{32}\b", "[0-9a-f]{32}"),
    "token": (r"(?<=session_token=)[\w-]+", r"[\w-]+"),
}
_SHOWN_WILDCARD = re.compile("|".join(f"(?P<{k}>{shown})" for k, (shown, _) in _WILDCARDS.items()))


@dataclass(frozen=True)
class Example:
    """One `$ command` of a console block and the output the README shows under it."""

    command: str
    shown: list[str]


def console_examples(heading: str) -> list[Example]:
    """The `$ ` commands of the ```console blocks of the README section under `heading`."""
    text = README.read_text()
    level = heading.split(" ", 1)[0]
    section = text.split(heading + "\n", 1)[1]
    section = re.split(rf"\n#{{1,{len(level)}}} ", section, maxsplit=1)[0]
    examples: list[Example] = []
    for info, code in fenced_blocks(section):
        if info != "console":
            continue
        for line in code.splitlines():
            if line.startswith("$ "):
                examples.append(Example(line[2:], []))
            else:
                assert examples, f"output before any command: {line!r}"
                examples[-1].shown.append(line)
    return examples


def shown_pattern(line: str, url: str) -> re.Pattern[str]:
    """A line of shown output as a pattern: `…` any text, an id any id of its kind."""
    line = line.replace(README_URL, url)
    parts, at = [], 0
    for found in _SHOWN_WILDCARD.finditer(line):
        kind = found.lastgroup
        assert kind is not None
        parts += [re.escape(line[at : found.start()]), _WILDCARDS[kind][1]]
        at = found.end()
    return re.compile("".join([*parts, re.escape(line[at:])]))


def assert_shows(shown: list[str], out: str, err: str, url: str) -> None:
    """A command printed what the README shows under it: every stdout line, in order (a shown
    line that is only `…` stands for any number of them), and the shown stderr lines in order
    among the stderr lines (in a pipe, unlike on a terminal, progress lines are not rewritten in
    place, so there are more of them)."""
    outs, errs = out.splitlines(), err.splitlines()
    o = e = 0
    skipping = False
    for expected in shown:
        if expected == "…":
            skipping = True
            continue
        pattern = shown_pattern(expected, url)
        found = next(
            (
                i
                for i in range(o, len(outs) if skipping else min(o + 1, len(outs)))
                if pattern.fullmatch(outs[i])
            ),
            None,
        )
        if found is not None:
            o, skipping = found + 1, False
            continue
        found = next((i for i in range(e, len(errs)) if pattern.fullmatch(errs[i])), None)
        assert found is not None, f"{expected!r} not printed\n{out}---\n{err}"
        e = found + 1
    assert skipping or o == len(outs), f"printed more than shown: {outs[o:]}\n{out}---\n{err}"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxedKeygate]:
    """Keygate and sandboxes holding their demo data, as `keygate serve --sandbox` has them."""
    directory = tmp_path_factory.mktemp("keygate-cli-readme")
    made = SandboxedKeygate(
        directory,
        fresh_database(directory, "keygate_cli_readme"),
        sandbox_config={"seed_data": True},
    )
    yield made
    made.stop()


def test_the_client_command_examples_run(demo: SandboxedKeygate, tmp_path: Path) -> None:
    examples = console_examples("### Client commands: connect and call")
    tenant: Tenant = demo.tenant()
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser"
    browser.write_text(f'#!/bin/sh\nprintf "%s\\n" "$1" >> {opened}\n')
    browser.chmod(browser.stat().st_mode | stat.S_IEXEC)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("KEYGATE_", "MATON_"))}
    env = {
        **base,
        "KEYGATE_URL": demo.keygate.url,
        "KEYGATE_API_KEY": tenant.key,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",  # the console script
        "BROWSER": str(browser),
    }
    person = Person(tenant, methods=("API_KEY", "OAUTH2"))
    printed: dict[str, str] = {}
    try:
        for example in examples:
            done = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", example.command],
                env=env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert done.returncode == 0, f"$ {example.command}\n{done.stdout}---\n{done.stderr}"
            assert_shows(example.shown, done.stdout, done.stderr, demo.keygate.url)
            printed[example.command.split(" #")[0].strip()] = done.stdout
    finally:
        person.stop()
    assert [e.command.split()[:2] for e in examples] == [
        ["keygate", "connect"],
        ["keygate", "connect"],
        *[["keygate", "call"]] * 4,
    ]
    assert person.approved == 2
    # `--open` handed the link it printed to the browser.
    link = printed["keygate connect constant-contact --open"].splitlines()[1]
    assert opened.read_text().splitlines() == [link]
    # --max-pages 2 wrote the two pages, one JSON document a line.
    pages = (tmp_path / "pages.jsonl").read_text().splitlines()
    assert [len(json.loads(page)["contacts"]) for page in pages] == [1, 1]
    statuses = tenant.http.get("/connections").json()["connections"]
    assert sorted((c["app"], c["status"]) for c in statuses) == [
        ("constant-contact", "ACTIVE"),
        ("klaviyo", "ACTIVE"),
    ]
    tenant.close()
