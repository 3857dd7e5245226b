"""TensorBoard scalars read from real event files written with TensorBoard's own writer."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from cml_action.errors import UserError
from cml_action.sources.tensorboard import scalar_plots


def write_events(logdir: Path, tags: dict[str, list[float]]) -> None:
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(logdir))
    for step in range(max(len(v) for v in tags.values())):
        values = [summary_pb2.Summary.Value(tag=tag, simple_value=series[step]) for tag, series in tags.items()
                  if step < len(series)]
        writer.add_event(event_pb2.Event(step=step, wall_time=time.time(), summary=summary_pb2.Summary(value=values)))
    writer.close()


def test_one_plot_per_tag_with_runs_overlaid(tmp_path: Path):
    write_events(tmp_path / "logs" / "train", {"loss": [1.0, 0.5, 0.25, 0.1], "lr": [0.1] * 4})
    write_events(tmp_path / "logs" / "eval", {"loss": [1.2, 0.7, 0.4]})
    plots = scalar_plots(tmp_path / "logs", tmp_path / "out")
    assert [p.source for p in plots] == ["logs:loss", "logs:lr"]
    assert "runs: eval, train" in plots[0].caption
    pixels = imread(plots[0].image)[:, :, :3]
    c0, c1 = np.array([0x1f, 0x77, 0xb4]) / 255, np.array([0xff, 0x7f, 0x0e]) / 255
    assert (np.abs(pixels - c0).sum(axis=2) < 0.05).sum() > 50  # first run's line
    assert (np.abs(pixels - c1).sum(axis=2) < 0.05).sum() > 50  # second run's line
    lr = imread(plots[1].image)[:, :, :3]
    assert (np.abs(lr - c1).sum(axis=2) < 0.05).sum() == 0  # one run only


def test_a_directory_without_event_files_is_a_clear_error(tmp_path: Path):
    (tmp_path / "logs").mkdir()
    with pytest.raises(UserError, match="no TensorBoard event files"):
        scalar_plots(tmp_path / "logs", tmp_path / "out")
