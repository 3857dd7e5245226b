"""The fork pattern's trusted half finds the fork's pull request: GitHub sends `workflow_run.pull_requests` empty for a
fork and does not associate the fork's commit with this repository's pull requests, so `publish` looks the pull
request up by the event's `head_repository.owner.login` and `head_branch` (`GET /repos/{o}/{r}/pulls?head=owner:branch`)
and keeps it only while its head is the commit the run trained. Nothing comes from the artifact."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from repo_helpers import example_repo, git, run_cli
from test_github_e2e import OWNER_REPO, READ_ONLY, actions_env, gh, issue_comments, pr_payload, report_args  # noqa: F401


def _artifact(gh, tmp_path: Path) -> tuple[Path, str]:
    """The untrusted job's report, downloaded into an otherwise empty workspace, and the commit it trained."""
    repo = example_repo(tmp_path)
    head = git(repo, "rev-parse", "HEAD")
    untrusted = actions_env(gh, repo, tmp_path, "pull_request", pr_payload(21, head), sha="a" * 40, token=READ_ONLY)
    out = run_cli(repo, "report", *report_args("--target", "none"), env=untrusted)
    assert out.returncode == 0, out.stderr
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    shutil.copytree(repo / "cml-report", trusted / "cml-report")
    return trusted, head


def _fork_run(head: str, owner: str = "forker") -> dict:
    """A workflow_run event as GitHub sends it for a pull request from a fork: `pull_requests` is empty."""
    return {"workflow_run": {"id": 99, "event": "pull_request", "head_sha": head, "head_branch": "feature",
                             "pull_requests": [],
                             "head_repository": {"full_name": f"{owner}/models", "owner": {"login": owner}},
                             "repository": {"full_name": OWNER_REPO}}}


def _publish(gh, trusted: Path, tmp_path: Path, event: dict):
    env = actions_env(gh, trusted, tmp_path, "workflow_run", event, sha="c" * 40, ref_name="main")
    env["INPUT_COMMAND"] = "publish"
    env["INPUT_REPORT"] = "cml-report"
    return run_cli(trusted, env=env)


def _commit_comments(gh) -> list[dict]:
    return [c for c in gh.repos[OWNER_REPO].comments.values() if c["_on"][0] == "commit"]


def test_publish_finds_the_forks_pull_request_from_the_trusted_event(gh, tmp_path: Path):
    trusted, head = _artifact(gh, tmp_path)
    gh.add_pull(OWNER_REPO, 21, head_sha=head, head_ref="feature", base_ref="main", head_repo="forker/models")
    # another fork's pull request from a branch of the same name, even at the same commit, is not this run's
    gh.add_pull(OWNER_REPO, 22, head_sha=head, head_ref="feature", base_ref="main", head_repo="mallory/models")
    # the artifact cannot steer the comment: a report.json naming another pull request is ignored
    meta = trusted / "cml-report" / "report.json"
    data = json.loads(meta.read_text()) if meta.is_file() else {}
    meta.write_text(json.dumps({**data, "pr": 22, "pull_request": 22, "target": "pr#22"}))
    out = _publish(gh, trusted, tmp_path, _fork_run(head))
    assert out.returncode == 0, out.stderr
    (comment,) = issue_comments(gh, 21)
    assert "## Model report" in comment["body"]
    assert issue_comments(gh, 22) == [] and _commit_comments(gh) == []
    listed = [r for r in gh.requests if r.method == "GET" and r.path.endswith(f"/repos/{OWNER_REPO}/pulls")]
    assert [(r.query.get("head"), r.query.get("state")) for r in listed] == [(["forker:feature"], ["open"])]

    # the fork pushes again; a late run for the old commit must not put its stale report on the pull request
    gh.repos[OWNER_REPO].pulls[21]["head_sha"] = "e" * 40
    out = _publish(gh, trusted, tmp_path, _fork_run(head))
    assert out.returncode == 0, out.stderr
    assert issue_comments(gh, 21) == [comment]
    (stale,) = _commit_comments(gh)
    assert stale["_on"] == ("commit", head)


def test_the_head_to_look_up_comes_from_the_event_only(tmp_path: Path):
    from cml_action.ci.context import detect

    def head(run: dict) -> str:
        event = tmp_path / "event.json"
        event.write_text(json.dumps({"workflow_run": run}))
        return detect({"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": OWNER_REPO, "GITHUB_EVENT_PATH": str(event)},
                      tmp_path).head_label

    assert head(_fork_run("a" * 40)["workflow_run"]) == "forker:feature"
    assert head({"head_sha": "a" * 40, "head_branch": "feature"}) == ""  # no head repository named: no lookup
    assert head({"head_sha": "a" * 40, "head_repository": {"owner": {"login": "forker"}}}) == ""
    assert head({"head_sha": "a" * 40, "head_branch": ["x"], "head_repository": {"owner": {"login": "forker"}}}) == ""
