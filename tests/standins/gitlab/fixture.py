"""The `gitlab_standin` fixture: a fresh GitLab stand-in per test, failing the test on any undocumented request."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from standins.gitlab.server import GitLabStandIn


@pytest.fixture()
def gitlab_standin() -> Iterator[GitLabStandIn]:
    with GitLabStandIn() as standin:
        yield standin
        standin.assert_clean()
