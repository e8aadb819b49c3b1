"""The scenarios of issue 4, each adding its measurements to the run's report, and the targets."""

from __future__ import annotations

import importlib.util
import subprocess
import time
from pathlib import Path

from bench import bodies, instructions, proactive, storm
from bench.cpu import with_cpu
from bench.deploy import KEYGATE, Deployment, Serving, import_connection, make_deployment, serve
from bench.environment import Environment, tree
from bench.nginx import worker_pids
from bench.procs import (
    LOAD_CORE,
    SERVER_CORE,
    affinity,
    free_port,
    free_port_pair,
    pinned,
    wait_for_port,
)
from bench.report import Report, Target, ratio
from bench.state import populate
from bench.wrk import LoadResult, Plan, measure, measure_interleaved

ROOT = Path(__file__).resolve().parent.parent
GATEWAY_PATH = "/klaviyo/api/profiles"
CONNECTIONS = (64, 8)


def _measure(env: Environment, label: str, url: str, conns: int, serving: Serving) -> LoadResult:
    result = measure(
        env.run_dir,
        label,
        url,
        conns,
        env.duration,
        env.warmup,
        env.auth_headers(),
        around=with_cpu(serving.processes),
    )
    _show(result)
    return result


def _show(r: LoadResult) -> None:
    print(
        f"  {r.label:<18} c={r.connections:<3} {r.rps:>9,.0f} req/s  p50 {r.p50_ms:6.2f} ms  "
        f"p99 {r.p99_ms:6.2f} ms  errors {r.errors}  "
        f"cpu/req {r.extra.get('server_cpu_us_per_req', 0):.0f} µs",
        flush=True,
    )


def main_table(env: Environment, report: Report) -> None:
    """direct, nginx, bare, Keygate 1 and 2 workers, at 64 then 8 connections."""
    upstream_pids = worker_pids(env.upstream)
    for conns in CONNECTIONS:
        # Direct: the upstream itself is the server under test, so it moves to the server core.
        with affinity(upstream_pids, SERVER_CORE):
            direct = measure(
                env.run_dir,
                "direct",
                env.upstream.url + "/api/profiles",
                conns,
                env.duration,
                env.warmup,
                env.auth_headers(),
                around=with_cpu(lambda: tree(upstream_pids[0])()),
            )
        _show(direct)
        report.loads.append(direct)
        # The rows the targets compare take turns, so they share the machine's quiet and busy
        # stretches alike (see `measure_interleaved`).
        plans = [
            Plan("nginx", env.proxy.url + "/api/profiles", with_cpu(tree(env.proxy.process.pid))),
            Plan("bare", env.bare_url + "/api/profiles", with_cpu(tree(env.bare.pid))),
            *(
                Plan(f"keygate-{workers}w", serving.url + GATEWAY_PATH, with_cpu(serving.processes))
                for workers, serving in env.keygate.items()
            ),
        ]
        for result in measure_interleaved(
            env.run_dir,
            plans,
            conns,
            env.duration,
            env.warmup,
            env.slices,
            env.auth_headers(),
        ):
            _show(result)
            report.loads.append(result)


