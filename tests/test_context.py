import json
from pathlib import Path

from cml_action.ci.context import detect


def _event(tmp_path: Path, payload: dict) -> str:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(payload))
    return str(path)


def test_pull_request_uses_head_sha_not_the_merge_commit_and_enterprise_urls(tmp_path: Path):
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_REPOSITORY": "octo/ml",
        "GITHUB_SHA": "m" * 40,
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_API_URL": "https://ghe.example.com/api/v3",
        "GITHUB_SERVER_URL": "https://ghe.example.com",
        "GITHUB_RUN_ID": "77",
        "GITHUB_HEAD_REF": "feature",
        "GITHUB_BASE_REF": "main",
        "GITHUB_EVENT_PATH": _event(tmp_path, {"pull_request": {"number": 5, "head": {"sha": "h" * 40}, "base": {"ref": "main"}}}),
    }
    ctx = detect(env, tmp_path)
    assert (ctx.kind, ctx.sha, ctx.pr_number, ctx.base_ref, ctx.ref_name) == ("github", "h" * 40, 5, "main", "feature")
    assert ctx.graphql_url == "https://ghe.example.com/api/graphql"
    assert ctx.run_url == "https://ghe.example.com/octo/ml/actions/runs/77"


def test_push_and_workflow_run(tmp_path: Path):
    base = {"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "o/r", "GITHUB_SHA": "s" * 40}
    push = detect({**base, "GITHUB_EVENT_PATH": _event(tmp_path, {"before": "b" * 40, "repository": {"default_branch": "trunk"}})}, tmp_path)
    assert (push.before_sha, push.default_branch, push.pr_number, push.graphql_url) == ("b" * 40, "trunk", None, "https://api.github.com/graphql")
    new_branch = detect({**base, "GITHUB_EVENT_PATH": _event(tmp_path, {"before": "0" * 40})}, tmp_path)
    assert new_branch.before_sha == ""
    run = detect({**base, "GITHUB_EVENT_PATH": _event(tmp_path, {"workflow_run": {"head_sha": "w" * 40, "head_branch": "f", "pull_requests": [{"number": 9}]}})}, tmp_path)
    assert (run.sha, run.pr_number, run.ref_name) == ("w" * 40, 9, "f")


def test_gitlab_and_local(tmp_path: Path):
    ctx = detect({"GITLAB_CI": "true", "CI_API_V4_URL": "https://git.corp/api/v4", "CI_PROJECT_ID": "12",
                  "CI_COMMIT_SHA": "c" * 40, "CI_MERGE_REQUEST_IID": "3", "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
                  "CI_COMMIT_BEFORE_SHA": "0" * 40}, tmp_path)
    assert (ctx.kind, ctx.api_url, ctx.pr_number, ctx.base_ref, ctx.before_sha) == ("gitlab", "https://git.corp/api/v4", 3, "main", "")
    assert detect({}, tmp_path).kind == "local"


def test_outputs_use_multiline_delimiters(tmp_path: Path):
    out = tmp_path / "out"
    ctx = detect({"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "o/r", "GITHUB_OUTPUT": str(out)}, tmp_path)
    ctx.set_outputs({"a": "one\ntwo"})
    text = out.read_text().splitlines()
    assert text[0].startswith("a<<") and text[1:3] == ["one", "two"] and text[3] == text[0][3:]


def test_gitlab_merged_results_pipeline_describes_the_merge_requests_head(tmp_path: Path):
    env = {"GITLAB_CI": "true", "CI_API_V4_URL": "https://gitlab.example.com/api/v4", "CI_PROJECT_ID": "7",
           "CI_COMMIT_SHA": "m" * 40, "CI_MERGE_REQUEST_SOURCE_BRANCH_SHA": "h" * 40, "CI_MERGE_REQUEST_IID": "3"}
    ctx = detect(env, tmp_path)
    assert ctx.sha == "h" * 40 and ctx.pr_number == 3
    assert ctx.server_url == "https://gitlab.example.com"  # CI_SERVER_URL unset: derived from the API URL
