from cml_action.report.shorten import shorten


def _report(rows: int, log_lines: int) -> str:
    table = "\n".join(["| k | v |", "|---|---|"] + [f"| metric_{i} | {i} |" for i in range(rows)])
    log = "\n".join(f"log line {i}" for i in range(log_lines))
    return f"## Title\n\nheadline\n\n{table}\n\n<details><summary>log</summary>\n\n```text\n{log}\n```\n\n</details>\n"


def test_short_text_is_untouched():
    text = _report(3, 3)
    assert shorten(text, 10_000) == (text, False)


def test_details_folded_before_tables_are_cut():
    text = _report(20, 5000)
    out, cut = shorten(text, 2000, "https://x/run")
    assert cut and len(out) <= 2000
    assert "metric_19" in out  # the table survived whole
    assert "log line 10" not in out and "[the full report](https://x/run)" in out


def test_tables_cut_then_text_cut_always_fits():
    for limit in (500, 1500, 5000, 65536):
        out, cut = shorten(_report(5000, 5000), limit)
        assert cut and len(out) <= limit
        assert out.startswith("## Title")
        assert out.count("```") % 2 == 0


def test_a_cut_inside_a_long_log_fence_closes_it_with_the_same_fence():
    from cml_action.report.images import _segments

    text = "## R\n\n`````text\n" + "\n".join(f"line {i} ````" for i in range(3000)) + "\n`````\n\nafter\n"
    out, cut = shorten(text, 5000)
    assert cut and out.rstrip().endswith("._")
    last, is_code = _segments(out)[-1]
    assert not is_code and "cut to fit the comment size limit" in last  # the note is outside the code block
