"""GitLab runner authentication tokens against the GitLab stand-in: create, find by tag, delete, retry."""

from __future__ import annotations

from pathlib import Path

import pytest

from cml_action.ci.context import detect
from cml_action.errors import PermissionDenied
from cml_action.runners.gitlab_registry import GitLabRunnerRegistry

PID = 42


@pytest.fixture()
def gl(gitlab_standin):
    gitlab_standin.add_project(PID, "ml/models")
    gitlab_standin.add_token("glpat-runners", ("create_runner", "manage_runner", "read_api"))
    gitlab_standin.add_token("glpat-reader", ("read_api",))
    gitlab_standin.add_token("glpat-api", ("api",))
    return gitlab_standin


def ctx(gl):
    return detect({"GITLAB_CI": "true", "CI_API_V4_URL": gl.api_url, "CI_PROJECT_ID": str(PID),
                   "CI_SERVER_URL": gl.server_url, "CI_PROJECT_PATH": "ml/models"}, Path("."))


def test_create_find_delete(gl):
    registry = GitLabRunnerRegistry(ctx(gl), "glpat-runners")
    reg = registry.register("cml-20261123000000-abcdef", ["cml-20261123000000-abcdef", "cml-cloud-gcp"])
    assert reg.secret.startswith("glrt-") and reg.kind == "gitlab-token"
    runner = gl.runners[int(reg.runner_id)]
    assert runner.tags == ["cml-20261123000000-abcdef", "cml-cloud-gcp"] and runner.run_untagged is False
    assert [r.name for r in registry.list("cml-cloud-gcp")] == ["cml-20261123000000-abcdef"]
    assert registry.list("cml-cloud-aws") == []
    assert registry.get(reg.runner_id).online is False
    registry.delete(reg.runner_id)
    registry.delete(reg.runner_id)
    assert registry.get(reg.runner_id) is None and gl.runners == {}


def test_a_token_without_create_runner_is_named(gl):
    registry = GitLabRunnerRegistry(ctx(gl), "glpat-reader")
    with pytest.raises(PermissionDenied, match="create_runner"):
        registry.register("cml-20261123000000-abcdef", ["x"])


def test_retry_the_pipeline(gl):
    GitLabRunnerRegistry(ctx(gl), "glpat-api").rerun_failed_jobs("900")
    assert gl.projects[PID].retried == [900]
