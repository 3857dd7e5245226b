"""A small, strict runner for the example workflows, so the examples can never rot.

It executes a workflow's jobs in `needs` order the way GitHub does for the parts our examples use:
`actions/checkout` (the example project as a real git repo), `actions/upload-artifact` and
`download-artifact` (a folder store), `run:` steps (bash, with the GITHUB_OUTPUT / GITHUB_ENV / GITHUB_PATH file
commands), and our own container action, whose `with:` becomes `INPUT_*` variables for `entrypoint.py` exactly as
GitHub passes them to a container action, `google-github-actions/auth` (writes the key, exports
GOOGLE_APPLICATION_CREDENTIALS for later steps), and `strategy.matrix` (every combination of plain lists, with the
`matrix` context).
Our composite actions (`cml-action/cml-action/setup@…`) are executed for real from this checkout's `setup/action.yml`,
step by step, as the runner does: `inputs` with their defaults, GITHUB_ACTION_PATH, the file commands, outputs from
the action's `outputs:` expressions. `actions/setup-python` is the one stand-in: a fresh virtual environment of the
interpreter running the tests, whose packages it sees through a .pth file (the runner's cache, in effect), put first
on PATH for the rest of the job, as setup-python puts its Python.
Anything else in an example is an error, so an example cannot use a step nobody tested.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

ACTION = "cml-action/cml-action@"
COMPOSITE = re.compile(r"cml-action/cml-action/(?P<path>[\w-]+)@\S+")
ROOT = Path(__file__).resolve().parent.parent
# What a runner machine's own environment brings to every step (a home, the machine's proxy and certificates).
MACHINE_ENV = ("HOME", "LANG", "TMPDIR", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY",
               "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CERT", "PIP_FIND_LINKS")
_EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


@dataclass
class RunResult:
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)  # job -> outputs
    steps: list[tuple[str, str, int]] = field(default_factory=list)  # (job, step, exit code)
    workspaces: dict[str, Path] = field(default_factory=dict)


def load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    if True in data:  # YAML 1.1 reads the key `on` as True
        data["on"] = data.pop(True)
    return data


class Expressions:
    def __init__(self, contexts: dict) -> None:
        self.contexts = contexts

    def lookup(self, path: str):
        value = self.contexts
        for part in path.split("."):
            if isinstance(value, dict) and part in value:
                value = value[part]
            else:
                raise KeyError(f"unknown expression context: {path}")
        return value

    def evaluate(self, expr: str):
        expr = expr.strip()
        if expr in ("always()", "success()", "true"):
            return True
        match = re.fullmatch(r"(\S+)\s*(==|!=)\s*'([^']*)'", expr)
        if match:
            left = str(self.lookup(match.group(1)))
            return (left == match.group(3)) == (match.group(2) == "==")
        return self.lookup(expr)

    def render(self, text):
        if not isinstance(text, str):
            return text
        return _EXPR.sub(lambda m: str(self.evaluate(m.group(1))), text)


def run_workflow(
    path: Path,
    *,
    event_name: str,
    payload: dict,
    base_env: dict[str, str],
    checkout: Callable[[Path], Path],
    entrypoint: Callable[[Path, dict[str, str]], subprocess.CompletedProcess],
    work: Path,
    secrets: dict[str, str] | None = None,
    artifacts: Path | None = None,
) -> RunResult:
    workflow = load(path)
    triggers = workflow["on"] if isinstance(workflow["on"], (dict, list)) else [workflow["on"]]
    assert event_name in triggers, f"{path.name} does not run on {event_name}"
    artifacts = artifacts or work / "artifacts"
    result = RunResult()
    done: set[str] = set()
    jobs = workflow["jobs"]
    while len(done) < len(jobs):
        ready = [name for name, job in jobs.items() if name not in done and set(_needs(job)) <= done]
        assert ready, f"{path.name}: a cycle in needs"
        for name in ready:
            job = jobs[name]
            done.add(name)
            combos = _matrix(job)
            for number, combo in enumerate(combos):
                contexts = {
                    "github": {"token": base_env.get("INPUT_TOKEN", ""), "event": payload, "event_name": event_name},
                    "secrets": secrets or {},
                    "needs": {n: {"outputs": result.outputs.get(n, {})} for n in _needs(job)},
                    "steps": {},
                    "matrix": combo,
                }
                exprs = Expressions(contexts)
                if "if" in job and not exprs.evaluate(str(job["if"]).removeprefix("${{").removesuffix("}}")):
                    continue
                label_name = name if len(combos) == 1 else f"{name}-{number}"
                workspace = work / label_name
                workspace.mkdir(parents=True, exist_ok=True)
                result.workspaces[label_name] = workspace
                job_env = dict(base_env)
                job_env["RUNNER_TEMP"] = str(work / f"{label_name}-temp")
                Path(job_env["RUNNER_TEMP"]).mkdir(parents=True, exist_ok=True)
                for step in job.get("steps", []):
                    label = step.get("name") or step.get("uses") or step.get("run", "")[:30]
                    if "if" in step and not exprs.evaluate(str(step["if"]).removeprefix("${{").removesuffix("}}")):
                        continue
                    code, step_outputs = _run_step(step, exprs, workspace, job_env, checkout, entrypoint, artifacts)
                    result.steps.append((label_name, label, code))
                    if "id" in step:
                        contexts["steps"][step["id"]] = {"outputs": step_outputs}
                    if code != 0 and not step.get("continue-on-error"):
                        break
                result.outputs[name] = {k: str(exprs.render(v)) for k, v in (job.get("outputs") or {}).items()}
    return result


def _matrix(job: dict) -> list[dict]:
    import itertools

    matrix = (job.get("strategy") or {}).get("matrix") or {}
    assert all(isinstance(v, list) for v in matrix.values()), "examples use plain matrix lists only"
    keys = list(matrix)
    return [dict(zip(keys, values)) for values in itertools.product(*(matrix[k] for k in keys))] or [{}]


def _needs(job: dict) -> list[str]:
    needs = job.get("needs", [])
    return [needs] if isinstance(needs, str) else list(needs)


def _parse_outputs(text: str) -> dict[str, str]:
    """GITHUB_OUTPUT / GITHUB_ENV lines: `name=value` or `name<<DELIMITER` ... `DELIMITER`."""
    found: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        heredoc = re.fullmatch(r"([\w-]+)<<(\S+)", line)
        if heredoc:
            end = lines.index(heredoc.group(2), i + 1)
            found[heredoc.group(1)] = "\n".join(lines[i + 1:end])
            i = end + 1
            continue
        if "=" in line:
            name, _, value = line.partition("=")
            found[name] = value
        i += 1
    return found


def _shell_step(script: str, env: dict[str, str], cwd: Path, job_env: dict[str, str]) -> tuple[int, dict[str, str], str]:
    """One `run:` as the runner runs it: bash -e, fresh file commands, then GITHUB_ENV and GITHUB_PATH applied to the
    job's later steps. Our own inputs (INPUT_*) never reach a shell step."""
    files = Path(job_env["RUNNER_TEMP"]) / "_runner_file_commands"
    files.mkdir(exist_ok=True)
    suffix = uuid.uuid4().hex
    commands = {name: files / f"{prefix}_{suffix}" for name, prefix in
                (("GITHUB_OUTPUT", "set_output"), ("GITHUB_ENV", "set_env"), ("GITHUB_PATH", "add_path"),
                 ("GITHUB_STEP_SUMMARY", "step_summary"))}
    for path in commands.values():
        path.touch()
    machine = {k: os.environ[k] for k in MACHINE_ENV if k in os.environ}
    full = {**machine, **{k: v for k, v in job_env.items() if not k.startswith("INPUT_")}, **env,
            **{k: str(v) for k, v in commands.items()}}
    full["PATH"] = os.pathsep.join(job_env.get("_PATH_ADDED", "").split(os.pathsep)[::-1] +
                                   [job_env.get("PATH", "/usr/local/bin:/usr/bin:/bin")]).strip(os.pathsep)
    full.pop("_PATH_ADDED", None)
    out = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=cwd, env=full,
                         capture_output=True, text=True, timeout=600)
    job_env.update(_parse_outputs(commands["GITHUB_ENV"].read_text()))
    for added in commands["GITHUB_PATH"].read_text().splitlines():
        if added.strip():
            job_env["_PATH_ADDED"] = os.pathsep.join(p for p in (job_env.get("_PATH_ADDED", ""), added.strip()) if p)
    return out.returncode, _parse_outputs(commands["GITHUB_OUTPUT"].read_text()), out.stdout + out.stderr


