"""The error tree against the contract: every code and status in `API.md`, and the drawing in
`keygate.errors`' docstring, match the classes that exist."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from keygate import errors
from keygate.errors import KeygateError
from tests.support.shared import shared_dir

_SHARED = shared_dir()
_CONTRACT = _SHARED / "spec" / "API.md" if _SHARED else Path("shared/spec/API.md")
_ROW = re.compile(r"^\|\s*(\d{3})\s*\|([^|]+)\|")
_CODE = re.compile(r"`([a-z_]+)`")
_DRAWN = re.compile(r"^    (?P<indent>[│ ]*)(?:[├└]── )?(?P<name>[A-Z]\w+)\s*(?P<status>\d{3})?")


def _tree() -> list[type[KeygateError]]:
    return [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, KeygateError) and cls.__module__ == errors.__name__
    ]


def _leaves() -> list[type[KeygateError]]:
    classes = _tree()
    return [cls for cls in classes if not any(o is not cls and issubclass(o, cls) for o in classes)]


def _contract_codes() -> list[tuple[int, str]]:
    if not _CONTRACT.is_file():
        pytest.skip(f"the contract is not beside the checkout ({_CONTRACT})")
    rows: list[tuple[int, str]] = []
    for line in _CONTRACT.read_text().splitlines():
        match = _ROW.match(line)
        if match:
            rows += [(int(match[1]), code) for code in _CODE.findall(match[2])]
    return rows


def test_the_contract_tables_were_read() -> None:
    # Guards the parser: the gateway error table has a dozen and more rows.
    assert len(_contract_codes()) >= 15


@pytest.mark.parametrize(("status", "code"), _contract_codes() if _CONTRACT.is_file() else [])
def test_every_contract_code_is_an_error_with_that_status(status: int, code: str) -> None:
    matching = [cls for cls in _leaves() if cls.code == code and cls.status == status]
    assert matching, f"the contract names {status} {code}; no error class in keygate.errors has it"


def test_every_leaf_sets_its_own_code_and_status() -> None:
    for cls in _leaves():
        assert "code" in vars(cls) or any(
            "code" in vars(base) for base in cls.__mro__[1:] if base is not KeygateError
        ), cls
        assert "status" in vars(cls) or any(
            "status" in vars(base) for base in cls.__mro__[1:] if base is not KeygateError
        ), cls


def test_the_drawn_tree_is_the_class_tree() -> None:
    """Each class appears in the module docstring under its base, with its status."""
    drawn: dict[str, tuple[str | None, int | None]] = {}
    stack: list[tuple[int, str]] = []
    for line in (errors.__doc__ or "").splitlines():
        match = _DRAWN.match(line)
        if not match or match["name"] not in vars(errors):
            continue
        depth = len(match["indent"]) // 4 + (1 if "──" in line else 0)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parent = stack[-1][1] if stack else None
        drawn[match["name"]] = (parent, int(match["status"]) if match["status"] else None)
        stack.append((depth, match["name"]))
    classes = {cls.__name__: cls for cls in _tree()}
    assert set(drawn) == set(classes), "the docstring and the module list different classes"
    leaves = set(_leaves())
    for name, (parent, status) in drawn.items():
        cls = classes[name]
        if parent is not None:
            assert cls.__bases__[0] is classes[parent], f"{name} is drawn under {parent}"
        if cls in leaves or cls is KeygateError:
            assert status == cls.status, f"{name} is drawn with {status}, has {cls.status}"
