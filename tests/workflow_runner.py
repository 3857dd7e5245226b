"""A small, strict runner for the example workflows, so the examples can never rot.

It executes a workflow's jobs in `needs` order the way GitHub does for the parts our examples use:
`actions/checkout` (the example project as a real git repo), `actions/upload-artifact` and
`download-artifact` (a folder store), `run:` steps (bash), and our own action, whose `with:` becomes
`INPUT_*` variables for `entrypoint.py` exactly as GitHub passes them to a container action,
`google-github-actions/auth` (writes the key, exports GOOGLE_APPLICATION_CREDENTIALS for later steps), and
`strategy.matrix` (every combination of plain lists, with the `matrix` context).
Anything else in an example is an error, so an example cannot use a step nobody tested.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

ACTION = "cml-action/cml-action@"
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


def _run_step(step, exprs, workspace, base_env, checkout, entrypoint, artifacts) -> tuple[int, dict[str, str]]:
    with_ = {k: exprs.render(v) for k, v in (step.get("with") or {}).items()}
    uses = step.get("uses", "")
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
        env = dict(base_env)
        env.update({k: exprs.render(v) for k, v in (step.get("env") or {}).items()})
        for key, value in with_.items():
            env[f"INPUT_{key.upper()}"] = str(value)
        output_file = workspace.parent / f"output-{workspace.name}-{id(step)}.txt"
        env["GITHUB_OUTPUT"] = str(output_file)
        env["GITHUB_WORKSPACE"] = str(workspace)
        out = entrypoint(workspace, env)
        (workspace.parent / f"log-{workspace.name}.txt").open("a").write(out.stdout + out.stderr)
        outputs = {}
        if output_file.exists():
            text = output_file.read_text()
            outputs = {m.group(1): m.group(3) for m in re.finditer(r"^([\w-]+)<<(\S+)\n(.*?)\n\2$", text, re.M | re.S)}
        return out.returncode, outputs
    if "run" in step:
        step_env = {k: str(exprs.render(v)) for k, v in (step.get("env") or {}).items()}
        out = subprocess.run(["bash", "-c", exprs.render(step["run"])], cwd=workspace, capture_output=True, text=True,
                             env={**base_env, **step_env, "PATH": base_env.get("PATH", "/usr/bin:/bin")})
        (workspace.parent / f"log-{workspace.name}.txt").open("a").write(out.stdout + out.stderr)
        return out.returncode, {}
    raise AssertionError(f"example uses an untested step: {uses or step}")


def dump_event(payload: dict, path: Path) -> str:
    path.write_text(json.dumps(payload))
    return str(path)
