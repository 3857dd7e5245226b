"""The gate grammar, its errors, and evaluation against metric rows (incl. missing, NaN, ambiguous)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cml_action.errors import UserError
from cml_action.gates import evaluate_gates, gates_markdown, parse_gates
from cml_action.metrics import MetricRow

ROWS = [
    MetricRow("metrics.json", "accuracy", 0.91, 0.90),
    MetricRow("metrics.json", "loss", 0.30, 0.25),
    MetricRow("metrics.json", "eval.f1", 0.80, None),
    MetricRow("metrics.json", "nan_metric", float("nan"), 1.0),
    MetricRow("metrics.json", "name", "resnet", "resnet"),
    MetricRow("a/scores.json", "auc", 0.7, 0.6),
    MetricRow("b/scores.json", "auc", 0.5, 0.6),
]


def results(text: str, missing: str = "fail"):
    return evaluate_gates(parse_gates(text.splitlines()), ROWS, missing)


@pytest.mark.parametrize("rule, ok, threshold", [
    ("accuracy >= 0.9", True, 0.9),
    ("accuracy > 0.91", False, 0.91),
    ("accuracy >= baseline - 0.005", True, 0.895),
    ("accuracy >= baseline + 0.02", False, 0.92),
    ("loss <= baseline + 10%", False, 0.275),
    ("loss <= baseline + 20%", True, 0.3),
    ("loss < baseline", False, 0.25),
    ("accuracy == 0.91", True, 0.91),
    ("a/scores.json:auc > baseline", True, 0.6),
])
def test_rules(rule, ok, threshold):
    (result,) = results(rule).results
    assert result.ok is ok
    assert result.threshold == pytest.approx(threshold)


def test_percent_of_a_negative_baseline_uses_its_magnitude():
    rows = [MetricRow("m.json", "log_likelihood", -95.0, -100.0)]
    (r,) = evaluate_gates(parse_gates(["log_likelihood >= baseline + 5%"]), rows, "fail").results
    assert r.threshold == pytest.approx(-95.0) and r.ok


def test_missing_values_fail_with_a_reason_or_are_skipped():
    res = results("eval.f1 >= baseline\nunknown > 1\nnan_metric > 0\nname > 1")
    reasons = [r.reason for r in res.results]
    assert [r.ok for r in res.results] == [False, False, False, False]
    assert reasons == ["no baseline value", "no metric 'unknown'", "the value is NaN, not a finite number",
                       "no numeric value"]
    assert res.status == "failed"
    skipped = results("eval.f1 >= baseline\naccuracy >= 0.5", missing="skip")
    assert [r.ok for r in skipped.results] == [None, True] and skipped.status == "passed"


def test_an_ambiguous_name_names_both_files_even_when_skipping():
    (r,) = results("auc > 0.1", missing="skip").results
    assert r.ok is False and "a/scores.json and b/scores.json" in r.reason


def test_markdown_table_marks_each_rule():
    text = gates_markdown(results("accuracy >= 0.9\nloss < baseline"))
    assert "| `accuracy >= 0.9` | 0.91 | >= 0.9 | ✅ |" in text
    assert "| `loss < baseline` | 0.3 | < 0.25 | ❌ |" in text


@pytest.mark.parametrize("text, where", [
    ("accuracy => 0.9", "line 1, column 10: expected one of"),
    ("accuracy >= ", "line 1, column 12: expected a number or 'baseline'"),
    ("\n# comment\naccuracy >= baseline - x", "line 3, column 24: expected a number after '-'"),
    ("accuracy >= 0.9 or more", "line 1, column 17: unexpected"),
    (">= 0.9", "line 1, column 1: expected a metric name"),
    ("accuracy >= baseline ± 1", "use + or -"),
    ("accuracy >= inf", "expected a number"),
])
def test_parse_errors_name_line_and_column(text, where):
    with pytest.raises(UserError) as err:
        parse_gates(text.splitlines())
    assert where in str(err.value)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.text(max_size=60), max_size=5))
def test_no_input_crashes_the_parser(lines):
    try:
        rules = parse_gates(lines)
    except UserError as exc:
        assert str(exc).startswith("gates line ")
        return
    for rule in rules:
        assert rule.op in (">=", ">", "<=", "<", "==")


@settings(max_examples=200, deadline=None)
@given(value=st.floats(allow_nan=False, allow_infinity=False, width=32),
       base=st.floats(allow_nan=False, allow_infinity=False, width=32),
       offset=st.floats(min_value=0, max_value=1e6, allow_nan=False, width=32))
def test_relative_rules_agree_with_arithmetic(value, base, offset):
    rows = [MetricRow("m.json", "m", value, base)]
    (r,) = evaluate_gates(parse_gates([f"m >= baseline - {offset!r}"]), rows, "fail").results
    assert r.ok == (value >= base - offset)
    assert not math.isnan(r.threshold)


@pytest.mark.parametrize("rule, value, shown", [("acc >= 0.9", math.inf, "Infinity"), ("loss <= 0.5", -math.inf, "-Infinity"),
                                                 ("acc >= 0.9", math.nan, "NaN")])
@pytest.mark.parametrize("missing", ["fail", "skip"])
def test_a_non_finite_value_fails_its_rule_with_a_reason_even_when_skipping(rule, value, shown, missing):
    name = rule.split()[0]
    (r,) = evaluate_gates(parse_gates([rule]), [MetricRow("m.json", name, value, 0.8)], missing).results
    assert r.ok is False and r.reason == f"the value is {shown}, not a finite number"


def test_a_non_finite_baseline_fails_a_relative_rule():
    (r,) = evaluate_gates(parse_gates(["acc >= baseline - 1%"]), [MetricRow("m.json", "acc", 0.9, math.inf)], "skip").results
    assert r.ok is False and "the baseline threshold is NaN, not a finite number" == r.reason
