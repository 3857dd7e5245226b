"""Every workflow in workflows-examples/ executed for real: our action's steps go through entrypoint.py against the
GitHub stand-in (and the cloud stand-ins for the GPU examples), so an example that stops working fails here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dvc_helpers import dvc_repo
from repo_helpers import GIT_ENV, ROOT, example_repo, git
from workflow_runner import load, run_workflow

EXAMPLES = ROOT / "workflows-examples"
REPO = "octo/models"
TOKEN = "ghs_workflowTokenForExamples0000000000"
READ_ONLY = "ghs_forkReadOnlyToken00000000000000000"
ADMIN = "ghp_runnerAdminForExamples000000000000"


@pytest.fixture()
def gh(github_standin):
    github_standin.add_repo(REPO)
    github_standin.add_token(TOKEN, {"contents": "write", "pull_requests": "write", "issues": "write",
                                     "checks": "write", "metadata": "read"})
    github_standin.add_token(READ_ONLY, {"contents": "read", "pull_requests": "read", "metadata": "read"})
    github_standin.add_token(ADMIN, {"administration": "write", "actions": "write", "contents": "write",
                                     "metadata": "read"})
    return github_standin


def base_env(gh, tmp: Path, event: str, payload: dict, sha: str, token: str = TOKEN) -> dict[str, str]:
    (tmp / "event.json").write_text(json.dumps(payload))
    return {"GITHUB_ACTIONS": "true", "GITHUB_API_URL": gh.api_url, "GITHUB_SERVER_URL": gh.server_url,
            "GITHUB_REPOSITORY": REPO, "GITHUB_EVENT_NAME": event, "GITHUB_EVENT_PATH": str(tmp / "event.json"),
            "GITHUB_SHA": sha, "GITHUB_RUN_ID": "777", "GITHUB_STEP_SUMMARY": str(tmp / "summary.md"),
            "INPUT_TOKEN": token, "CML_RETRY_BACKOFF": "0.01", "CML_POLL_INTERVAL": "0.05", **GIT_ENV}


def copier(source: Path):
    def checkout(workspace: Path) -> Path:
        shutil.copytree(source, workspace, dirs_exist_ok=True, symlinks=True)
        return workspace
    return checkout


def entrypoint(workspace: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("GITHUB_", "INPUT_", "CML_", "AWS_", "AZURE_", "GOOGLE_"))}
    clean.update(GIT_ENV)
    clean["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{clean.get('PATH', '')}"
    return subprocess.run([sys.executable, str(ROOT / "entrypoint.py")], cwd=workspace, env={**clean, **env},
                          capture_output=True, text=True, timeout=300)


def pr_payload(number: int, sha: str) -> dict:
    return {"pull_request": {"number": number, "head": {"sha": sha, "ref": "feature"}, "base": {"ref": "main"}},
            "repository": {"default_branch": "main"}}


def comments(gh) -> list[str]:
    return [c["body"] for c in gh.repos[REPO].comments.values()]


def test_every_example_uses_only_steps_the_runner_knows():
    known = ("actions/checkout@", "actions/upload-artifact@", "actions/download-artifact@",
             "google-github-actions/auth@", "cml-action/cml-action@", "cml-action/cml-action/setup@",
             "actions/setup-python@")
    for path in EXAMPLES.glob("*.yml"):
        for job in load(path)["jobs"].values():
            for step in job.get("steps", []):
                assert "run" in step or str(step.get("uses", "")).startswith(known), (path.name, step)


def test_basic_on_a_pull_request_and_on_a_push(gh, tmp_path: Path):
    repo = example_repo(tmp_path)
    head = git(repo, "rev-parse", "HEAD")
    gh.add_pull(REPO, 1, head_sha=head, head_ref="feature", base_ref="main")
    result = run_workflow(EXAMPLES / "basic.yml", event_name="pull_request", payload=pr_payload(1, head),
                          base_env=base_env(gh, tmp_path, "pull_request", pr_payload(1, head), "f" * 40),
                          checkout=copier(repo), entrypoint=entrypoint, work=tmp_path / "pr")
    assert [code for *_, code in result.steps] == [0, 0]
    (body,) = comments(gh)
    assert "## Model report" in body and "?raw=true" in body and "Line plot" not in body  # importance is a bar chart
    assert len(gh.repos[REPO].check_runs) == 1
    main_sha = git(repo, "rev-parse", "main")
    push = {"before": "0" * 40, "repository": {"default_branch": "main"}}
    git(repo, "checkout", "-q", "main")
    result = run_workflow(EXAMPLES / "basic.yml", event_name="push", payload=push,
                          base_env=base_env(gh, tmp_path, "push", push, main_sha), checkout=copier(repo),
                          entrypoint=entrypoint, work=tmp_path / "push")
    assert [code for *_, code in result.steps] == [0, 0]
    assert len(comments(gh)) == 2  # a commit comment for the push to main


def test_fork_pattern_untrusted_then_publish(gh, tmp_path: Path):
    repo = example_repo(tmp_path)
    head = git(repo, "rev-parse", "HEAD")
    artifacts = tmp_path / "artifacts"
    env = base_env(gh, tmp_path, "pull_request", pr_payload(2, head), "a" * 40, token=READ_ONLY)
    untrusted = run_workflow(EXAMPLES / "fork-untrusted.yml", event_name="pull_request", payload=pr_payload(2, head),
                             base_env=env, checkout=copier(repo), entrypoint=entrypoint, work=tmp_path / "u",
                             artifacts=artifacts)
    assert [code for *_, code in untrusted.steps] == [0, 0, 0] and comments(gh) == []
    # as GitHub sends it for a fork's pull request: `pull_requests` empty, the fork named in `head_repository`
    gh.add_pull(REPO, 2, head_sha=head, head_ref="feature", base_ref="main", head_repo="forker/models")
    event = {"workflow_run": {"id": 55, "event": "pull_request", "head_sha": head, "head_branch": "feature",
                              "pull_requests": [], "head_repository": {"full_name": "forker/models",
                                                                       "owner": {"login": "forker"}}}}
    publish = run_workflow(EXAMPLES / "fork-publish.yml", event_name="workflow_run", payload=event,
                           base_env=base_env(gh, tmp_path, "workflow_run", event, "c" * 40), checkout=copier(repo),
                           entrypoint=entrypoint, work=tmp_path / "p", artifacts=artifacts)
    assert [code for *_, code in publish.steps] == [0, 0]
    (body,) = comments(gh)
    assert "## Model report" in body
    assert [c["_on"] for c in gh.repos[REPO].comments.values()] == [("issue", 2)]  # the fork's PR, not the commit


def test_gates_fail_the_job_and_say_why(gh, tmp_path: Path):
    repo = example_repo(tmp_path)  # the feature branch trains 5 shallow trees instead of 60 deep ones
    head = git(repo, "rev-parse", "HEAD")
    gh.add_pull(REPO, 3, head_sha=head, head_ref="feature", base_ref="main")
    result = run_workflow(EXAMPLES / "gates.yml", event_name="pull_request", payload=pr_payload(3, head),
                          base_env=base_env(gh, tmp_path, "pull_request", pr_payload(3, head), "f" * 40),
                          checkout=copier(repo), entrypoint=entrypoint, work=tmp_path / "g")
    (body,) = comments(gh)
    failed = "❌ **gates failed**" in body
    assert result.steps[-1][2] == (1 if failed else 0)
    (run,) = gh.repos[REPO].check_runs.values()
    assert run["conclusion"] == ("failure" if failed else "success")
    assert "### Quality gates" in body and "`accuracy >= baseline - 0.005`" in body


def test_matrix_keeps_one_sticky_report_per_title(gh, tmp_path: Path):
    repo = example_repo(tmp_path)
    head = git(repo, "rev-parse", "HEAD")
    gh.add_pull(REPO, 4, head_sha=head, head_ref="feature", base_ref="main")
    for attempt in range(2):  # a second push updates both, posts nothing new
        run_workflow(EXAMPLES / "matrix.yml", event_name="pull_request", payload=pr_payload(4, head),
                     base_env=base_env(gh, tmp_path, "pull_request", pr_payload(4, head), "f" * 40),
                     checkout=copier(repo), entrypoint=entrypoint, work=tmp_path / f"m{attempt}")
    titles = sorted(b.splitlines()[1] for b in comments(gh))
    assert titles == ["## Model report (max_depth 2)", "## Model report (max_depth 8)"]


@pytest.mark.parametrize("cloud_name", ["aws", "gcp", "azure"])
def test_gpu_runner_examples_launch_train_and_leave_nothing(gh, tmp_path: Path, request, cloud_name: str):
    cloud = request.getfixturevalue(f"{cloud_name}_cloud")
    gh.runner_online_after = 0
    repo = example_repo(tmp_path)
    head = git(repo, "rev-parse", "HEAD")
    gh.add_pull(REPO, 5, head_sha=head, head_ref="feature", base_ref="main")
    env = {**base_env(gh, tmp_path, "pull_request", pr_payload(5, head), "f" * 40), **cloud.env}
    secrets = {"RUNNER_ADMIN_TOKEN": ADMIN, "AWS_ACCESS_KEY_ID": cloud.env.get("AWS_ACCESS_KEY_ID", ""),
               "AWS_SECRET_ACCESS_KEY": cloud.env.get("AWS_SECRET_ACCESS_KEY", ""),
               "GCP_PROJECT": cloud.env.get("CML_GCP_PROJECT", ""),
               "GCP_CREDENTIALS": Path(cloud.env["GOOGLE_APPLICATION_CREDENTIALS"]).read_text()
               if "GOOGLE_APPLICATION_CREDENTIALS" in cloud.env else "",
               **{k: cloud.env.get(k, "") for k in ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID",
                                                    "AZURE_SUBSCRIPTION_ID")}}
    env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)  # it must come from the auth step, as in the example
    result = run_workflow(EXAMPLES / f"gpu-{cloud_name}.yml", event_name="pull_request", payload=pr_payload(5, head),
                          base_env=env, checkout=copier(repo), entrypoint=entrypoint, work=tmp_path / "w",
                          secrets=secrets)
    assert all(code == 0 for *_, code in result.steps), (result.steps, _log(tmp_path / "w", "train"))
    assert result.outputs["launch"]["label"].startswith("cml-")
    (report,) = [b for b in comments(gh) if "## GPU report" in b]
    assert "| **model.max_depth** |" in report  # compared with main, from the job's own Python
    # The CLI went into the job's Python (set up by setup-python), not into the one running these tests.
    python = tmp_path / "w" / "train-python"
    assert next(python.glob("lib/python3*/site-packages/cml_action/__init__.py"))
    assert f"installed into {python}/bin/python" in _log(tmp_path / "w", "train")
    assert cloud.leftovers() == [] and gh.runners(REPO) == []


def _log(work: Path, job: str) -> str:
    path = work / f"log-{job}.txt"
    return path.read_text() if path.exists() else ""


def test_setup_action_cli_ignores_modules_in_the_workspace(gh, tmp_path: Path):
    """A pull request controls the working directory: a cml_action/ or yaml.py there must not be what runs."""
    repo = example_repo(tmp_path)
    (repo / "cml_action").mkdir()
    (repo / "cml_action" / "__init__.py").write_text("raise SystemExit('hostile cml_action imported')\n")
    (repo / "yaml.py").write_text("raise SystemExit('hostile yaml imported')\n")
    workflow = tmp_path / "setup-only.yml"
    workflow.write_text(yaml.safe_dump({"on": "pull_request", "jobs": {"report": {"runs-on": "ubuntu-latest", "steps": [
        {"uses": "actions/checkout@v4"}, {"uses": "actions/setup-python@v5", "with": {"python-version": "3.11"}},
        {"id": "cml", "uses": "cml-action/cml-action/setup@v1"},
        {"run": "cml-action --version && cml-action report --metrics metrics.json --target none"}]}}}))
    result = run_workflow(workflow, event_name="pull_request", payload=pr_payload(7, "f" * 40),
                          base_env=base_env(gh, tmp_path, "pull_request", pr_payload(7, "f" * 40), "f" * 40),
                          checkout=copier(repo), entrypoint=entrypoint, work=tmp_path / "s")
    log = _log(tmp_path / "s", "report")
    assert [code for *_, code in result.steps] == [0, 0, 0, 0], log
    assert "cml-action 0.1.0" in log and "hostile" not in log


def test_sweep_example_runs_on_schedule(gh, aws_cloud, tmp_path: Path):
    env = {**base_env(gh, tmp_path, "schedule", {}, "f" * 40), **aws_cloud.env}
    result = run_workflow(EXAMPLES / "runner-sweep.yml", event_name="schedule", payload={}, base_env=env,
                          checkout=copier(tmp_path), entrypoint=entrypoint, work=tmp_path / "s",
                          secrets={"RUNNER_ADMIN_TOKEN": ADMIN, **{k: aws_cloud.env[k] for k in
                                                                   ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}})
    assert [code for *_, code in result.steps] == [0]


def test_dvc_example_pulls_reproduces_reports_and_pushes(gh, tmp_path: Path):
    repo = dvc_repo(tmp_path, cached_metrics=True)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "shallower trees")
    head = git(repo, "rev-parse", "HEAD")
    shutil.rmtree(repo / ".dvc" / "cache")  # a fresh CI checkout has no cache: dvc-pull brings it back
    gh.add_pull(REPO, 6, head_sha=head, head_ref="feature", base_ref="main")
    result = run_workflow(EXAMPLES / "dvc-s3.yml", event_name="pull_request", payload=pr_payload(6, head),
                          base_env=base_env(gh, tmp_path, "pull_request", pr_payload(6, head), "f" * 40),
                          checkout=copier(repo), entrypoint=entrypoint, work=tmp_path / "d",
                          secrets={"AWS_ACCESS_KEY_ID": "unused-local-remote", "AWS_SECRET_ACCESS_KEY": "unused"})
    (body,) = comments(gh)
    assert "## DVC report" in body and "| accuracy |" in body and "ROC curve of `eval/roc.json`" in body
    gate_failed = "❌ **gates failed**" in body  # the branch trains 5 shallow trees: accuracy may drop
    assert [code for *_, code in result.steps] == [0, 1 if gate_failed else 0], result.steps
    assert (repo / "eval").exists()


def test_rerun_preempted_companion_re_runs_the_run_once_completed(gh, tmp_path: Path):
    gh.add_run(REPO, 901, conclusion="failure", completes_after=2)
    event = {"action": "cml-action-rerun", "client_payload": {"run_id": "901"}}
    result = run_workflow(EXAMPLES / "rerun-preempted.yml", event_name="repository_dispatch", payload=event,
                          base_env=base_env(gh, tmp_path, "repository_dispatch", event, "f" * 40),
                          checkout=copier(tmp_path), entrypoint=entrypoint, work=tmp_path / "r",
                          secrets={"RUNNER_ADMIN_TOKEN": ADMIN})
    assert [code for *_, code in result.steps] == [0]
    assert gh.repos[REPO].reruns == [901]
