"""The prebuilt image, built for real with podman (no Docker engine here) and run with chroot.

tests/image/build_local.sh builds the CPU variant from a debootstrapped bookworm base, checks the
container-action rules on the result and runs the example in local mode inside it; this test then runs
the image's entrypoint against the GitHub stand-in, as the action does on a pull request.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from repo_helpers import ROOT, example_repo, git

TAG = "localhost/cml-action:test"
OWNER_REPO = "octo/models"
TOKEN = "ghs_imageTestToken00000000000000000000"


@pytest.fixture(scope="module")
def built() -> dict[str, str]:
    out = subprocess.run([str(ROOT / "tests" / "image" / "build_local.sh"), TAG], capture_output=True, text=True,
                         timeout=1800)
    assert out.returncode == 0, (out.stdout[-3000:], out.stderr[-3000:])
    size = re.search(r"^image size: (\d+) bytes", out.stdout, re.M)
    report = re.search(r"^report: ok", out.stdout, re.M)
    assert size and report, out.stdout[-2000:]
    return {"size": size.group(1), "log": out.stdout}


def test_cpu_image_is_under_one_gigabyte_and_runs_the_example(built):
    assert int(built["size"]) <= 1_000_000_000
    assert "trained on" in built["log"]  # the example trained inside the image


def test_the_image_posts_a_report_to_the_github_standin(built, github_standin, tmp_path: Path):
    github_standin.add_repo(OWNER_REPO)
    github_standin.add_token(TOKEN, {"contents": "write", "pull_requests": "write", "metadata": "read"})
    repo = example_repo(tmp_path)
    head = git(repo, "rev-parse", "HEAD")
    github_standin.add_pull(OWNER_REPO, 2, head_sha=head, head_ref="feature", base_ref="main")
    (repo / ".event.json").write_text(json.dumps({"pull_request": {"number": 2, "head": {"sha": head, "ref": "feature"},
                                                                   "base": {"ref": "main"}}}))
    env = {"GITHUB_ACTIONS": "true", "GITHUB_API_URL": github_standin.api_url, "GITHUB_SERVER_URL": github_standin.server_url,
           "GITHUB_REPOSITORY": OWNER_REPO, "GITHUB_EVENT_NAME": "pull_request",
           "GITHUB_EVENT_PATH": "/github/workspace/.event.json", "GITHUB_SHA": "f" * 40, "GITHUB_HEAD_REF": "feature",
           "GITHUB_BASE_REF": "main", "GITHUB_WORKSPACE": "/github/workspace", "INPUT_TOKEN": TOKEN,
           "INPUT_RUN": "python train.py", "INPUT_METRICS": "metrics.json", "INPUT_PARAMS": "params.yaml",
           "INPUT_PLOTS": "confusion_matrix.png", "INPUT_TITLE": "Image report"}
    out = subprocess.run([str(ROOT / "tests" / "image" / "run_in_image.sh"), TAG, str(repo)], capture_output=True,
                         text=True, timeout=600, env={**os.environ, **env, "CML_PASS_ENV": " ".join(env),
                                                      "CML_IMAGE_OUT": str(tmp_path / "after")})
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    comments = [c for c in github_standin.repos[OWNER_REPO].comments.values()]
    assert len(comments) == 1 and "## Image report" in comments[0]["body"] and "?raw=true" in comments[0]["body"]
    assert "| **model.max_depth** |" in comments[0]["body"]  # compared with main inside the container
