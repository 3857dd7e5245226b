from pathlib import Path

from cml_action.ci.context import CIContext
from cml_action.gitrefs import Baseline
from cml_action.metrics import MetricRow
from cml_action.report.render import ReportData, change, fmt, metrics_table, params_table, render
from cml_action.train import TrainResult


def test_change_shows_direction_absolute_and_percent():
    assert change(0.92, 0.9) == "▲ +0.02 (+2.22%)"
    assert change(0.5, 1.0) == "▼ -0.5 (-50.00%)"
    assert change(1.0, 1.0) == "="
    assert change(1.0, 0.0) == "▲ +1"  # no percentage of zero
    assert change(None, 1.0) == "removed" and change(1.0, None) == "new"
    assert change(float("nan"), 1.0) == "NaN"
    assert change("adam", "sgd") == "changed"


def test_fmt():
    assert fmt(3.0) == "3" and fmt(0.123456789) == "0.123457" and fmt(None) == "—" and fmt(False) == "false"


def test_metrics_table_with_baseline_and_file_prefix_when_several_files():
    rows = [MetricRow("a.json", "acc", 0.9, 0.8), MetricRow("b.json", "acc", 0.7, None)]
    table = metrics_table(rows, "main")
    assert "| Metric | main | head | Change |" in table
    assert "| a.json: acc | 0.8 | 0.9 | ▲ +0.1 (+12.50%) |" in table
    assert "| b.json: acc | — | 0.7 | new |" in table


def test_params_changed_first_and_bold():
    rows = [MetricRow("p.yaml", "seed", 1.0, 1.0), MetricRow("p.yaml", "lr", 0.1, 0.01)]
    table = params_table(rows, "main").splitlines()
    assert table[2] == "| **lr** | 0.01 | **0.1** |"
    assert table[3] == "| seed | 1 | 1 |"


def test_failed_training_report_has_tail_in_details_and_summary_first():
    ctx = CIContext(kind="github", workspace=Path("."), run_url="https://ghe.example/o/r/actions/runs/1")
    training = TrainResult("python train.py", 3, 75.0, [f"line {i}" for i in range(50)], "CPU ×2")
    data = ReportData(title="Model report", ctx=ctx, sha="a" * 40, branch="feat",
                      baseline=Baseline("origin/main", "b" * 40, "main"), training=training,
                      metrics=[MetricRow("m.json", "acc", 0.9, 0.91)])
    text = render(data)
    lines = text.splitlines()
    assert lines[0] == "## Model report"
    assert lines[2].startswith("❌ **training failed** (exit 3)")
    assert "**acc** 0.9 (▼ -0.01 (-1.10%) vs main)" in lines[2]
    assert "trained in 1m 15s" in text and "vs `main` (`bbbbbbb`)" in text
    assert "<details><summary>Last 50 log lines</summary>" in text
    assert text.index("line 0") < text.index("line 49") < text.index("</details>")
