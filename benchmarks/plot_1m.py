#!/usr/bin/env python3
"""Rendering a 1,000,000-row CSV: cml-action's plot against reading the same file with pandas alone and against
a naive matplotlib plot of every point, in the same script. Target: <= 2 s for the whole plot."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from timing import best_of  # benchmarks/ is the script folder, so its helper imports by name


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from cml_action.plots import PlotSpec, render_plot

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "loss.csv"
        n = 1_000_000
        steps = np.arange(n)
        loss = 1 / np.sqrt(steps + 1) + np.random.default_rng(0).normal(0, 0.01, n)
        pd.DataFrame({"step": steps, "loss": loss, "val_loss": loss * 1.1}).to_csv(path, index=False)
        render_plot(PlotSpec("loss.csv"), "loss.csv", path, None, Path(tmp) / "warm")  # imports, font cache

        ours = best_of(3, lambda: render_plot(PlotSpec("loss.csv"), "loss.csv", path, path, Path(tmp) / "out"))
        read = best_of(3, lambda: pd.read_csv(path))

        def naive() -> None:
            frame = pd.read_csv(path)
            fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
            for column in ("loss", "val_loss"):
                ax.plot(frame["step"], frame[column])
                ax.plot(frame["step"], frame[column], linestyle="--")
            fig.savefig(Path(tmp) / "naive.png")
            plt.close(fig)

        naive_time = best_of(1, naive)
    print(f"cml-action plot (head + baseline, 1,000,000 rows x 2 series): {ours:.2f} s (target <= 2 s)")
    print(f"pandas.read_csv alone (both files' worth is 2x this):        {read:.2f} s  -> plot/read ratio {ours / read:.2f}")
    print(f"naive matplotlib plot of every point:                       {naive_time:.2f} s  -> {naive_time / ours:.1f}x slower")


if __name__ == "__main__":
    main()
