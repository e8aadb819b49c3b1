"""The skills as served and as exported: Agent Skills front matter, Chinese written as Chinese,
and `keygate skills export` writing exactly what `/apps/{app}/skill` serves."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from keygate.cli.main import app as cli
from tests.support.harness import Tenant
from tests.support.sandboxes import SandboxedKeygate
from tests.support.snippets import fenced_blocks

CJK = re.compile(r"[\u4e00-\u9fff]")


def _served(sandboxed: SandboxedKeygate, lang: str) -> dict[str, str]:
    tenant = sandboxed.tenant()
    texts = {
        name: tenant.http.get(path, params={"lang": lang}).text
        for name, path in [
            *((app, f"/apps/{app}/skill") for app in sorted(sandboxed.keygate.runtime.apps)),
            ("keygate", "/apps/skill"),
        ]
    }
    tenant.close()
    return texts


def _front_matter(text: str) -> dict[str, str]:
    assert text.startswith("---\n")
    head, _, _ = text[4:].partition("\n---\n")
    parsed: dict[str, str] = yaml.safe_load(head)
    return parsed


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_each_skill_has_agent_skills_front_matter(sandboxed: SandboxedKeygate, lang: str) -> None:
    for name, text in _served(sandboxed, lang).items():
        meta = _front_matter(text)
        assert set(meta) == {"name", "description"}
        assert meta["name"] == name  # the folder name, as the format requires
        assert re.fullmatch(r"[a-z0-9-]{1,64}", meta["name"])
        assert 0 < len(meta["description"]) <= 1024
        assert sandboxed.keygate.url in meta["description"]
        assert "KEYGATE_API_KEY" in text
        assert "MATON_API_KEY" in text


def test_the_app_skills_carry_their_catalog(sandboxed: SandboxedKeygate) -> None:
    texts = _served(sandboxed, "en")
    assert "`revision: 2026-01-15`" in texts["klaviyo"]
    assert "| `get_campaigns` | GET | `/klaviyo/api/campaigns` |" in texts["klaviyo"]
    assert "`links.next`" in texts["klaviyo"]
    assert (
        "| `create_or_update_contact` | POST | `/constant-contact/v3/contacts/sign_up_form` |"
        in (texts["constant-contact"])
    )
    assert "`_links.next.href`" in texts["constant-contact"]
    assert '"method": "API_KEY"' in texts["klaviyo"]
    assert "Keygate asks for the scopes `accounts:read`, `profiles:read`," in texts["klaviyo"]
    assert '"method": "API_KEY"' not in texts["constant-contact"]  # OAUTH2 only
    for app in ("klaviyo", "constant-contact"):
        assert f"`{sandboxed.keygate.url}/apps/{app}/skill`" in texts["keygate"]


def test_chinese_skills_have_no_english_prose(sandboxed: SandboxedKeygate) -> None:
    for name, text in _served(sandboxed, "zh").items():
        body = text[4:].partition("\n---\n")[2]
        for _info, code in fenced_blocks(body):
            body = body.replace(code, "")
        for line in body.splitlines():
            # Data rows that start with a name (app, action) hold only names and numbers.
            if not re.search(r"[A-Za-z]{3}", line) or line.startswith(("```", "|---", "| `")):
                continue
            assert CJK.search(line), f"{name}: an English line in the Chinese skill: {line!r}"


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_export_writes_what_is_served(
    sandboxed: SandboxedKeygate, tmp_path: Path, lang: str
) -> None:
    settings = sandboxed.keygate.settings
    env = {
        "KEYGATE_DATA_DIR": str(settings.data_dir),
        "KEYGATE_DATABASE_URL": settings.database_url,
        "KEYGATE_ENCRYPTION_KEY": sandboxed.keygate.encryption_key,
        "KEYGATE_PUBLIC_URL": sandboxed.keygate.url,
    }
    out = tmp_path / "skills"
    done = CliRunner().invoke(cli, ["skills", "export", "--lang", lang, "--out", str(out)], env=env)
    assert done.exit_code == 0, done.output
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    apps = [*sandboxed.keygate.runtime.apps, "keygate"]
    assert written == sorted(f"{name}/SKILL.md" for name in apps)
    for name, text in _served(sandboxed, lang).items():
        assert (out / name / "SKILL.md").read_text(encoding="utf-8") == text

    one = CliRunner().invoke(
        cli, ["skills", "export", "--app", "klaviyo", "--out", str(tmp_path / "one")], env=env
    )
    assert one.exit_code == 0, one.output
    assert [p.name for p in (tmp_path / "one").iterdir()] == ["klaviyo"]
    # Written for this deployment: its connect links' lifetime, as its settings say.
    shorter = {**env, "KEYGATE_SESSION_TTL_SECONDS": "900"}
    done = CliRunner().invoke(
        cli, ["skills", "export", "--lang", lang, "--out", str(tmp_path / "ttl")], env=shorter
    )
    assert done.exit_code == 0, done.output
    said = {"en": "expires after 15 minutes", "zh": "在 15 分钟后过期"}[lang]
    assert said in (tmp_path / "ttl" / "klaviyo" / "SKILL.md").read_text(encoding="utf-8")
    assert said.replace("15", "60") in (out / "klaviyo" / "SKILL.md").read_text(encoding="utf-8")
    refused = CliRunner().invoke(cli, ["skills", "export", "--lang", "fr"], env=env)
    assert refused.exit_code == 1
    assert "--lang must be one of en, zh" in refused.output


def test_the_readme_examples_run(sandboxed: SandboxedKeygate, tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### Skills\n", 1)[1].split("\n## ", 1)[0]
    blocks = [code for info, code in fenced_blocks(section) if info == "bash"]
    assert len(blocks) == 2
    tenant = sandboxed.tenant()
    settings = sandboxed.keygate.settings
    env = {
        "KEYGATE_URL": sandboxed.keygate.url,
        "KEYGATE_API_KEY": tenant.key,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",  # the console script
        "KEYGATE_DATA_DIR": str(settings.data_dir),
        "KEYGATE_DATABASE_URL": settings.database_url,
        "KEYGATE_ENCRYPTION_KEY": sandboxed.keygate.encryption_key,
        "KEYGATE_PUBLIC_URL": sandboxed.keygate.url,
    }
    served = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", blocks[0]],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert served.returncode == 0, served.stderr
    *first, count = served.stdout.splitlines()
    assert first[:2] == ["---", "name: klaviyo"]
    assert first[2].startswith('description: "通过 Keygate 网关')
    assert int(count) == len(sandboxed.keygate.runtime.apps)
    exported = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", blocks[1]],
        env={**os.environ, **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert exported.returncode == 0, exported.stderr
    for folder in ("skills", "skills-zh"):
        names = sorted(p.name for p in (tmp_path / folder).iterdir())
        assert names == sorted([*sandboxed.keygate.runtime.apps, "keygate"])
    assert "接口列表" in (tmp_path / "skills-zh" / "klaviyo" / "SKILL.md").read_text()
    tenant.close()


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_apps_without_endpoints_get_a_skill_too(tenant: Tenant, lang: str) -> None:
    # The test catalog's extra apps list no endpoints and no pagination.
    apps = [a["app"] for a in tenant.http.get("/apps").json()["apps"]]
    for app in apps:
        answer = tenant.http.get(f"/apps/{app}/skill", params={"lang": lang})
        assert answer.status_code == 200, answer.text
        assert _front_matter(answer.text)["name"] == app
        assert answer.text.count("```") % 2 == 0
    general = tenant.http.get("/apps/skill", params={"lang": lang}).text
    assert all(f"| `{app}` |" in general for app in apps)