def _setup_python(workspace: Path, job_env: dict[str, str]) -> None:
    """actions/setup-python's effect: a Python of the job's own first on PATH (see the module docstring)."""
    venv = Path(job_env["RUNNER_TEMP"]).parent / f"{workspace.name}-python"
    if not venv.exists():
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        site = next((venv / "lib").glob("python3*/site-packages"))
        (site / "runner-cache.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        for name in ("pip", "pip3"):  # setup-python's Python has pip; ours is the test interpreter's, run as a module
            (venv / "bin" / name).write_text('#!/bin/sh\nexec "$(dirname "$0")/python" -m pip "$@"\n')
            (venv / "bin" / name).chmod(0o755)
    job_env["_PATH_ADDED"] = os.pathsep.join(p for p in (job_env.get("_PATH_ADDED", ""), str(venv / "bin")) if p)
    job_env["pythonLocation"] = str(venv)


def _inputs(path: str, action: dict, with_: dict) -> dict[str, str]:
    """The `inputs` context: what `with:` gives, else the declared default; an undeclared input is an error."""
    declared = action.get("inputs") or {}
    unknown = set(with_) - set(declared)
    assert not unknown, f"{path}: inputs not declared in its action.yml: {sorted(unknown)}"
    return {k: str(with_.get(k, (spec or {}).get("default", ""))) for k, spec in declared.items()}


def _composite(path: str, with_: dict, exprs: Expressions, workspace: Path, job_env: dict[str, str],
               log: Path) -> tuple[int, dict[str, str]]:
    """A composite action of this repository, run step by step from its action.yml."""
    action_dir = ROOT / path
    action = load(action_dir / "action.yml")
    assert action["runs"]["using"] == "composite", f"{path}/action.yml is not a composite action"
    inputs = _inputs(path, action, with_)
    contexts = {**exprs.contexts, "inputs": inputs, "steps": {},
                "github": {**exprs.contexts["github"], "action_path": str(action_dir)}}
    inner = Expressions(contexts)
    for step in action["runs"]["steps"]:
        assert "run" in step and step.get("shell"), f"{path}: a composite step needs run and shell"
        assert step["shell"] == "bash", f"{path}: only bash steps are run here"
        env = {k: str(inner.render(v)) for k, v in (step.get("env") or {}).items()}
        env["GITHUB_ACTION_PATH"] = str(action_dir)
        code, outputs, text = _shell_step(inner.render(step["run"]), env, workspace, job_env)
        with log.open("a") as handle:
            handle.write(text)
        if "id" in step:
            contexts["steps"][step["id"]] = {"outputs": outputs}
        if code != 0:
            return code, {}
    return 0, {k: str(inner.render(v["value"])) for k, v in (action.get("outputs") or {}).items()}


def _container_action(step, with_, exprs, workspace, base_env, entrypoint, log) -> tuple[int, dict[str, str]]:
    """Our container action: `with:` as INPUT_* for entrypoint.py, as GitHub passes them."""
    env = dict(base_env)
    env.update({k: exprs.render(v) for k, v in (step.get("env") or {}).items()})
    for key, value in with_.items():
        env[f"INPUT_{key.upper()}"] = str(value)
    env.pop("_PATH_ADDED", None)
    output_file = workspace.parent / f"output-{workspace.name}-{id(step)}.txt"
    env["GITHUB_OUTPUT"] = str(output_file)
    env["GITHUB_WORKSPACE"] = str(workspace)
    out = entrypoint(workspace, env)
    with log.open("a") as handle:
        handle.write(out.stdout + out.stderr)
    outputs = _parse_outputs(output_file.read_text()) if output_file.exists() else {}
    return out.returncode, outputs


def _run_step(step, exprs, workspace, base_env, checkout, entrypoint, artifacts) -> tuple[int, dict[str, str]]:
    with_ = {k: exprs.render(v) for k, v in (step.get("with") or {}).items()}
    uses = step.get("uses", "")
    log = workspace.parent / f"log-{workspace.name}.txt"
    composite = COMPOSITE.fullmatch(uses)
    if composite:
        return _composite(composite.group("path"), with_, exprs, workspace, base_env, log)
    if uses.startswith("actions/setup-python@"):
        _setup_python(workspace, base_env)
        return 0, {"python-version": sys.version.split()[0]}
    if uses.startswith("actions/checkout@"):
        checkout(workspace)
        return 0, {}
    if uses.startswith("actions/upload-artifact@"):
        dest = artifacts / with_["name"]
        shutil.copytree(workspace / with_["path"].rstrip("/"), dest, dirs_exist_ok=True)
        return 0, {}
    if uses.startswith("actions/download-artifact@"):
        shutil.copytree(artifacts / with_["name"], workspace / with_.get("path", "."), dirs_exist_ok=True)
        return 0, {}
    if uses.startswith("google-github-actions/auth@"):
        key = workspace.parent / f"gha-creds-{workspace.name}.json"
        key.write_text(with_["credentials_json"])
        base_env["GOOGLE_APPLICATION_CREDENTIALS"] = str(key)  # the job's environment, as the action exports it
        return 0, {}
    if uses.startswith(ACTION):
        return _container_action(step, with_, exprs, workspace, base_env, entrypoint, log)
    if "run" in step:
        env = {k: str(exprs.render(v)) for k, v in (step.get("env") or {}).items()}
        env["GITHUB_WORKSPACE"] = str(workspace)
        code, outputs, text = _shell_step(exprs.render(step["run"]), env, workspace, base_env)
        with log.open("a") as handle:
            handle.write(text)
        return code, outputs
    raise AssertionError(f"example uses an untested step: {uses or step}")


def dump_event(payload: dict, path: Path) -> str:
    path.write_text(json.dumps(payload))
    return str(path)
