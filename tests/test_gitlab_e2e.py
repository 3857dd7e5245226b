"""The core loop on GitLab end to end: real git repo, real training, python-gitlab over real HTTP to the stand-in."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest

from repo_helpers import example_repo, git, run_cli

PID = 42
PATH = "ml/models"
TOKEN = "glpat-writeTokenForTests0000"
READ_ONLY = "glpat-readOnlyTokenForTests00"
JOB = "glcbt-jobTokenForTests000000"


@pytest.fixture()
def gl(gitlab_standin):
    gitlab_standin.add_project(PID, PATH)
    gitlab_standin.add_token(TOKEN, ("api",))
    gitlab_standin.add_token(READ_ONLY, ("read_api",))
    gitlab_standin.add_token(JOB, (), kind="job")
    return gitlab_standin


def gitlab_env(gl, repo: Path, *, sha: str, mr_iid: int | None = None, token: str | None = TOKEN,
               job_token: str = JOB) -> dict[str, str]:
    env = {
        "GITLAB_CI": "true", "CI": "true", "CI_API_V4_URL": gl.api_url, "CI_SERVER_URL": gl.server_url,
        "CI_PROJECT_ID": str(PID), "CI_PROJECT_PATH": PATH, "CI_COMMIT_SHA": sha, "CI_COMMIT_REF_NAME": "feature",
        "CI_DEFAULT_BRANCH": "main", "CI_PIPELINE_ID": "900", "CI_JOB_URL": f"{gl.server_url}/{PATH}/-/jobs/1",
        "CI_PIPELINE_SOURCE": "merge_request_event" if mr_iid else "push", "CI_JOB_TOKEN": job_token,
    }
    if mr_iid:
        env.update({"CI_MERGE_REQUEST_IID": str(mr_iid), "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
                    "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature"})
    if token:
        env["CML_TOKEN"] = token
    return env


ARGS = ("--metrics", "metrics.json", "--params", "params.yaml", "--plots", "confusion_matrix.png", "--title",
        "Model report", "--notebook-diff", "false")


def test_merge_request_note_with_uploaded_image_updated_in_place(gl, tmp_path: Path):
    repo = example_repo(tmp_path)
    head = git(repo, "rev-parse", "HEAD")
    gl.add_mr(PID, 5, head)
    for i in range(25):  # older discussion: the sticky note must be found beyond the first page
        gl.add_note(PID, "mr", 5, f"review comment {i}")
    out = run_cli(repo, "--run", "python train.py", *ARGS, env=gitlab_env(gl, repo, sha=head, mr_iid=5))
    assert out.returncode == 0, out.stderr
    ours = [n for n in gl.notes(PID, "mr", 5) if "## Model report" in n["body"]]
    assert len(ours) == 1
    link = re.search(r"!\[confusion_matrix.png\]\((\S+)\)", ours[0]["body"]).group(1)
    assert link.startswith(f"{gl.server_url}/{PATH}/uploads/")  # absolute: also works outside GitLab's renderer
    with urllib.request.urlopen(link) as resp:
        assert resp.read() == (repo / "confusion_matrix.png").read_bytes()
    assert "section_start:" in out.stdout and "| Metric |" in out.stdout  # report in the job log, folded
    for i in range(3):
        gl.add_note(PID, "mr", 5, f"newer comment {i}")
    out = run_cli(repo, "report", *ARGS, env=gitlab_env(gl, repo, sha=head, mr_iid=5))
    assert out.returncode == 0, out.stderr
    assert len([n for n in gl.notes(PID, "mr", 5) if "## Model report" in n["body"]]) == 1


def test_branch_pipeline_posts_a_commit_comment_or_on_the_open_mr(gl, tmp_path: Path):
    repo = example_repo(tmp_path)
    head = git(repo, "rev-parse", "HEAD")
    out = run_cli(repo, "report", *ARGS, env=gitlab_env(gl, repo, sha=head))
    assert out.returncode == 0, out.stderr
    comments = gl.projects[PID].commit_comments[head]
    assert len(comments) == 1 and "## Model report" in comments[0]["note"]
    assert "cannot be edited" in out.stdout
    gl.add_mr(PID, 8, head)
    out = run_cli(repo, "report", *ARGS, env=gitlab_env(gl, repo, sha=head))
    assert out.returncode == 0, out.stderr
    assert len(gl.notes(PID, "mr", 8)) == 1 and len(gl.projects[PID].commit_comments[head]) == 1


def test_path_escapes_are_refused(gl, tmp_path: Path):
    repo = example_repo(tmp_path)
    head = git(repo, "rev-parse", "HEAD")
    gl.add_mr(PID, 3, head)
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG private")
    (repo / "link.png").symlink_to(secret)
    out = run_cli(repo, "report", "--metrics", "metrics.json", "--notebook-diff", "false",
                  "--plots", "link.png ../secret.png", env=gitlab_env(gl, repo, sha=head, mr_iid=3))
    assert out.returncode == 0, out.stderr
    assert gl.projects[PID].uploads == {}
    assert "symlink pointing outside" in gl.notes(PID, "mr", 3)[0]["body"]


def test_oversized_report_is_shortened_below_gitlabs_limit(gl, tmp_path: Path):
    import json

    repo = example_repo(tmp_path)
    head = git(repo, "rev-parse", "HEAD")
    gl.add_mr(PID, 4, head)
    (repo / "big.json").write_text(json.dumps({f"metric_{i:06d}": i / 7 for i in range(40000)}))
    out = run_cli(repo, "report", "--metrics", "big.json", "--notebook-diff", "false",
                  env=gitlab_env(gl, repo, sha=head, mr_iid=4))
    assert out.returncode == 0, out.stderr
    body = gl.notes(PID, "mr", 4)[0]["body"]
    assert len(body) <= 1_000_000 and "removed to fit the comment size limit" in body
    assert "metric_039999" in (repo / "cml-report" / "report.md").read_text()


def test_server_errors_rate_limits_and_lost_responses_never_post_twice(gl, tmp_path: Path):
    repo = example_repo(tmp_path)
    head = git(repo, "rev-parse", "HEAD")
    gl.add_mr(PID, 6, head)
    gl.inject("POST", r"/merge_requests/6/notes$", 502, after=True)  # created, answer lost
    gl.inject("GET", r"/merge_requests/6/notes$", 429, headers={"Retry-After": "1"}, body={"message": "429 Too Many Requests"})
    gl.inject("POST", r"/uploads$", 503)
    out = run_cli(repo, "report", *ARGS, env=gitlab_env(gl, repo, sha=head, mr_iid=6))
    assert out.returncode == 0, out.stderr
    notes = gl.notes(PID, "mr", 6)
    assert len(notes) == 1 and "/uploads/" in notes[0]["body"]


def test_job_token_only_explains_which_token_to_create_and_keeps_the_report(gl, tmp_path: Path):
    repo = example_repo(tmp_path)
    head = git(repo, "rev-parse", "HEAD")
    gl.add_mr(PID, 9, head)
    out = run_cli(repo, "report", *ARGS, env=gitlab_env(gl, repo, sha=head, mr_iid=9, token=None))
    assert out.returncode == 0, out.stderr
    assert gl.notes(PID, "mr", 9) == []
    assert "CML_TOKEN" in out.stderr and "api" in out.stderr and "CI_JOB_TOKEN cannot write notes" in out.stderr
    assert "| Metric |" in out.stdout and (repo / "cml-report" / "report.md").exists()


def test_read_only_token_and_failing_gates_fail_the_job(gl, tmp_path: Path):
    repo = example_repo(tmp_path)
    head = git(repo, "rev-parse", "HEAD")
    gl.add_mr(PID, 10, head)
    out = run_cli(repo, "report", *ARGS, "--gates", "accuracy >= 0.999", "--check", "true",
                  env=gitlab_env(gl, repo, sha=head, mr_iid=10, token=READ_ONLY))
    assert out.returncode == 1
    assert "quality gates failed" in out.stderr and "insufficient" not in out.stdout
    assert gl.notes(PID, "mr", 10) == []
