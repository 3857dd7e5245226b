"""The `docker_engine` fixture: the Engine API stand-in over TCP, reached through DOCKER_HOST."""

from __future__ import annotations

from typing import Iterator

import pytest

from standins.docker_engine.server import DockerEngineStandIn


@pytest.fixture()
def docker_engine() -> Iterator[DockerEngineStandIn]:
    with DockerEngineStandIn() as engine:
        yield engine
        engine.assert_clean()
