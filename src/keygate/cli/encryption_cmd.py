"""`keygate encryption`: add, rotate and retire encryption keys; re-encrypt; show which key each
stored row needs.

The key file (see `keygate.crypto`) is edited in place; KEYGATE_ENCRYPTION_KEY cannot be, so
with it set these commands say what to change in it instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from keygate.cli.context import load_settings, run
from keygate.cli.output import emit_json, emit_table, fail

if TYPE_CHECKING:
    from keygate.crypto import KeyFile
    from keygate.runtime import Runtime
    from keygate.settings import Settings

app = typer.Typer(
    help="Encryption keys: add, rotate, re-encrypt, retire; rows per key.", no_args_is_help=True
)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
_HEADINGS = {
    "credentials": "credentials",
    "connect_sessions": "sessions",
    "app_configs": "apps",
    "sandbox_mode": "sandbox",
}
_VARIABLE = "KEYGATE_ENCRYPTION_KEY is set, and a command cannot change it; on every replica, "


def _keys_and_file(settings: Settings) -> tuple[list[bytes], KeyFile | None]:
    from keygate.crypto import load_keys
    from keygate.errors import ConfigurationError

    try:
        return load_keys(settings)
    except ConfigurationError as exc:
        fail(str(exc))


@app.command("add")
def add(json_out: JsonOpt = False) -> None:
    """Add a new key that decrypts but does not encrypt yet (step 1 for a fleet)."""
    import base64

    from keygate.crypto import generate_key, key_id

    settings = load_settings()
    keys, key_file = _keys_and_file(settings)
    new = base64.b64decode(generate_key())
    if key_file is None:
        if json_out:
            emit_json({"added": key_id(new), "key": base64.b64encode(new).decode()})
            return
        typer.echo(_VARIABLE + "append this key to it, after a comma, then restart the replica:")
        typer.echo(base64.b64encode(new).decode())
        return
    key_file.write([*keys, new])
    if json_out:
        emit_json({"added": key_id(new), "current": key_id(keys[0])})
        return
    typer.echo(
        f"Added key {key_id(new)} to {key_file.path} (current is still {key_id(keys[0])}). "
        f"Copy the file to every replica, then 'keygate encryption rotate {key_id(new)}'."
    )


@app.command("rotate")
def rotate(
    key: Annotated[
        str | None,
        typer.Argument(help="Id of an added key to make current (default: add a new one)."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Make a key current: new ciphertexts use it, every key listed still decrypts."""
    import base64

    from keygate.crypto import generate_key, key_id

    settings = load_settings()
    keys, key_file = _keys_and_file(settings)
    ids = [key_id(k) for k in keys]
    if key is None:
        chosen = base64.b64decode(generate_key())
    elif key in ids:
        chosen = keys[ids.index(key)]
    else:
        fail(f"no key {key!r} in the keys ({', '.join(ids)}); 'keygate encryption add' adds one")
    if key_file is None:
        if key is None:
            typer.echo(_VARIABLE + "put this key first in it, before a comma, then restart:")
            typer.echo(base64.b64encode(chosen).decode())
        else:
            typer.echo(_VARIABLE + f"move key {key} first in it, then restart the replica.")
        return
    previous = ids[0]
    key_file.write([chosen, *(k for k in keys if k != chosen)])
    if json_out:
        emit_json({"current": key_id(chosen), "previous": previous})
        return
    typer.echo(
        f"Key {key_id(chosen)} is now current in {key_file.path} (was {previous}); running "
        f"servers reading this file take it up within their cache poll. Next: "
        f"'keygate encryption reencrypt', then 'keygate encryption retire {previous}'."
    )


