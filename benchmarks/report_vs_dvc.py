#!/usr/bin/env python3
"""Metrics + params diff of a DVC project: cml-action against DVC's own commands, on the same repository.

Builds the DVC example (git + dvc init + a local remote, baseline on main, changed params reproduced on a branch),
then times, several times each, in this script:
  - ours: dvc_source.declared() + metric_rows() + param_rows() against `main` (what the report uses);
  - DVC's: `dvc metrics diff --json main` + `dvc params diff --json main`, as a user runs them.
Prints the medians and the ratio (target: ours >= 5x faster), and checks that the numbers agree.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from dvc_helpers import dvc, dvc_repo

from cml_action.sources import dvc as dvc_source

ROUNDS = 5


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        repo = dvc_repo(Path(tmp), cached_metrics=True)
        ours, theirs = [], []
        for _ in range(ROUNDS):
            started = time.perf_counter()
            found = dvc_source.declared(repo)
            metrics = dvc_source.metric_rows(repo, "main", found)
            params = dvc_source.param_rows(repo, "main", found)
            ours.append(time.perf_counter() - started)
            started = time.perf_counter()
            dvc_metrics = json.loads(dvc(repo, "metrics", "diff", "--json", "--all", "main"))
            dvc_params = json.loads(dvc(repo, "params", "diff", "--json", "--all", "main"))
            theirs.append(time.perf_counter() - started)
        agree = all(
            {(r.file, r.key): (r.base, r.head) for r in rows}
            == {(f, k): (v.get("old"), v.get("new")) for f, keys in data.items() for k, v in keys.items()}
            for rows, data in ((metrics, dvc_metrics), (params, dvc_params)))
    o, t = statistics.median(ours), statistics.median(theirs)
    print(f"cml-action metrics+params diff: {o * 1000:.0f} ms (median of {ROUNDS}, in-process, declarations included)")
    print(f"dvc metrics diff + dvc params diff: {t * 1000:.0f} ms (median of {ROUNDS}, the CLI as a user runs it)")
    print(f"cml-action first call, importing DVC included: {ours[0] * 1000:.0f} ms")
    print(f"ratio: {t / o:.1f}x faster (target >= 5x); numbers agree with DVC: {agree}")


if __name__ == "__main__":
    main()
