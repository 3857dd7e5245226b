#!/usr/bin/env python3
"""The whole report against DVC's own three commands, each run as a process, on a project shaped like DVC's
get-started (dvc.yaml with three stages, 8 plot declarations over 13 files, metrics and params at two
revisions; tests/dvc_helpers.get_started_repo builds it with real `dvc repro`/`dvc push`/commits).

Times, alternating, ROUNDS times each:
  - ours: `cml-action report --baseline main` (metrics, params, every plot drawn, the report written);
  - DVC's: `dvc metrics diff main` + `dvc params diff main` + `dvc plots diff main -o DIR`, one after the other;
  - ours again on the same project with only its first plot declared: the difference, over the 7 others, is
    what each plot after the first costs.
Prints the best of the rounds (wall and CPU time: on a shared machine the minimum is the estimate least swayed
by other processes; medians follow), the ratio (goal: ours >= 3x faster) and the per-plot cost (goal: <= 50 ms),
and checks that every metric and param equals DVC's.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from dvc_helpers import DVC, dvc, get_started_repo, only_first_plot  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "5"))
PLOTS = 8
ENV = {**os.environ, "DVC_NO_ANALYTICS": "1", "PYTHONPATH": str(ROOT)}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(args: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and its children: less swayed by a busy machine)."""
    started, cpu = time.perf_counter(), _cpu()
    subprocess.run(args, cwd=cwd, env=ENV, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started, _cpu() - cpu


def ours(repo: Path) -> tuple[float, float]:
    shutil.rmtree(repo / "cml-report", ignore_errors=True)
    return _timed([sys.executable, "-m", "cml_action", "report", "--baseline", "main", "--target", "none",
                   "--notebook-diff", "false"], repo)


def theirs(repo: Path) -> tuple[float, float]:
    shutil.rmtree(repo / "dvc_plots", ignore_errors=True)
    runs = [_timed([DVC, *args], repo) for args in (["metrics", "diff", "main"], ["params", "diff", "main"],
                                                    ["plots", "diff", "main", "-o", "dvc_plots"])]
    return sum(w for w, _ in runs), sum(c for _, c in runs)


def agree(repo: Path) -> bool:
    """Every number in our report's tables is DVC's: compared through the library call the report makes."""
    from cml_action.sources import dvc as dvc_source

    found = dvc_source.declared(repo)
    for rows, what in ((dvc_source.metric_rows(repo, "main", found), "metrics"),
                       (dvc_source.param_rows(repo, "main", found), "params")):
        data = json.loads(dvc(repo, what, "diff", "--json", "--all", "main") or "{}")
        expected = {(f, k): (v.get("old"), v.get("new")) for f, keys in data.items() for k, v in keys.items()}
        if {(r.file, r.key): (r.base, r.head) for r in rows} != expected:
            return False
    return True


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        repo = get_started_repo(Path(tmp) / "full")
        single = Path(tmp) / "single" / repo.name
        shutil.copytree(repo, single, symlinks=True)
        only_first_plot(single)
        ours(repo), theirs(repo), ours(single)  # warm the file cache and DVC's site cache once
        mine, dvcs, one = [], [], []
        for _ in range(ROUNDS):
            mine.append(ours(repo))
            dvcs.append(theirs(repo))
            one.append(ours(single))
        drawn = len(list((repo / "cml-report").rglob("*.png")))
        same = agree(repo)
    print(f"project: get-started shape, {PLOTS} plot declarations ({drawn} images in our report), 2 revisions; "
          f"{len(os.sched_getaffinity(0))} cores, load average {os.getloadavg()[0]:.1f}")
    for what, index in (("wall", 0), ("CPU", 1)):
        o, t, s = (min(r[index] for r in runs) for runs in (mine, dvcs, one))
        per_plot = (o - s) / (PLOTS - 1) * 1000
        print(f"{what}, best of {ROUNDS}: cml-action report {o:.2f} s; dvc metrics diff + params diff + plots diff "
              f"{t:.2f} s; ratio {t / o:.1f}x (goal >= 3x); with 1 plot declaration {s:.2f} s, so each further "
              f"plot {per_plot:.0f} ms (goal <= 50 ms)")
    print(f"medians (wall): ours {statistics.median(r[0] for r in mine):.2f} s, "
          f"DVC's {statistics.median(r[0] for r in dvcs):.2f} s")
    print(f"every metric and param equals DVC's: {same}")


if __name__ == "__main__":
    main()
