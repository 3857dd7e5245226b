"""The core loop end to end against the GitHub stand-in: real git repo, real training, real HTTP.

Every request the entrypoint makes is checked by the stand-in against GitHub's OpenAPI description;
the stand-in fails the test on any violation.
"""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import pytest

from repo_helpers import example_repo, git, run_cli

OWNER_REPO = "octo/models"
TOKEN = "ghs_writeTokenForTests000000000000000"
READ_ONLY = "ghs_readOnlyTokenForTests0000000000000"
PLOTS = "confusion_matrix.png"


@pytest.fixture()
def gh(github_standin):
    github_standin.add_repo(OWNER_REPO, default_branch="main", private=True)
    github_standin.add_token(TOKEN, permissions={"contents": "write", "pull_requests": "write", "issues": "write",
                                                 "checks": "write", "metadata": "read"})
    github_standin.add_token(READ_ONLY, permissions={"contents": "read", "pull_requests": "read", "issues": "read",
                                                     "checks": "read", "metadata": "read"})
    return github_standin


def actions_env(gh, repo: Path, tmp_path: Path, event_name: str, payload: dict, *, sha: str, token: str = TOKEN,
                ref_name: str = "feature") -> dict[str, str]:
    event = tmp_path / f"event-{event_name}.json"
    event.write_text(json.dumps(payload))
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_API_URL": gh.api_url,
        "GITHUB_GRAPHQL_URL": gh.graphql_url,
        "GITHUB_SERVER_URL": gh.server_url,
        "GITHUB_REPOSITORY": OWNER_REPO,
        "GITHUB_EVENT_NAME": event_name,
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_SHA": sha,
        "GITHUB_REF_NAME": ref_name,
        "GITHUB_RUN_ID": "4242",
        "GITHUB_WORKSPACE": str(repo),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        "GITHUB_OUTPUT": str(tmp_path / "output.txt"),
        "INPUT_TOKEN": token,
    }
    if event_name == "pull_request":
        env["GITHUB_HEAD_REF"] = "feature"
        env["GITHUB_BASE_REF"] = "main"
    return env


def pr_payload(number: int, head_sha: str) -> dict:
    return {"pull_request": {"number": number, "head": {"sha": head_sha, "ref": "feature"}, "base": {"ref": "main"}},
            "repository": {"default_branch": "main"}}


def api_get(gh, path: str):
    req = urllib.request.Request(f"{gh.api_url}{path}", headers={"Authorization": f"token {TOKEN}"})
    with urllib.request.urlopen(req) as resp:
        return json.loads(resp.read())


def issue_comments(gh, number: int) -> list[dict]:
    return api_get(gh, f"/repos/{OWNER_REPO}/issues/{number}/comments?per_page=100")


def outputs(tmp_path: Path) -> dict[str, str]:
    text = (tmp_path / "output.txt").read_text()
    return {m.group(1): m.group(3) for m in re.finditer(r"^([\w-]+)<<(\S+)\n(.*?)\n\2$", text, re.M | re.S)}


def report_args(*extra: str) -> list[str]:
    return ["--metrics", "metrics.json", "--params", "params.yaml", "--plots", PLOTS, "--title", "Model report",
            "--notebook-diff", "false", *extra]


def test_pull_request_report_with_image_check_run_and_sticky_update(gh, tmp_path: Path):
    repo = example_repo(tmp_path)
    head = git(repo, "rev-parse", "HEAD")
    gh.add_pull(OWNER_REPO, 7, head_sha=head, head_ref="feature", base_ref="main")
    env = actions_env(gh, repo, tmp_path, "pull_request", pr_payload(7, head), sha="f" * 40)

    out = run_cli(repo, "--run", "python train.py", *report_args("--check", "true"), env=env)
    assert out.returncode == 0, out.stderr
    comments = issue_comments(gh, 7)
    assert len(comments) == 1
    body = comments[0]["body"]
    assert "## Model report" in body and "| Metric | main | head | Change |" in body
    # the image is linked by commit SHA on the assets branch and the link serves exactly the image bytes
    link = re.search(r"!\[confusion_matrix.png\]\((\S+)\)", body).group(1)
    assert re.fullmatch(rf"{re.escape(gh.server_url)}/{OWNER_REPO}/blob/[0-9a-f]{{40}}/\S+confusion_matrix\.png\?raw=true", link)
    with urllib.request.urlopen(link) as resp:
        assert resp.read() == (repo / "confusion_matrix.png").read_bytes()
    # the check run is on the PR head, not on GitHub's merge commit
    check = outputs(tmp_path)["check-url"]
    check_id = check.rstrip("/").rsplit("/", 1)[-1]
    run = api_get(gh, f"/repos/{OWNER_REPO}/check-runs/{check_id}")
    assert run["head_sha"] == head and run["conclusion"] == "neutral"
    assert outputs(tmp_path)["comment-url"] == comments[0]["html_url"]
    assert outputs(tmp_path)["report-path"] == "cml-report/report.md"
    assert link in (tmp_path / "summary.md").read_text()

    # next push: same comment edited, not a second one; and the request budget holds
    (repo / "params.yaml").write_text((repo / "params.yaml").read_text().replace("max_depth: 2", "max_depth: 3"))
    git(repo, "commit", "-qam", "depth 3")
    head2 = git(repo, "rev-parse", "HEAD")
    gh.add_pull(OWNER_REPO, 7, head_sha=head2, head_ref="feature", base_ref="main")
    env = actions_env(gh, repo, tmp_path, "pull_request", pr_payload(7, head2), sha="e" * 40)
    before = len(gh.requests)
    out = run_cli(repo, "--run", "python train.py", *report_args(), env=env)
    assert out.returncode == 0, out.stderr
    made = [(r.method, r.path, r.status) for r in gh.requests[before:]]
    assert len(made) <= 6, made
    comments = issue_comments(gh, 7)
    assert len(comments) == 1 and "| **model.max_depth** | 6 | **3** |" in comments[0]["body"]


