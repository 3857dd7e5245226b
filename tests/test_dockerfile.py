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


def test_base_is_an_argument_and_every_stage_uses_it():
    assert ins("ARG")[0].startswith("ARG BASE_IMAGE=")
    assert all(line.startswith("FROM ${BASE_IMAGE}") for line in ins("FROM"))


def test_layers_stay_slim_and_secret_free():
    runs = " ".join(ins("RUN"))
    assert "--no-cache-dir" in runs and "rm -rf /var/lib/apt/lists/*" in runs and "--no-install-recommends" in runs
    assert "apt-get clean" in runs
    assert "safe.directory" not in DOCKERFILE  # git trusts only the workspace, per command
    for line in ins("ENV") + ins("ARG"):
        assert not re.search(r"(TOKEN|SECRET|PASSWORD|PIP_CERT)\s*=", line, re.I), line
    assert "--mount=type=secret,id=pipcert" in runs  # the CA reaches pip as a build secret only


def test_release_builds_both_variants_with_provenance():
    job = RELEASE["jobs"]["image"]
    variants = {v["variant"]: v for v in job["strategy"]["matrix"]["include"]}
    assert set(variants) == {"cpu", "gpu"}
    assert variants["cpu"]["base"].startswith("python:3.11-slim")
    assert re.fullmatch(r"nvidia/cuda:\d+\.\d+\.\d+-runtime-ubuntu\d\d\.04", variants["gpu"]["base"])
    build = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("docker/build-push-action"))
    assert build["with"]["provenance"] in (True, "mode=max") and build["with"]["sbom"] is True
    assert "BASE_IMAGE=${{ matrix.base }}" in build["with"]["build-args"]
    tags = build["with"]["tags"]
    assert "ghcr.io/" in tags and "docker.io/" in tags