def scale_of_state(env: Environment, report: Report) -> None:
    """Keygate (1 worker) with 100,000 connections and 1,000 keys vs one of each."""
    deployment = make_deployment(
        env.run_dir / "keygate-100k", {"KEYGATE_APPS__KLAVIYO__BASE_URL": env.upstream.url}
    )
    started = time.monotonic()
    made = populate(
        str(deployment.data_dir),
        f"sqlite+aiosqlite:///{deployment.data_dir / 'keygate.db'}",
        connections=100_000,
        keys=1_000,
        token="upstream-token",  # noqa: S106 - the fake token nginx ignores
    )
    deployment.connection_id = made.connection_id
    print(f"  populated 100,000 connections, 1,000 keys in {time.monotonic() - started:.0f} s")
    big = serve(env.sup, deployment, "keygate-100k", free_port(), 1)
    # The two take turns, like the main table's rows (see `measure_interleaved`).
    small, large = measure_interleaved(
        env.run_dir,
        [
            Plan(
                "keygate-1w-1-conn",
                env.keygate[1].url + GATEWAY_PATH,
                with_cpu(env.keygate[1].processes),
                env.auth_headers(env.deployment),
            ),
            Plan(
                "keygate-1w-100k-conns",
                big.url + GATEWAY_PATH,
                with_cpu(big.processes),
                env.auth_headers(deployment),
            ),
        ],
        64,
        env.duration,
        env.warmup,
        env.slices,
    )
    env.sup.stop(big.process)
    for result in (small, large):
        _show(result)
        report.loads.append(result)
    report.scenarios["scale"] = {
        "connections": made.connections,
        "keys": made.keys,
        "rps_1_conn": small.rps,
        "rps_100k": large.rps,
        "ratio": ratio(large.rps, small.rps),
        "errors": small.errors + large.errors,
        "cpu_us_per_req_1_conn": small.extra.get("server_cpu_us_per_req"),
        "cpu_us_per_req_100k": large.extra.get("server_cpu_us_per_req"),
        "per_turn": _slice_ratios(large, small),
    }


def big_bodies(env: Environment, report: Report) -> None:
    """1 GB download and 200 MB upload through Keygate (1 worker), RSS growth measured."""
    serving = env.keygate[1]
    worker = serving.workers()[0].pid
    headers = bodies.curl_headers(env.deployment.api_key, env.deployment.connection_id)
    down = bodies.download(serving.url + "/klaviyo/files/big.bin", headers, worker, 1 << 30)
    print(f"  {down.label}: {down.mb_per_s:.0f} MB/s, RSS growth {down.growth_mb:.1f} MB")
    bodies.wait_quiet()
    up = bodies.upload(serving.url + "/klaviyo/upload", headers, worker, env.run_dir / "upload.bin")
    print(f"  {up.label}: {up.mb_per_s:.0f} MB/s, RSS growth {up.growth_mb:.1f} MB")
    report.scenarios["bodies"] = {"transfers": [down.as_dict(), up.as_dict()]}


