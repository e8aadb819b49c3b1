"""The SDK's public surface: cheap to import, light in dependencies, one class per error code."""

from __future__ import annotations

import subprocess
import sys

import pytest

import keygate
from keygate import errors as server_errors
from keygate.sdk import errors


def _run(code: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr


def test_import_keygate_loads_the_sdk_only_when_asked() -> None:
    # `keygate --help` imports the package: it must not pay for httpx or the SDK.
    _run(
        "import sys, keygate\n"
        "assert 'httpx' not in sys.modules, 'httpx'\n"
        "assert 'keygate.sdk' not in sys.modules, 'keygate.sdk'\n"
        "from keygate import AsyncKeygate, Keygate\n"
        "assert Keygate.__module__ == 'keygate.sdk.client'\n"
        "assert AsyncKeygate.__module__ == 'keygate.sdk.async_client'\n"
    )


def test_the_sdk_needs_none_of_the_servers_dependencies() -> None:
    _run(
        "import sys, keygate.sdk\n"
        "heavy = {'pydantic', 'fastapi', 'sqlalchemy', 'starlette', 'keygate.errors',"
        " 'keygate.catalog.model'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )


def test_an_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        keygate.no_such_name  # noqa: B018


def _server_codes() -> set[str]:
    codes: set[str] = set()
    pending: list[type[server_errors.KeygateError]] = [server_errors.KeygateError]
    while pending:
        cls = pending.pop()
        codes.add(cls.code)
        pending.extend(cls.__subclasses__())
    return codes


def test_one_sdk_class_per_keygate_error_code() -> None:
    assert set(errors.ERRORS_BY_CODE) == _server_codes()
    for code, cls in errors.ERRORS_BY_CODE.items():
        assert issubclass(cls, errors.GatewayError)
        assert cls.code == code
    assert issubclass(errors.UpstreamError, errors.KeygateError)
    assert not issubclass(errors.UpstreamError, errors.GatewayError)
