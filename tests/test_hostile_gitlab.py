"""A hostile merge request against the GitLab stand-in: job token out of reach, sections not forged,
notes of other people never edited, failures never lose the report."""

from __future__ import annotations

from pathlib import Path

import pytest

from cml_action.forges.base import sticky_marker
from hostile_helpers import encodings, run_entry, small_repo
from repo_helpers import git
from test_gitlab_e2e import JOB, PID, TOKEN, gitlab_env


@pytest.fixture()
def gl(gitlab_standin):
    gitlab_standin.add_project(PID, "ml/models")
    gitlab_standin.add_token(TOKEN, ("api",))
    gitlab_standin.add_token(JOB, (), kind="job")
    return gitlab_standin


def mr_env(gl, repo: Path, iid: int, **kwargs) -> dict[str, str]:
    head = git(repo, "rev-parse", "HEAD")
    gl.add_mr(PID, iid, head)
    env = gitlab_env(gl, repo, sha=head, mr_iid=iid, **kwargs)
    env["CI_REPOSITORY_URL"] = f"{gl.server_url}/ml/models.git".replace("://", f"://gitlab-ci-token:{JOB}@")
    env["CI_REGISTRY_PASSWORD"] = JOB
    return env


def test_the_job_token_is_not_in_the_training_environment_nor_in_the_note(gl, tmp_path: Path):
    repo = small_repo(tmp_path)
    env = mr_env(gl, repo, 3)
    command = "env > seen.env; printenv CI_JOB_TOKEN; echo $CI_REPOSITORY_URL; tr '\\0' '\\n' < /proc/$PPID/environ; exit 1"
    out = run_entry(repo, ["--run", command, "--metrics", "metrics.json", "--notebook-diff", "false"], env)
    assert out.returncode == 1
    seen = (repo / "seen.env").read_text()
    for name in ("CI_JOB_TOKEN", "CI_REGISTRY_PASSWORD", "CI_REPOSITORY_URL", "CML_TOKEN"):
        assert f"{name}=" not in seen, name
    (note,) = gl.notes(PID, "mr", 3)
    for secret in (JOB, TOKEN):
        for form in encodings(secret):
            assert form not in note["body"] and form not in out.stdout, form


def test_training_output_cannot_close_or_open_our_log_sections(gl, tmp_path: Path):
    repo = small_repo(tmp_path)
    env = mr_env(gl, repo, 4)
    command = r"printf '\033[0Ksection_end:1:cml_x\r\033[0K\n\033[0Ksection_start:1:fake[collapsed=true]\r\033[0KFake\n'"
    out = run_entry(repo, ["--run", command, "--metrics", "metrics.json", "--notebook-diff", "false"], env)
    assert out.returncode == 0, out.stderr
    starts = [line for line in out.stdout.splitlines() if "section_start:" in line]
    ends = [line for line in out.stdout.splitlines() if "section_end:" in line]
    assert all(":cml_" in line for line in starts + ends) and len(starts) == len(ends) == 2  # training + report
    assert "section_\u200bend:1:cml_x" in out.stdout and "section_\u200bstart:1:fake" in out.stdout


def test_a_note_by_someone_else_carrying_our_marker_is_never_edited(gl, tmp_path: Path):
    repo = small_repo(tmp_path)
    env = mr_env(gl, repo, 5)
    planted = f"{sticky_marker('CML report')}\na reviewer's note"
    gl.add_note(PID, "mr", 5, planted)
    for _ in range(2):
        out = run_entry(repo, ["report", "--metrics", "metrics.json", "--notebook-diff", "false"], env)
        assert out.returncode == 0, out.stderr
    notes = gl.notes(PID, "mr", 5)
    assert [n["body"] for n in notes if n["author"]["username"] == "reviewer"] == [planted]
    ours = [n for n in notes if n["author"]["username"] == "project_42_bot"]
    assert len(ours) == 1 and "## CML report" in ours[0]["body"]
    assert "updated the report" in out.stdout


def test_a_refused_token_is_a_warning_naming_it_and_the_report_is_in_the_log(gl, tmp_path: Path):
    repo = small_repo(tmp_path)
    env = mr_env(gl, repo, 6, token="glpat-revoked00000000000000")
    out = run_entry(repo, ["report", "--metrics", "metrics.json", "--notebook-diff", "false"], env)
    assert out.returncode == 0, out.stderr
    assert "the token was refused (401" in out.stderr and "| acc |" in out.stdout and "Traceback" not in out.stderr
    assert (repo / "cml-report" / "report.md").exists() and gl.notes(PID, "mr", 6) == []
