"""The house rule "no function above cyclomatic complexity 15", checked with radon on the report's modules
(the collect step, its sources, the plots, baselines and rendering)."""

from __future__ import annotations

from pathlib import Path

from radon.complexity import cc_visit

ROOT = Path(__file__).resolve().parent.parent
MODULES = ["cml_action/pipeline.py", "cml_action/gitrefs.py", "cml_action/report/render.py",
           "cml_action/sources", "cml_action/plots"]
LIMIT = 15


def _functions(blocks):
    """Functions and methods, closures included (radon nests methods in their class)."""
    for block in blocks:
        if hasattr(block, "methods"):
            yield from _functions(block.methods)
        else:
            yield block
            yield from _functions(getattr(block, "closures", []))


def test_no_function_above_the_limit():
    files = [p for m in MODULES for p in ([ROOT / m] if m.endswith(".py") else sorted((ROOT / m).glob("*.py")))]
    assert len(files) > 10
    over = [f"{path.relative_to(ROOT)}:{block.lineno} {block.name} ({block.complexity})"
            for path in files for block in _functions(cc_visit(path.read_text())) if block.complexity > LIMIT]
    assert not over, "\n".join(over)
