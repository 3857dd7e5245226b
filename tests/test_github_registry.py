"""Just-in-time runner registration against the GitHub stand-in (REST checked against GitHub's description)."""

from __future__ import annotations

import base64
import json

import pytest

from cml_action.errors import PermissionDenied
from cml_action.runners.github_registry import GitHubRunnerRegistry

REPO = "octo/models"
ADMIN = "ghp_adminTokenForRunnerTests00000000000"
PLAIN = "ghs_workflowTokenWithoutAdministration0"


@pytest.fixture()
def gh(github_standin):
    github_standin.add_repo(REPO)
    github_standin.add_token(ADMIN, {"administration": "write", "actions": "write", "metadata": "read"})
    github_standin.add_token(PLAIN, {"contents": "write", "pull_requests": "write", "metadata": "read"})
    return github_standin


def test_register_list_get_delete_round_trip(gh):
    registry = GitHubRunnerRegistry(gh.api_url, REPO, ADMIN, backoff=0.01)
    reg = registry.register("cml-20261123000000-abcdef", ["cml-20261123000000-abcdef", "cml-cloud-aws", "gpu"])
    assert json.loads(base64.b64decode(reg.secret))[".runner"]["agentName"] == "cml-20261123000000-abcdef"
    listed = registry.list("cml-cloud-aws")
    assert [r.name for r in listed] == ["cml-20261123000000-abcdef"] and not listed[0].online
    assert registry.list("cml-cloud-gcp") == []
    gh.set_runner(REPO, "cml-20261123000000-abcdef", "online")
    assert registry.get(reg.runner_id).online
    registry.delete(reg.runner_id)
    registry.delete(reg.runner_id)  # idempotent
    assert registry.get(reg.runner_id) is None and gh.runners(REPO) == []


def test_a_token_without_administration_is_named_in_the_error(gh):
    registry = GitHubRunnerRegistry(gh.api_url, REPO, PLAIN, backoff=0.01)
    with pytest.raises(PermissionDenied) as err:
        registry.register("cml-20261123000000-abcdef", ["x"])
    assert "administration: write" in str(err.value)


def test_lost_registration_response_is_not_left_behind(gh):
    gh.inject("POST", r"generate-jitconfig$", 502, after=True)  # registered, answer lost
    registry = GitHubRunnerRegistry(gh.api_url, REPO, ADMIN, backoff=0.01)
    reg = registry.register("cml-20261123000000-abcdef", ["cml-20261123000000-abcdef"])
    assert [r.id for r in gh.runners(REPO)] == [int(reg.runner_id)]  # one runner, the one whose config we hold


def test_rerun_only_once_the_run_completed(gh):
    gh.add_run(REPO, 77, conclusion="failure")
    registry = GitHubRunnerRegistry(gh.api_url, REPO, ADMIN, backoff=0.01)
    assert registry.run_completed("77")
    registry.rerun_failed_jobs("77")
    assert gh.repos[REPO].reruns == [77]
