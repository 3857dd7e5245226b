#!/usr/bin/env python3
"""What posting costs: report+post of the example (5 metrics, 2 images) vs the same report with `--target none`.

Training is excluded (the metrics are produced once, before timing). Both variants run in this script,
in-process through `cml_action.cli.main`, against the GitHub stand-in on loopback, so the ratio compares
like with like on a noisy machine. Prints: median seconds of each, the overhead, its ratio, and the
number of API requests of a steady-state post (second run on the same pull request: sticky update).
Targets from the issue: <= 6 API requests and <= 1 s of overhead over loopback.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from repo_helpers import GIT_ENV, example_repo, git, train  # noqa: E402
from standins.github.server import GitHubStandIn  # noqa: E402

from cml_action.cli import main  # noqa: E402

REPO = "octo/models"
TOKEN = "ghs_benchmarkToken000000000000000000000"
ROUNDS = 5


def env_for(gh: GitHubStandIn, repo: Path, tmp: Path, head: str) -> dict[str, str]:
    event = tmp / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 1, "head": {"sha": head, "ref": "feature"},
                                                  "base": {"ref": "main"}}}))
    return {**os.environ, **GIT_ENV, "GITHUB_ACTIONS": "true", "GITHUB_API_URL": gh.api_url,
            "GITHUB_SERVER_URL": gh.server_url, "GITHUB_REPOSITORY": REPO, "GITHUB_EVENT_NAME": "pull_request",
            "GITHUB_EVENT_PATH": str(event), "GITHUB_SHA": head, "GITHUB_HEAD_REF": "feature",
            "GITHUB_BASE_REF": "main", "GITHUB_RUN_ID": "1", "GITHUB_WORKSPACE": str(repo), "INPUT_TOKEN": TOKEN}


def once(repo: Path, env: dict[str, str], target: str) -> float:
    args = ["report", "--workdir", str(repo), "--metrics", "metrics.json", "--params", "params.yaml",
            "--plots", "confusion_matrix.png importance.png", "--notebook-diff", "false", "--target", target, "--token", TOKEN]
    started = time.perf_counter()
    devnull = open(os.devnull, "w")
    saved = sys.stdout
    sys.stdout = devnull
    try:
        code = main(args, env)
    finally:
        sys.stdout = saved
        devnull.close()
    if code != 0:
        raise SystemExit(f"report failed with exit code {code}")
    return time.perf_counter() - started


def main_benchmark() -> None:
    with tempfile.TemporaryDirectory() as tmp_name, GitHubStandIn() as gh:
        tmp = Path(tmp_name)
        gh.add_repo(REPO)
        gh.add_token(TOKEN, {"contents": "write", "pull_requests": "write", "issues": "write", "metadata": "read"})
        repo = example_repo(tmp)
        train(repo)
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots()
        ax.bar(["a", "b", "c"], [3, 1, 2])
        fig.savefig(repo / "importance.png")
        head = git(repo, "rev-parse", "HEAD")
        gh.add_pull(REPO, 1, head_sha=head, head_ref="feature", base_ref="main")
        env = env_for(gh, repo, tmp, head)
        once(repo, env, "auto")  # first post: creates the assets branch and the comment
        before = len(gh.requests)
        once(repo, env, "auto")
        steady = [(r.method, r.path) for r in gh.requests[before:]]
        posting, local = [], []
        for _ in range(ROUNDS):
            local.append(once(repo, env, "none"))
            posting.append(once(repo, env, "auto"))
        gh.assert_clean()
    p, n = statistics.median(posting), statistics.median(local)
    print(f"report without posting (--target none): {n:.3f} s (median of {ROUNDS})")
    print(f"report and post (sticky update):        {p:.3f} s (median of {ROUNDS})")
    print(f"posting overhead: {p - n:.3f} s  (ratio {p / n:.2f}x; target <= 1 s)")
    print(f"API requests of one steady-state post: {len(steady)} (target <= 6)")
    for method, path in steady:
        print(f"  {method} {path}")


if __name__ == "__main__":
    main_benchmark()