def test_push_event_posts_on_the_open_pr_of_the_commit_else_a_commit_comment(gh, tmp_path: Path):
    repo = example_repo(tmp_path)
    head = git(repo, "rev-parse", "HEAD")
    push = {"before": "0" * 40, "repository": {"default_branch": "main"}}
    env = actions_env(gh, repo, tmp_path, "push", push, sha=head)
    out = run_cli(repo, "report", *report_args(), env=env)
    assert out.returncode == 0, out.stderr
    comments = api_get(gh, f"/repos/{OWNER_REPO}/commits/{head}/comments")
    assert len(comments) == 1 and "## Model report" in comments[0]["body"]

    gh.add_pull(OWNER_REPO, 9, head_sha=head, head_ref="feature", base_ref="main")
    out = run_cli(repo, "report", *report_args(), env=env)
    assert out.returncode == 0, out.stderr
    assert len(issue_comments(gh, 9)) == 1
    assert len(api_get(gh, f"/repos/{OWNER_REPO}/commits/{head}/comments")) == 1  # nothing new on the commit


def test_failed_training_is_posted_with_the_log_and_exits_1(gh, tmp_path: Path):
    repo = example_repo(tmp_path)
    head = git(repo, "rev-parse", "HEAD")
    env = actions_env(gh, repo, tmp_path, "pull_request", pr_payload(3, head), sha=head)
    gh.add_pull(OWNER_REPO, 3, head_sha=head, head_ref="feature", base_ref="main")
    out = run_cli(repo, "--run", "echo loading; python -c 'raise SystemExit(\"CUDA out of memory\")'",
                  "--metrics", "metrics.json", "--notebook-diff", "false", env=env)
    assert out.returncode == 1
    body = issue_comments(gh, 3)[0]["body"]
    assert "❌ **training failed** (exit 1)" in body and "CUDA out of memory" in body and "<details>" in body
    assert "::group::Training" in out.stdout and "::endgroup::" in out.stdout


def test_path_escapes_are_refused_and_never_uploaded(gh, tmp_path: Path):
    repo = example_repo(tmp_path)
    head = git(repo, "rev-parse", "HEAD")
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG not for the world")
    (repo / "link.png").symlink_to(secret)
    (repo / "notes.md").write_text("Extra notes ![x](../secret.png) ![y](/proc/self/environ)\n")
    env = actions_env(gh, repo, tmp_path, "pull_request", pr_payload(4, head), sha=head)
    gh.add_pull(OWNER_REPO, 4, head_sha=head, head_ref="feature", base_ref="main")
    out = run_cli(repo, "report", "--metrics", "metrics.json", "--notebook-diff", "false", "--report", "notes.md",
                  "--plots", "link.png ../secret.png /etc/hostname", env=env)
    assert out.returncode == 0, out.stderr
    body = issue_comments(gh, 4)[0]["body"]
    assert body.count("⚠️") >= 5
    assert "symlink pointing outside" in body and "absolute paths are not published" in body
    uploaded = b"".join(r.body for r in gh.requests)
    assert b"not for the world" not in uploaded
    import base64

    assert base64.b64encode(secret.read_bytes()) not in uploaded


def test_oversized_report_is_shortened_for_the_comment_but_whole_in_the_summary(gh, tmp_path: Path):
    repo = example_repo(tmp_path)
    head = git(repo, "rev-parse", "HEAD")
    big = {f"metric_{i:05d}": i / 7 for i in range(4000)}
    (repo / "big.json").write_text(json.dumps(big))
    env = actions_env(gh, repo, tmp_path, "pull_request", pr_payload(5, head), sha=head)
    gh.add_pull(OWNER_REPO, 5, head_sha=head, head_ref="feature", base_ref="main")
    out = run_cli(repo, "report", "--metrics", "big.json", "--notebook-diff", "false", env=env)
    assert out.returncode == 0, out.stderr
    body = issue_comments(gh, 5)[0]["body"]
    assert len(body) <= 65536 and "removed to fit the comment size limit" in body
    summary = (tmp_path / "summary.md").read_text()
    assert "metric_03999" in summary and len(summary) > 65536
    assert "shortened" in out.stdout


