"""Fixtures: in-process sandboxes on a frozen clock, with httpx clients bound to them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from keygate.sandbox.clock import SandboxClock
from keygate.sandbox.config import SandboxConfig
from keygate.sandbox.constant_contact.app import create_constant_contact_app
from keygate.sandbox.constant_contact.store import ConstantContactState
from keygate.sandbox.klaviyo.app import create_klaviyo_app
from keygate.sandbox.klaviyo.store import KlaviyoState

REDIRECT_URI = "http://app.test/oauth/callback"
KLAVIYO_ORIGIN = "http://klaviyo.test"
CC_ORIGIN = "http://cc.test"
START = 1_795_897_600.5  # 2026-11-28, half a second into a rate-limit window


@pytest.fixture
def clock() -> SandboxClock:
    """A frozen sandbox clock tests move with `advance`."""
    frozen = SandboxClock()
    frozen.freeze(START)
    return frozen


@pytest.fixture
def config() -> SandboxConfig:
    """A sandbox config with one registered redirect URI."""
    return SandboxConfig(redirect_uris=[REDIRECT_URI])


@pytest.fixture
def klaviyo_app(config: SandboxConfig, clock: SandboxClock) -> Starlette:
    """The Klaviyo sandbox app."""
    return create_klaviyo_app(config.copy(), clock)


@pytest.fixture
def cc_app(config: SandboxConfig, clock: SandboxClock) -> Starlette:
    """The Constant Contact sandbox app."""
    return create_constant_contact_app(config.copy(), clock)


@pytest.fixture
def klaviyo_state(klaviyo_app: Starlette) -> KlaviyoState:
    """The Klaviyo sandbox's state object."""
    state = klaviyo_app.state.sandbox
    assert isinstance(state, KlaviyoState)
    return state


@pytest.fixture
def cc_state(cc_app: Starlette) -> ConstantContactState:
    """The Constant Contact sandbox's state object."""
    state = cc_app.state.sandbox
    assert isinstance(state, ConstantContactState)
    return state


@pytest.fixture
async def klaviyo(klaviyo_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking to the Klaviyo sandbox in-process."""
    transport = httpx.ASGITransport(app=klaviyo_app)
    async with httpx.AsyncClient(transport=transport, base_url=KLAVIYO_ORIGIN) as client:
        yield client


@pytest.fixture
async def cc(cc_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking to the Constant Contact sandbox in-process."""
    transport = httpx.ASGITransport(app=cc_app)
    async with httpx.AsyncClient(transport=transport, base_url=CC_ORIGIN) as client:
        yield client
