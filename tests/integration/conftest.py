"""Fixtures of the integration tests: a real HTTP endpoint on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.integration.http_endpoint import Endpoint


@pytest.fixture
async def endpoint() -> AsyncIterator[Endpoint]:
    """An endpoint answering 200 on every path until told otherwise."""
    server = Endpoint()
    await server.start()
    yield server
    await server.stop()
