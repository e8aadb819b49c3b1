"""`keygate logs [--follow]`, `keygate events` and `keygate webhooks …` against a running
Keygate over HTTP, with KEYGATE_API_KEY."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import orjson

from tests.cli.conftest import KEYGATE, Cli
from tests.record.test_logs_api import wait_for
from tests.support.harness import KeygateHarness, Tenant
from tests.support.upstream import RecordingUpstream


def test_logs_and_events_print_the_workspace_s_record(
    keygate: KeygateHarness, tenant: Tenant, recording: RecordingUpstream, tmp_path: Path
) -> None:
    cli = Cli(tmp_path, None, {"KEYGATE_API_KEY": tenant.key})
    conn = keygate.import_connection(tenant, "klaviyo", {"access_token": "kl"})
    assert tenant.http.get("/klaviyo/api/profiles", params={"page[size]": "5"}).status_code == 200
    wait_for(lambda: tenant.http.get("/logs").json()["logs"])
    out = cli.ok("logs", "--url", keygate.url)
    assert "GET /klaviyo/api/profiles?page[size] 200 (upstream)" in out
    assert f"conn={conn.id}" in out
    assert "5" not in out.split("?page[size]")[1].split()[0]
    [line] = cli.ok("logs", "--url", keygate.url, "--json", "--status", "2xx").splitlines()
    assert orjson.loads(line)["connection_id"] == conn.id
    assert cli.ok("logs", "--url", keygate.url, "--status", "5xx").strip() == ""
    assert "status must be a status class" in cli.fails(
        "logs", "--url", keygate.url, "--status", "500"
    )
    events = cli.ok("events", "--url", keygate.url, "--type", "connection.activated")
    assert f"connection.activated by keygate conn={conn.id}" in events


def test_webhooks_commands(keygate: KeygateHarness, tenant: Tenant, tmp_path: Path) -> None:
    cli = Cli(tmp_path, None, {"KEYGATE_API_KEY": tenant.key})
    created = cli.json(
        "webhooks", "create", "http://127.0.0.1:9/hook", "--event", "connection.created",
        "--url", keygate.url, "--json",
    )  # fmt: skip
    assert created["secret"].startswith("whsec_")
    listed = cli.ok("webhooks", "list", "--url", keygate.url)
    assert created["webhook_id"] in listed
    assert created["secret"] not in listed
    shown = cli.ok("webhooks", "show", created["webhook_id"], "--url", keygate.url)
    assert "http://127.0.0.1:9/hook" in shown
    assert "400" in cli.fails("webhooks", "create", "ftp://x/y", "--url", keygate.url)
    cli.ok("webhooks", "delete", created["webhook_id"], "--url", keygate.url)
    assert "404" in cli.fails("webhooks", "show", created["webhook_id"], "--url", keygate.url)


def test_without_a_key_or_a_server_the_error_is_one_line(tmp_path: Path) -> None:
    assert "KEYGATE_API_KEY" in Cli(tmp_path, None).fails("logs")
    cli = Cli(tmp_path, None, {"KEYGATE_API_KEY": "kg_x", "KEYGATE_PORT": "9"})
    assert "could not reach Keygate" in cli.fails("events")


def test_logs_follow_prints_new_requests_as_they_come(
    keygate: KeygateHarness, tenant: Tenant, recording: RecordingUpstream, tmp_path: Path
) -> None:
    keygate.import_connection(tenant, "klaviyo", {"access_token": "kl"})
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYGATE_")}
    env.update(KEYGATE_API_KEY=tenant.key, KEYGATE_DATA_DIR=str(tmp_path))
    out = tmp_path / "follow.out"
    with out.open("wb") as handle:
        follower = subprocess.Popen(
            [str(KEYGATE), "logs", "--follow", "--json", "--interval", "0.2", "--url", keygate.url],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    try:
        for round_ in range(2):
            assert tenant.http.get(f"/klaviyo/api/round-{round_}").status_code == 200
            wait_for(lambda r=round_: f"/klaviyo/api/round-{r}" in out.read_text(), timeout=60)
        time.sleep(0.5)
        lines = [orjson.loads(x) for x in out.read_text().splitlines()]
        assert [x["path"] for x in lines] == ["/klaviyo/api/round-0", "/klaviyo/api/round-1"]
    finally:
        follower.terminate()
        follower.wait(20)