def postgres(env: Environment, report: Report) -> None:
    """The Keygate rows again on a throwaway PostgreSQL, with two workers."""
    pg_dir = env.run_dir / "pg"
    pg_dir.mkdir()
    pg_dir.chmod(0o755)
    env.run_dir.chmod(0o755)
    script = str(ROOT / "scripts" / "pg.sh")
    url = subprocess.run(
        pinned(LOAD_CORE, [script, "start", str(pg_dir), str(free_port())]),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.strip()

    def stop_postgres() -> None:
        subprocess.run([script, "stop", str(pg_dir)], check=False, timeout=60)

    env.sup.on_exit(stop_postgres)
    deployment = make_deployment(
        env.run_dir / "keygate-pg", {"KEYGATE_APPS__KLAVIYO__BASE_URL": env.upstream.url}, url
    )
    deployment.connection_id = import_connection(deployment, "klaviyo", "upstream-token")
    serving = serve(env.sup, deployment, "keygate-pg-2w", free_port(), 2)
    for conns in CONNECTIONS:
        result = measure(
            env.run_dir,
            "keygate-pg-2w",
            serving.url + GATEWAY_PATH,
            conns,
            env.duration,
            env.warmup,
            env.auth_headers(deployment),
            around=with_cpu(serving.processes),
        )
        _show(result)
        report.loads.append(result)
    env.sup.stop(serving.process)


def refresh_storm(env: Environment, report: Report) -> None:
    """500 concurrent requests on a just-expired token; one token request expected."""
    if importlib.util.find_spec("keygate.oauth.lifecycle") is None:
        report.scenarios["refresh_storm"] = {"status": "not runnable: token refresh not landed"}
        return
    port = free_port_pair()  # Klaviyo's sandbox on port, Constant Contact's on port + 1
    sandbox = env.sup.start(
        "sandbox",
        pinned(
            LOAD_CORE,
            [KEYGATE, "sandbox", "--port", str(port)],
        ),
    )
    wait_for_port(port, 60, sandbox.alive)
    wait_for_port(port + 1, 60, sandbox.alive)
    admin = storm.SandboxAdmin(f"http://127.0.0.1:{port}")
    delay = 0.2
    admin.post("config", {"rate_limit": False})
    admin.post("faults", {"token_endpoint": "slow", "token_delay": delay})
    token_latency = admin.time_token_endpoint("sandbox-client", "sandbox-secret")
    app_env = {
        "KEYGATE_APPS__KLAVIYO__BASE_URL": env.upstream.url,
        "KEYGATE_APPS__KLAVIYO__CLIENT_ID": "sandbox-client",
        "KEYGATE_APPS__KLAVIYO__CLIENT_SECRET": "sandbox-secret",
        "KEYGATE_APPS__KLAVIYO__TOKEN_URL": f"{admin.url}/oauth/token",
        "KEYGATE_APPS__KLAVIYO__AUTHORIZE_URL": f"{admin.url}/oauth/authorize",
        "KEYGATE_REFRESH_MARGIN_SECONDS": "0",
        # The storm measures the on-demand refresh: a background pass must not take it first.
        "KEYGATE_PROACTIVE_REFRESH": "false",
    }
    deployment = make_deployment(env.run_dir / "keygate-storm", app_env)
    log = env.run_dir / "storm.log"
    # The floors, measured with the same burst: the client's (straight to the upstream) and the
    # stack's (the bare pass-through on granian + pyreqwest: no refresh, nothing to wait for).
    floor = storm.burst(f"{env.upstream.url}{GATEWAY_PATH}", [], log)
    runs = [storm.summarise(storm.CLIENT_FLOOR, 0, floor, 0, token_latency)]
    storm.burst(f"{env.bare_url}{GATEWAY_PATH}", [], log, 16)  # warm, like each storm below
    stack = storm.burst(f"{env.bare_url}{GATEWAY_PATH}", [], log)
    runs.append(storm.summarise(storm.STACK_FLOOR, 1, stack, 0, token_latency))
    for workers in (1, 2):
        serving = serve(env.sup, deployment, f"keygate-storm-{workers}w", free_port(), workers)
        runs.append(_one_storm(serving, deployment, admin, workers, token_latency, expired=True))
        runs.append(_one_storm(serving, deployment, admin, workers, token_latency, False))
        env.sup.stop(serving.process)
    admin.close()
    report.scenarios["refresh_storm"] = {
        "status": "ran",
        "token_delay_s": delay,
        "refresh_margin_seconds": 0,
        "runs": [r.as_dict() for r in runs],
    }


def _one_storm(
    serving: Serving,
    deployment: Deployment,
    admin: storm.SandboxAdmin,
    workers: int,
    token_latency: float,
    expired: bool,
) -> storm.StormResult:
    tokens = admin.mint()
    lifetime = 4
    args = ["--refresh-token", tokens["refresh_token"]]
    if expired:
        args += ["--expires-in", str(lifetime)]
    connection_id = import_connection(deployment, "klaviyo", tokens["access_token"], *args)
    headers = [
        ("Authorization", f"Bearer {deployment.api_key}"),
        ("Maton-Connection", connection_id),
    ]
    imported = time.monotonic()
    # Warm every worker's caches on the connection while its token is still valid.
    log = deployment.data_dir / "storm.log"
    warm = storm.burst(serving.url + GATEWAY_PATH, headers, log, 16 * workers)
    if any(status != 200 for status, _ in warm):
        raise RuntimeError(f"warm-up requests failed: {sorted({s for s, _ in warm})}")
    if expired:
        time.sleep(max(0.0, lifetime + 0.3 - (time.monotonic() - imported)))
    before = admin.token_requests()
    results = storm.burst(serving.url + GATEWAY_PATH, headers, log)
    time.sleep(0.5)  # a late duplicate refresh would show up here
    counted = admin.token_requests() - before
    label = storm.EXPIRED if expired else storm.FRESH
    result = storm.summarise(label, workers, results, counted, token_latency)
    print(
        f"  storm {label}, {workers}w: {result.ok}/{result.requests} ok, "
        f"{counted} token request(s), p99 {result.p99_ms:.0f} ms",
        flush=True,
    )
    return result


PROACTIVE_CONNECTIONS = 1000


def proactive_refresh(env: Environment, report: Report) -> None:
    """The background scheduler's cost: CPU per refresh, and its rate against a fleet's need."""
    cost = proactive.measure(env.sup, env.run_dir, PROACTIVE_CONNECTIONS).as_dict()
    for line in proactive.summary_lines(cost):
        print(f"  {line}", flush=True)
    report.scenarios["proactive_refresh"] = cost


def _slice_ratios(a: LoadResult | None, b: LoadResult | None) -> list[float]:
    """a/b requests/s in each interleaved turn (empty when not measured in turns)."""
    if a is None or b is None:
        return []
    turns = int(a.extra.get("slices", 0))
    ratios = []
    for index in range(1, turns + 1):
        top, bottom = a.extra.get(f"slice{index}_rps"), b.extra.get(f"slice{index}_rps")
        if top and bottom:
            ratios.append(top / bottom)
    return ratios


def instruction_counts(env: Environment, report: Report) -> None:
    """bare, Keygate and Keygate without its access log, in instructions per request."""
    if not instructions.available():
        report.scenarios["instructions"] = {
            "status": "not runnable: valgrind missing (scripts/system-deps.sh bench installs it)"
        }
        return
    counts = instructions.measure_all(env.sup, env.run_dir, env.upstream.url, env.deployment)
    for c in counts:
        print(f"  {c.label:24} {c.per_request:10,.0f} instructions/request", flush=True)
    report.scenarios["instructions"] = {"status": "ran", "counts": [c.as_dict() for c in counts]}


def evaluate(report: Report) -> None:
    """Mark every target of issue 4 met or not from this run's numbers."""
    kg1, nginx64, bare64 = (report.load(n, 64) for n in ("keygate-1w", "nginx", "bare"))
    kg1_8, nginx8 = report.load("keygate-1w", 8), report.load("nginx", 8)
    kg2 = report.load("keygate-2w", 64)
    targets = report.targets

    value = ratio(kg1.rps if kg1 else None, nginx64.rps if nginx64 else None)
    targets.append(
        Target(
            "Keygate(1w)/nginx(1w) @64", "≥ 0.18", value, None if value is None else value >= 0.18
        )
    )
    value = ratio(kg1.rps if kg1 else None, bare64.rps if bare64 else None)
    cpu_ratio = ratio(
        bare64.extra.get("server_cpu_us_per_req") if bare64 else None,
        kg1.extra.get("server_cpu_us_per_req") if kg1 else None,
    )
    details = [f"CPU/req bare÷Keygate {cpu_ratio:.2f}"] if cpu_ratio else []
    per_slice = _slice_ratios(kg1, bare64)
    if per_slice:
        details.append(f"per turn {' '.join(f'{r:.2f}' for r in per_slice)}")
    by_instructions = _instruction_ratio(report)
    if by_instructions is not None:
        details.append(f"by instructions (valgrind, 1 connection) {by_instructions:.3f}")
    detail = "; ".join(details)
    targets.append(
        Target(
            "Keygate(1w)/bare @64",
            "≥ 0.85",
            value,
            None if value is None else value >= 0.85,
            detail,
        )
    )
    value = (kg1_8.p99_ms - nginx8.p99_ms) if kg1_8 and nginx8 else None
    targets.append(
        Target(
            "p99 Keygate(1w) minus nginx @8",
            "≤ 1.5 ms",
            value,
            None if value is None else value <= 1.5,
        )
    )
    one = kg1.extra.get("server_cpu_us_per_req") if kg1 else None
    two = kg2.extra.get("server_cpu_us_per_req") if kg2 else None
    value = ratio(two, one)
    targets.append(
        Target(
            "CPU/req 2 workers ÷ 1 worker @64",
            "within 10 %",
            value,
            None if value is None else abs(value - 1) <= 0.10,
            f"{one:.0f} µs vs {two:.0f} µs" if one and two else "",
        )
    )
    scale = report.scenarios.get("scale", {})
    value = scale.get("ratio")
    cpu_ratio = ratio(scale.get("cpu_us_per_req_1_conn"), scale.get("cpu_us_per_req_100k"))
    scale_details = [f"CPU/req 1 conn ÷ 100k {cpu_ratio:.2f}"] if cpu_ratio else []
    if scale.get("per_turn"):
        scale_details.append(f"per turn {' '.join(f'{r:.2f}' for r in scale['per_turn'])}")
    targets.append(
        Target(
            "100k conns / 1 conn",
            "≥ 0.95",
            value,
            None if value is None else value >= 0.95,
            "; ".join(scale_details),
        )
    )
    transfers = report.scenarios.get("bodies", {}).get("transfers", [])
    down = next((t for t in transfers if t["label"].startswith("download")), None)
    value = down["growth_mb"] if down else None
    targets.append(
        Target(
            "RSS growth, 1 GB download",
            "≤ 50 MB",
            value,
            None if value is None or down is None else value <= 50 and bool(down["ok"]),
        )
    )
    up = next((t for t in transfers if t["label"].startswith("upload")), None)
    if up:
        report.notes.append(
            f"200 MB upload: RSS growth {up['growth_mb']:.1f} MB, {up['mb_per_s']:.0f} MB/s, "
            f"{'ok' if up['ok'] else 'FAILED'} (no target; reported)."
        )
    storm_runs = report.scenarios.get("refresh_storm", {}).get("runs", [])
    report.notes.extend(storm.floor_notes(storm_runs))
    for run in (r for r in storm_runs if r["label"] == storm.EXPIRED):
        bound = run["token_latency_ms"] + 50
        targets.append(
            Target(
                f"Refresh storm {run['workers']}w: token requests",
                "exactly 1",
                run["token_requests"],
                run["token_requests"] == 1,
            )
        )
        targets.append(
            Target(
                f"Refresh storm {run['workers']}w: p99 of 500",
                f"≤ {bound:.0f} ms",
                run["p99_ms"],
                run["p99_ms"] <= bound and run["ok"] == run["requests"],
            )
        )
    if not storm_runs:
        status = report.scenarios.get("refresh_storm", {}).get("status", "not run")
        targets.append(
            Target("Refresh storm", "1 token request, p99 ≤ token + 50 ms", None, None, status)
        )
    cost = report.scenarios.get("proactive_refresh")
    met = None if not cost else cost["headroom"] >= 1 and cost["refreshed"] == cost["connections"]
    targets.append(
        Target(
            "Proactive refresh: 1 worker's rate ÷ 100k conns' 1 h need",
            "≥ 1",
            cost["headroom"] if cost else None,
            met,
            f"{cost['cpu_ms_per_refresh']:.2f} ms CPU/refresh" if cost else "",
        )
    )


def _instruction_ratio(report: Report) -> float | None:
    """bare's instructions per request ÷ Keygate's, when the instructions scenario ran."""
    counts = {
        c["label"]: c["per_request"]
        for c in report.scenarios.get("instructions", {}).get("counts", [])
    }
    return ratio(counts.get("bare"), counts.get("keygate"))
