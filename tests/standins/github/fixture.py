"""The `github_standin` fixture: a fresh GitHub stand-in per test, failing the test on any spec violation."""

from __future__ import annotations

from typing import Iterator

import pytest

from standins.github.server import GitHubStandIn


@pytest.fixture()
def github_standin() -> Iterator[GitHubStandIn]:
    with GitHubStandIn() as standin:
        yield standin
        standin.assert_clean()
