"""The machine spec every provider test starts from: one runner, its tags, a bootstrap without any secret."""

from __future__ import annotations

from cml_action.clouds.base import TAG_EXPIRES, TAG_LABEL, TAG_REPO, TAG_RUNNER, MachineSpec

NAME = "cml-20261123000000-abcdef"
SECRET = "ENCODED-JIT-CONFIG-single-use"


def runner_spec(region: str, **changes) -> MachineSpec:
    base = dict(name=NAME, region=region, gpu="t4", gpu_count=1, image="", disk_gb=128, subnet="", permission_set="",
                tags={TAG_RUNNER: NAME, TAG_LABEL: NAME, TAG_REPO: "octo/models", TAG_EXPIRES: "2026-11-23T12:00:00Z"},
                startup_script="#!/bin/bash\necho bootstrap\n", secret=SECRET, max_lifetime_s=3600)
    base.update(changes)
    return MachineSpec(**base)