def test_lost_responses_and_rate_limits_never_post_twice(gh, tmp_path: Path):
    repo = example_repo(tmp_path)
    head = git(repo, "rev-parse", "HEAD")
    env = actions_env(gh, repo, tmp_path, "pull_request", pr_payload(6, head), sha=head)
    gh.add_pull(OWNER_REPO, 6, head_sha=head, head_ref="feature", base_ref="main")
    gh.inject("POST", r"/issues/6/comments$", 502, after=True)  # created, then the response is lost
    gh.inject("GET", r"/issues/6/comments", 403, headers={"Retry-After": "1"},
              body={"message": "You have exceeded a secondary rate limit."})
    gh.inject("POST", r"graphql$", 502, after=True)  # the image commit lands, its answer does not
    out = run_cli(repo, "report", *report_args(), env=env)
    assert out.returncode == 0, out.stderr
    comments = issue_comments(gh, 6)
    assert len(comments) == 1
    link = re.search(r"!\[confusion_matrix.png\]\((\S+)\)", comments[0]["body"]).group(1)
    with urllib.request.urlopen(link) as resp:
        assert resp.read() == (repo / "confusion_matrix.png").read_bytes()


def test_read_only_token_falls_back_to_the_job_summary_with_exit_0(gh, tmp_path: Path):
    repo = example_repo(tmp_path)
    head = git(repo, "rev-parse", "HEAD")
    env = actions_env(gh, repo, tmp_path, "pull_request", pr_payload(8, head), sha=head, token=READ_ONLY)
    gh.add_pull(OWNER_REPO, 8, head_sha=head, head_ref="feature", base_ref="main")
    out = run_cli(repo, "report", *report_args(), env=env)
    assert out.returncode == 0, out.stderr
    assert issue_comments(gh, 8) == []
    summary = (tmp_path / "summary.md").read_text()
    assert "## Model report" in summary and "lacks `contents: write`" in summary
    assert "::warning::" in out.stdout and "pull-requests: write" in out.stdout
    # the token is masked, and never printed anywhere else
    assert f"::add-mask::{READ_ONLY}" in out.stdout
    assert (out.stdout + out.stderr).count(READ_ONLY) == 1


def test_fork_pattern_publish_posts_the_artifact_on_the_trusted_event_pr(gh, tmp_path: Path):
    repo = example_repo(tmp_path)
    head = git(repo, "rev-parse", "HEAD")
    untrusted = actions_env(gh, repo, tmp_path, "pull_request", pr_payload(11, head), sha="a" * 40, token=READ_ONLY)
    out = run_cli(repo, "report", *report_args("--target", "none"), env=untrusted)
    assert out.returncode == 0, out.stderr
    # the trusted job: an empty workspace holding only the downloaded artifact
    trusted_ws = tmp_path / "trusted"
    (trusted_ws).mkdir()
    import shutil

    shutil.copytree(repo / "cml-report", trusted_ws / "cml-report")
    gh.add_pull(OWNER_REPO, 11, head_sha=head, head_ref="feature", base_ref="main")
    run_event = {"workflow_run": {"id": 99, "event": "pull_request", "head_sha": head, "head_branch": "feature",
                                  "pull_requests": [{"number": 11}]}}
    env = actions_env(gh, trusted_ws, tmp_path, "workflow_run", run_event, sha="c" * 40, ref_name="main")
    env["INPUT_COMMAND"] = "publish"
    env["INPUT_REPORT"] = "cml-report"
    out = run_cli(trusted_ws, env=env)
    assert out.returncode == 0, out.stderr
    body = issue_comments(gh, 11)[0]["body"]
    assert "## Model report" in body and "?raw=true" in body


def test_sticky_comment_is_found_beyond_the_first_page(gh, tmp_path: Path):
    repo = example_repo(tmp_path)
    head = git(repo, "rev-parse", "HEAD")
    gh.add_pull(OWNER_REPO, 12, head_sha=head, head_ref="feature", base_ref="main")
    env = actions_env(gh, repo, tmp_path, "pull_request", pr_payload(12, head), sha=head)
    assert run_cli(repo, "report", *report_args(), env=env).returncode == 0
    for i in range(130):  # a long review after the first report: it is now on page 2 of 100
        gh.add_comment(OWNER_REPO, 12, f"review remark {i}")
    out = run_cli(repo, "report", *report_args(), env=env)
    assert out.returncode == 0, out.stderr
    bodies = [c["body"] for c in gh.repos[OWNER_REPO].comments.values()]
    assert len(bodies) == 131 and sum("## Model report" in b for b in bodies) == 1
    assert "updated the report" in out.stdout
