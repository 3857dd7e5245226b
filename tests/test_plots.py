"""Plot entries and every plot kind, checked on the pixels of the PNG, not only on its existence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from cml_action.errors import UserError
from cml_action.plots import PlotSpec, parse_plot_entries, render_plot
from cml_action.plots.data import load_table
from cml_action.plots.render import BASE, HEAD, choose_kind


def rgb(hex_color: str) -> np.ndarray:
    return np.array([int(hex_color[i:i + 2], 16) for i in (1, 3, 5)]) / 255


def count(image: Path, color: str, tol: float = 0.06) -> int:
    pixels = imread(image)[:, :, :3]
    return int((np.abs(pixels - rgb(color)).sum(axis=2) < tol).sum())


def csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_entries_with_options_quoting_and_several_paths():
    specs = parse_plot_entries(['loss.csv x=epoch y=loss,val_loss title="Loss curve"', "a.png b/*.csv"])
    assert specs[0] == PlotSpec("loss.csv", {"x": "epoch", "y": "loss,val_loss", "title": "Loss curve"})
    assert specs[0].ys == ["loss", "val_loss"]
    assert [s.pattern for s in specs[1:]] == ["a.png", "b/*.csv"]
    assert PlotSpec("c.json", {"template": "confusion_normalized"}).kind == "confusion"


@pytest.mark.parametrize("line, message", [
    ("a.csv colour=red", "plots line 1: unknown option 'colour'"),
    ('a.csv title="open', "plots line 1: No closing quotation"),
    ("a.csv type=pie", "type must be one of"),
    ("x=epoch", "options without a file"),
])
def test_entry_errors_name_the_line(line, message):
    with pytest.raises(UserError, match=message):
        parse_plot_entries([line])


def test_line_plot_overlays_the_baseline_only_when_there_is_one(tmp_path: Path):
    head = csv(tmp_path / "head.csv", "epoch,loss\n" + "".join(f"{i},{1 / (i + 1)}\n" for i in range(50)))
    base = csv(tmp_path / "base.csv", "epoch,loss\n" + "".join(f"{i},{2 / (i + 2)}\n" for i in range(50)))
    with_base = render_plot(PlotSpec("loss.csv"), "loss.csv", head, base, tmp_path / "a")
    alone = render_plot(PlotSpec("loss.csv"), "loss.csv", head, None, tmp_path / "b")
    assert count(with_base.image, HEAD) > 100 and count(with_base.image, BASE) > 50
    assert count(alone.image, HEAD) > 100 and count(alone.image, BASE) == 0
    assert "head vs baseline" in with_base.caption and "Line plot" in alone.caption


def test_same_input_gives_the_same_bytes(tmp_path: Path):
    head = csv(tmp_path / "h.csv", "step,acc\n1,0.5\n2,0.7\n3,0.8\n")
    first = render_plot(PlotSpec("h.csv"), "h.csv", head, None, tmp_path / "1").image.read_bytes()
    second = render_plot(PlotSpec("h.csv"), "h.csv", head, None, tmp_path / "2").image.read_bytes()
    assert first == second


def test_categorical_x_is_a_bar_chart_with_grouped_baseline(tmp_path: Path):
    head = csv(tmp_path / "imp.csv", "feature,importance\nage,0.5\nincome,0.3\nzip,0.2\n")
    base = csv(tmp_path / "imp0.csv", "feature,importance\nage,0.4\nincome,0.4\nzip,0.2\n")
    plot = render_plot(PlotSpec("imp.csv"), "imp.csv", head, base, tmp_path)
    assert "Bar chart" in plot.caption
    assert count(plot.image, HEAD) > 500 and count(plot.image, BASE) > 500  # filled bars of both


def test_confusion_from_pairs_with_baseline_has_three_panels(tmp_path: Path):
    rows = "actual,predicted\n" + "cat,cat\n" * 8 + "cat,dog\n" * 2 + "dog,dog\n" * 9 + "dog,cat\n"
    base_rows = "actual,predicted\n" + "cat,cat\n" * 5 + "cat,dog\n" * 5 + "dog,dog\n" * 10
    head = csv(tmp_path / "cm.csv", rows)
    base = csv(tmp_path / "cm0.csv", base_rows)
    assert choose_kind(PlotSpec("cm.csv"), load_table(head, "cm.csv")) == "confusion"
    one = imread(render_plot(PlotSpec("cm.csv"), "cm.csv", head, None, tmp_path / "1").image)
    three = imread(render_plot(PlotSpec("cm.csv"), "cm.csv", head, base, tmp_path / "3").image)
    assert three.shape[1] > 2.5 * one.shape[1] / 1.2  # three panels side by side
    # the difference panel uses the diverging map: strong red (fewer) and blue (more) cells exist
    pixels = three[:, :, :3]
    reddish = ((pixels[:, :, 0] > 0.35) & (pixels[:, :, 1] < 0.1) & (pixels[:, :, 2] < 0.25)).sum()
    bluish = ((pixels[:, :, 2] > 0.35) & (pixels[:, :, 0] < 0.1) & (pixels[:, :, 1] < 0.25)).sum()
    assert reddish > 2000 and bluish > 2000  # a whole cell of each


def test_precomputed_matrix_is_recognised(tmp_path: Path):
    head = csv(tmp_path / "m.csv", "label,a,b\na,5,1\nb,2,7\n")
    plot = render_plot(PlotSpec("m.csv"), "m.csv", head, None, tmp_path)
    assert plot.caption.startswith("Confusion matrix")


def test_roc_and_pr_curves_from_columns(tmp_path: Path):
    roc = tmp_path / "roc.json"
    roc.write_text(json.dumps({"roc": [{"fpr": f, "tpr": min(1.0, f * 3)} for f in np.linspace(0, 1, 21)]}))
    pr = csv(tmp_path / "pr.csv", "recall,precision\n0,1\n0.5,0.9\n1,0.5\n")
    roc_plot = render_plot(PlotSpec("roc.json"), "roc.json", roc, None, tmp_path)
    pr_plot = render_plot(PlotSpec("pr.csv"), "pr.csv", pr, None, tmp_path)
    assert roc_plot.caption.startswith("ROC curve") and pr_plot.caption.startswith("Precision-recall")
    assert count(roc_plot.image, HEAD) > 100


def test_scatter_on_request(tmp_path: Path):
    head = csv(tmp_path / "s.csv", "x,y\n" + "".join(f"{i % 7},{(i * 13) % 11}\n" for i in range(100)))
    plot = render_plot(PlotSpec("s.csv", {"type": "scatter"}), "s.csv", head, None, tmp_path)
    assert plot.caption.startswith("Scatter plot") and count(plot.image, HEAD, 0.3) > 50


def test_a_million_rows_are_decimated_keeping_a_single_spike(tmp_path: Path):
    n = 1_000_000
    y = np.sin(np.arange(n) / 5000)
    y[654_321] = 50.0  # one outlier among a million points must still be drawn
    path = tmp_path / "big.csv"
    np.savetxt(path, np.column_stack([np.arange(n), y]), delimiter=",", header="step,value", comments="", fmt="%.6g")
    plot = render_plot(PlotSpec("big.csv"), "big.csv", path, None, tmp_path / "out")
    assert "1,000,000 rows shown as" in plot.caption
    pixels = imread(plot.image)[:, :, :3]
    hits = np.argwhere(np.abs(pixels - rgb(HEAD)).sum(axis=2) < 0.06)
    top = hits[:, 0].min()
    # the spike reaches the top of the data area, far above the sine's band
    sine_rows = hits[hits[:, 1] < hits[:, 1].min() + 20][:, 0]
    assert top < sine_rows.min() - 100


@pytest.mark.parametrize("content, message", [
    ("", "cannot read as a table"),
    ("a,b\n", "no rows to plot"),
    ("name\nx\ny\n", "no numeric column"),
])
def test_unplottable_files_are_one_line_errors(tmp_path: Path, content, message):
    path = csv(tmp_path / "bad.csv", content)
    with pytest.raises(UserError, match=message):
        render_plot(PlotSpec("bad.csv"), "bad.csv", path, None, tmp_path)


def test_an_unterminated_quote_in_plot_data_is_an_error_not_a_silent_row(tmp_path: Path):
    path = tmp_path / "loss.csv"
    path.write_text('step,loss\n1,0.5\n2,"0.4\n3,0.3\n')
    with pytest.raises(UserError, match="loss.csv: cannot read as a table"):
        load_table(path, "loss.csv")


def test_ticks_are_round_numbers_labelled_alike():
    from cml_action.plots.canvas import nice_ticks, tick_labels

    assert nice_ticks(0.0, 1.0) == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert nice_ticks(-3.2, 7.9) == pytest.approx([-2.0, 0.0, 2.0, 4.0, 6.0])
    assert nice_ticks(5.0, 5.0) == [5.0]
    assert tick_labels([-0.5, 0.0, 0.5]) == ["\u22120.5", "0.0", "0.5"]  # one format per axis, a real minus
    assert tick_labels([0.0, 2.5, 5.0]) == ["0.0", "2.5", "5.0"]
    assert tick_labels([0.0, 2e6, 4e6]) == ["0", "2e+06", "4e+06"]
    assert tick_labels([-1e-9 * 0, 1e-5, 2e-5]) == ["0", "1e\u221205", "2e\u221205"]


def test_long_tick_labels_push_the_axes_instead_of_being_cut(tmp_path: Path):
    head = csv(tmp_path / "big.csv", "step,value\n" + "".join(f"{i},{-1234567.5 * i}\n" for i in range(20)))
    plot = render_plot(PlotSpec("big.csv"), "big.csv", head, None, tmp_path)
    pixels = imread(plot.image)[:, :, :3]
    dark = pixels.sum(axis=2) < 1.0
    assert not dark[:, :2].any()  # nothing touches the left edge
    assert dark[:, 2:40].any()  # the y label and tick labels are there


def test_panels_in_a_row_keep_their_labels_out_of_the_neighbour(tmp_path: Path):
    rows = "actual,predicted\n" + "benign,benign\n" * 8 + "benign,malignant\n" * 2 + "malignant,malignant\n" * 9
    head = csv(tmp_path / "cm.csv", rows + "malignant,benign\n")
    base = csv(tmp_path / "cm0.csv", rows + "malignant,malignant\n")
    pixels = imread(render_plot(PlotSpec("cm.csv"), "cm.csv", head, base, tmp_path).image)[:, :, :3]
    dark = pixels.sum(axis=2) < 1.5
    spines = np.flatnonzero(dark.sum(axis=0) > 0.3 * len(dark))  # the panels' left and right spines
    right = spines[np.flatnonzero(np.diff(spines) > 5)[0]]  # the first panel's right spine
    clear = (pixels[:, right + 2:right + 6].sum(axis=2) > 2.9).all()
    assert clear  # the next panel's y label and tick labels start clear of it
