"""Static rules for the Dockerfile and the release workflow (a hadolint-like rule set of our own), so that the GPU
variant, which cannot be pulled here, is still checked."""

from __future__ import annotations

import re

import yaml

from repo_helpers import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()
INSTRUCTIONS = [line.strip() for line in re.sub(r"\\\n", " ", DOCKERFILE).splitlines()
                if line.strip() and not line.strip().startswith("#")]
RELEASE = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())


def ins(name: str) -> list[str]:
    return [line for line in INSTRUCTIONS if line.split()[0].upper() == name]


def test_container_action_rules():
    assert not ins("USER"), "GitHub container actions must run as root"
    assert not ins("WORKDIR"), "GitHub sets the working directory to the mounted workspace"
    (entry,) = ins("ENTRYPOINT")
    assert re.fullmatch(r'ENTRYPOINT \["/[^"]+"\]', entry), "exec form with an absolute path"


def stages() -> dict[str, list[str]]:
    """Stage name -> its instructions (the FROM line first)."""
    found: dict[str, list[str]] = {}
    current = None
    for line in INSTRUCTIONS:
        if line.upper().startswith("FROM "):
            current = line.split()[-1]
            found[current] = []
        if current:
            found[current].append(line)
    return found


def test_base_is_an_argument_and_every_stage_uses_it_or_an_earlier_stage():
    assert ins("ARG")[0].startswith("ARG BASE_IMAGE=python:3.11-slim-bookworm")
    seen: list[str] = []
    for name, lines in stages().items():
        base = lines[0].split()[1]
        assert base == "${BASE_IMAGE}" or base in seen, lines[0]
        seen.append(name)


def test_cpu_is_the_default_target_and_gpu_only_adds_the_nvidia_runtime_variables():
    found = stages()
    assert list(found)[-1] == "cpu", "docker build without --target (a fork's `image: Dockerfile`) gives the CPU image"
    assert found["cpu"] == ["FROM runtime AS cpu"] and found["gpu"][0] == "FROM runtime AS gpu"
    (env,) = [line for line in found["gpu"] if line.startswith("ENV ")]
    variables = dict(item.split("=", 1) for item in env.split()[1:])
    assert variables["NVIDIA_VISIBLE_DEVICES"] == "all"
    assert {"compute", "utility"} <= set(variables["NVIDIA_DRIVER_CAPABILITIES"].split(","))
    assert "NVIDIA_" not in " ".join(found["runtime"]), "the CPU image must not claim the host's GPUs"


def test_layers_stay_slim_and_secret_free():
    runs = " ".join(ins("RUN"))
    assert "--no-cache-dir" in runs and "rm -rf /var/lib/apt/lists/*" in runs and "--no-install-recommends" in runs
    assert "apt-get clean" in runs
    assert "safe.directory" not in DOCKERFILE  # git trusts only the workspace, per command
    for line in ins("ENV") + ins("ARG"):
        assert not re.search(r"(TOKEN|SECRET|PASSWORD|PIP_CERT)\s*=", line, re.I), line
    assert "--mount=type=secret,id=pipcert" in runs  # the CA reaches pip as a build secret only


def test_release_builds_both_targets_on_one_base_with_provenance():
    job = RELEASE["jobs"]["image"]
    variants = {v["variant"]: v for v in job["strategy"]["matrix"]["include"]}
    assert {k: (v["target"], v["suffix"]) for k, v in variants.items()} == {"cpu": ("cpu", ""), "gpu": ("gpu", "-gpu")}
    assert set(stages()) >= {"cpu", "gpu"}
    build = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("docker/build-push-action"))
    assert build["with"]["provenance"] in (True, "mode=max") and build["with"]["sbom"] is True
    assert build["with"]["build-args"] == "BASE_IMAGE=${{ env.BASE }}" and build["with"]["target"] == "${{ matrix.target }}"
    tags = build["with"]["tags"]
    assert "ghcr.io/" in tags and "docker.io/" in tags and "${{ env.SUFFIX }}" in tags


def test_slimming_keeps_the_vendored_libraries_and_checks_what_it_strips():
    slim = (ROOT / "docker" / "slim.sh").read_text()
    assert "! -path '*.libs/*'" in slim and "ctypes.CDLL" in slim and ".unstripped" in slim
