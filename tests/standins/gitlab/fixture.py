"""The `gitlab_standin` fixture: a fresh GitLab stand-in per test, failing the test on any undocumented request."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from standins.gitlab.server import GitLabStandIn

# python-gitlab's multipart encoder always adds an empty `avatar` part next to `file`; GitLab ignores it
LIBRARY_NOISE = {("POST", "uploads", "avatar")}


@pytest.fixture()
def gitlab_standin() -> Iterator[GitLabStandIn]:
    with GitLabStandIn() as standin:
        yield standin
        standin.assert_clean()
        ours = [p for p in standin.ignored if p not in LIBRARY_NOISE]
        assert not ours, f"parameters GitLab does not document (it would drop them): {ours}"