@app.command("reencrypt")
def reencrypt(
    batch_size: Annotated[int, typer.Option(help="Rows per transaction.", min=1, max=10_000)] = 100,
    json_out: JsonOpt = False,
) -> None:
    """Rewrite every stored ciphertext under the current key, in short batches (safe while
    Keygate serves)."""
    from keygate.store import reencrypt as reencryption

    async def _go(runtime: Runtime) -> tuple[str, reencryption.Reencrypted]:
        from keygate.cli.sandbox_mode import reencrypt_saved_secrets

        done = await reencryption.reencrypt(runtime.db, batch_size=batch_size)
        # The client secrets `serve --sandbox` keeps in the data dir, to put back after.
        saved = reencrypt_saved_secrets(runtime)
        if saved:
            done.rewritten["sandbox_mode"] += saved
        return runtime.cipher.primary_key_id, done

    current, done = run(_go)
    if json_out:
        emit_json(
            {
                "current": current,
                "rewritten": dict(done.rewritten),
                "undecryptable": done.undecryptable,
            }
        )
    else:
        total = sum(done.rewritten.values())
        parts = ", ".join(f"{count} {name}" for name, count in sorted(done.rewritten.items()))
        detail = f" ({parts})" if parts else ""
        typer.echo(f"Re-encrypted {total} rows under key {current}{detail}.")
        for row in done.undecryptable:
            typer.echo(f"Not decryptable with any key listed: {row}", err=True)
    if done.undecryptable:
        raise typer.Exit(1)


async def _usage(runtime: Runtime) -> dict[str, dict[str, int]]:
    """Per key id, the rows (per table) and sandbox-mode secrets that need it."""
    from keygate.cli.sandbox_mode import saved_secret_key_ids
    from keygate.store.reencrypt import rows_by_key

    usage = await rows_by_key(runtime.db)
    for kid, count in saved_secret_key_ids(runtime.settings).items():
        usage.setdefault(kid, {})["sandbox_mode"] = count
    return usage


async def _usage_and_keys(runtime: Runtime) -> tuple[dict[str, dict[str, int]], list[str]]:
    return await _usage(runtime), runtime.cipher.key_ids


@app.command("status")
def status(json_out: JsonOpt = False) -> None:
    """Each key: whether it is current, listed, and how many stored rows still need it."""
    settings = load_settings()
    usage, known = run(_usage_and_keys, settings)
    current = known[0]
    ids = [*known, *sorted(set(usage) - set(known))]
    tables = list(_HEADINGS)
    keys = [
        {
            "id": kid,
            "current": kid == current,
            "listed": kid in known,
            "rows": {name: usage.get(kid, {}).get(name, 0) for name in tables},
            "total": sum(usage.get(kid, {}).values()),
        }
        for kid in ids
    ]
    source = "KEYGATE_ENCRYPTION_KEY" if settings.encryption_key else str(settings.key_file)
    if json_out:
        emit_json({"current": current, "source": source, "keys": keys})
        return
    emit_table(
        f"Encryption keys ({source}); current {current}",
        ["key id", "current", "listed", *(_HEADINGS[name] for name in tables), "total"],
        [
            [
                kid,
                "yes" if kid == current else "",
                "yes" if kid in known else "NO",
                *(usage.get(kid, {}).get(name, 0) for name in tables),
                sum(usage.get(kid, {}).values()),
            ]
            for kid in ids
        ],
        whole=["key id"],
    )


@app.command("retire")
def retire(
    key: Annotated[str, typer.Argument(help="Id of the key to remove.")],
    json_out: JsonOpt = False,
) -> None:
    """Remove a key from the keys; refused while it is current or any row still needs it."""
    from keygate.crypto import key_id

    settings = load_settings()
    keys, key_file = _keys_and_file(settings)
    ids = [key_id(k) for k in keys]
    if key not in ids:
        fail(f"no key {key!r} in the keys ({', '.join(ids)})")
    if key == ids[0]:
        fail(f"key {key} is current: 'keygate encryption rotate' another key first")
    usage = run(_usage, settings)
    needing = sum(usage.get(key, {}).values())
    if needing:
        fail(
            f"{needing} stored rows still need key {key}: run 'keygate encryption reencrypt' "
            f"(after every replica has the rotated keys), then retire it"
        )
    if key_file is None:
        typer.echo(_VARIABLE + f"remove key {key} from it (no stored row needs it), then restart.")
        return
    key_file.write([k for k in keys if key_id(k) != key])
    if json_out:
        emit_json({"retired": key, "current": ids[0]})
        return
    typer.echo(
        f"Retired key {key} from {key_file.path}: no stored row needed it. Copy the file to "
        f"every replica."
    )
