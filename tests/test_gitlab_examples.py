"""The GitLab template, the CI/CD component and the GitLab examples: parsed, checked for documented variables only,
and their jobs executed through entrypoint.py against the GitLab stand-in (and moto for the GPU example)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cml_action.options import BY_NAME
from repo_helpers import GIT_ENV, ROOT, example_repo, git

TEMPLATE = ROOT / ".gitlab-ci-template.yml"
COMPONENT = ROOT / "templates" / "report.yml"
EXAMPLES = ROOT / "workflows-examples" / "gitlab"
FILES = [TEMPLATE, COMPONENT, *sorted(EXAMPLES.glob("*.yml"))]
PID, PATH = 42, "ml/models"
TOKEN = "glpat-exampleToken000000"

# GitLab's predefined CI/CD variables the examples may use (docs.gitlab.com/ci/variables/predefined_variables).
PREDEFINED = {"CI_PIPELINE_SOURCE", "CI_PIPELINE_IID", "CI_COMMIT_BRANCH", "CI_DEFAULT_BRANCH", "CI_SERVER_FQDN", "CI_COMMIT_SHA",
              "CI_MERGE_REQUEST_IID", "CI_PROJECT_ID", "CI_API_V4_URL", "CI_JOB_TOKEN", "CI_PROJECT_PATH",
              "CI_COMMIT_REF_NAME", "CI_SERVER_URL", "CI_JOB_URL", "CI_PIPELINE_ID"}
OURS = {"CML_COMMAND", "CML_TOKEN"} | {"CML_" + name.upper().replace("-", "_") for name in BY_NAME}


def documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_only_documented_variables(path: Path):
    text = path.read_text()
    used = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", text)) | {
        k for d in documents(path) for job in d.values() if isinstance(job, dict)
        for k in (job.get("variables") or {})}
    unknown = {v for v in used if v.startswith("CI_") and v not in PREDEFINED}
    unknown |= {v for v in used if v.startswith("CML_") and v not in OURS}
    assert not unknown, unknown


GITHUB_ONLY = {"assets-branch"}  # GitLab stores images in the project's uploads
NEVER_AN_INPUT = {"token"}  # a masked CI/CD variable: an input would sit in the pipeline configuration in clear


def test_component_inputs_are_declared_and_cover_the_report_options():
    spec, job = documents(COMPONENT)
    inputs = spec["spec"]["inputs"]
    used = set(re.findall(r"\$\[\[\s*inputs\.([\w-]+)\s*\]\]", COMPONENT.read_text()))
    assert used == set(inputs)
    variables = job["cml-report"]["variables"]
    expected = {o.name for o in BY_NAME.values() if "run" in o.commands} - GITHUB_ONLY - NEVER_AN_INPUT
    for name in expected:
        assert variables[f"CML_{name.upper().replace('-', '_')}"] == f"$[[ inputs.{name} ]]", name
        assert str(inputs[name]["default"]) == BY_NAME[name].default, name  # same defaults as the CLI
    assert set(inputs) - {"stage", "image"} == expected


def interpolate(path: Path, given: dict[str, str]) -> list[dict]:
    """What GitLab does when including a component: inputs (given, else their defaults) replace $[[ inputs.x ]]."""
    spec, _ = documents(path)
    values = {name: str(given.get(name, decl.get("default", ""))) for name, decl in spec["spec"]["inputs"].items()}
    body = path.read_text().split("\n---\n", 1)[1]
    return [yaml.safe_load(re.sub(r"\$\[\[\s*inputs\.([\w-]+)\s*\]\]", lambda m: values[m.group(1)], body))]


def job_env(job: dict, template: dict) -> dict[str, str]:
    merged = {**template.get("variables", {}), **job.get("variables", {})}
    return {k: str(v) for k, v in merged.items()}


def gitlab_env(gl, sha: str, mr: int | None) -> dict[str, str]:
    env = {"GITLAB_CI": "true", "CI_API_V4_URL": gl.api_url, "CI_SERVER_URL": gl.server_url, "CI_PROJECT_ID": str(PID),
           "CI_PROJECT_PATH": PATH, "CI_COMMIT_SHA": sha, "CI_COMMIT_REF_NAME": "feature", "CI_DEFAULT_BRANCH": "main",
           "CI_PIPELINE_ID": "31", "CI_JOB_URL": f"{gl.server_url}/{PATH}/-/jobs/9", "CML_TOKEN": TOKEN,
           "CML_RETRY_BACKOFF": "0.01", "CML_POLL_INTERVAL": "0.05"}
    if mr:
        env.update({"CI_MERGE_REQUEST_IID": str(mr), "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
                    "CI_PIPELINE_SOURCE": "merge_request_event"})
    return env


def run_job(workspace: Path, script: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """A job's script with /app/entrypoint.py (the image's path) resolved to this checkout's entrypoint."""
    assert script == ["/app/entrypoint.py"], script
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CI_", "CML_", "INPUT_", "AWS_"))}
    clean.update(GIT_ENV)
    clean["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{clean.get('PATH', '')}"
    return subprocess.run([sys.executable, str(ROOT / "entrypoint.py")], cwd=workspace, env={**clean, **env},
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture()
def gl(gitlab_standin):
    gitlab_standin.add_project(PID, PATH)
    gitlab_standin.add_token(TOKEN, ("api", "create_runner", "manage_runner"))
    return gitlab_standin


def test_report_example_posts_on_the_merge_request(gl, tmp_path: Path):
    (template,) = [d[".cml-action"] for d in documents(TEMPLATE)]
    example = documents(EXAMPLES / ".gitlab-ci.yml")[0]
    assert example["train"]["extends"] == ".cml-action"
    repo = example_repo(tmp_path)
    head = git(repo, "rev-parse", "HEAD")
    gl.add_mr(PID, 12, head)
    out = run_job(repo, template["script"], {**gitlab_env(gl, head, 12), **job_env(example["train"], template)})
    (note,) = gl.notes(PID, "mr", 12)
    gate_failed = "❌ **gates failed**" in note["body"]
    assert out.returncode == (1 if gate_failed else 0), out.stderr
    assert "## Model report" in note["body"] and "/uploads/" in note["body"]
    assert (repo / "cml-report" / "report.md").exists()  # the artifact the template keeps


def test_gpu_example_launches_trains_and_tears_down(gl, aws_cloud, tmp_path: Path):
    gl.runners_come_online = True
    (template,) = [d[".cml-action"] for d in documents(TEMPLATE)]
    jobs = documents(EXAMPLES / "gpu-runner.gitlab-ci.yml")[0]
    repo = example_repo(tmp_path)
    head = git(repo, "rev-parse", "HEAD")
    gl.add_mr(PID, 13, head)
    base = {**gitlab_env(gl, head, 13), **aws_cloud.env}
    launch = run_job(repo, template["script"], {**base, **job_env(jobs["launch"], template)})
    assert launch.returncode == 0, launch.stderr + launch.stdout
    dotenv = dict(line.split("=", 1) for line in (repo / "cml.env").read_text().splitlines())
    label = dotenv["CML_RUNNER_LABEL"]
    (runner,) = gl.runners.values()
    assert runner.tags == [label, "cml-cloud-aws"] and not runner.run_untagged
    (vm,) = aws_cloud.instances()
    assert "gitlab-runner-linux-amd64" in vm["startup_script"] and runner.token not in vm["startup_script"]
    train = run_job(repo, template["script"], {**base, **job_env(jobs["train"], template)})
    assert train.returncode == 0, train.stderr
    teardown = run_job(repo, template["script"], {**base, **dotenv, **job_env(jobs["teardown"], template)})
    assert teardown.returncode == 0, teardown.stderr
    assert aws_cloud.leftovers() == [] and gl.runners == {}


def test_component_job_runs_with_its_defaults_and_posts(gl, tmp_path: Path):
    (doc,) = interpolate(COMPONENT, {"metrics": "metrics.json", "params": "params.yaml",
                                      "plots": "confusion_matrix.png", "title": "Component report"})
    job = doc["cml-report"]
    assert job["image"]["name"].startswith("ghcr.io/cml-action/cml-action:")
    repo = example_repo(tmp_path)
    head = git(repo, "rev-parse", "HEAD")
    gl.add_mr(PID, 14, head)
    out = run_job(repo, job["script"], {**gitlab_env(gl, head, 14), **job_env(job, {})})
    assert out.returncode == 0, out.stderr
    (note,) = gl.notes(PID, "mr", 14)
    assert "## Component report" in note["body"] and f"{gl.server_url}/{PATH}/uploads/" in note["body"]
    assert (repo / job["artifacts"]["paths"][0] / "report.md").exists()
