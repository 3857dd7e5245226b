"""A readable diff of the notebooks changed since the baseline, folded away by default.

Notebook JSON diffs are unreadable and outputs (images, long logs) drown the code change, so outputs and
execution counts are stripped and nbdime renders a cell-aware text diff.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from cml_action.gitrefs import changed_files, show
from cml_action.report.model import Section
from cml_action.sources.base import Contribution, Job

MAX_LINES = 400  # per notebook; a reviewer opens the notebook itself for more


def _strip(notebook: Any) -> Any:
    for cell in notebook.get("cells", []):
        cell.pop("id", None)  # ids churn when cells are re-created; they are not content
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        cell.get("metadata", {}).pop("execution", None)
    return notebook


def _read(raw: bytes | None) -> Any:
    import nbformat

    if raw is None:
        return nbformat.v4.new_notebook()
    return _strip(nbformat.reads(raw.decode("utf-8", errors="replace"), as_version=4))


def _diff_text(before: Any, after: Any) -> str:
    import nbdime
    from nbdime.prettyprint import PrettyPrintConfig, pretty_print_diff

    diff = nbdime.diff_notebooks(before, after)
    if not diff:
        return ""
    out = io.StringIO()
    pretty_print_diff(before, diff, "nb", PrettyPrintConfig(out=out, use_color=False, use_git=False, use_diff=False))
    return out.getvalue()


def _one(workspace: Path, baseline_sha: str, rel: str) -> str:
    """One notebook's part of the section."""
    path = workspace / rel
    try:
        before = _read(show(workspace, baseline_sha, rel))
        after = _read(path.read_bytes() if path.is_file() else None)
        text = _diff_text(before, after)
    except (ValueError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        return f"**`{rel}`**: not a readable notebook ({str(exc).splitlines()[0] if str(exc) else 'invalid'})"
    status = "deleted" if not path.is_file() else ("added" if show(workspace, baseline_sha, rel) is None else "changed")
    if not text.strip():
        return f"**`{rel}`** ({status}): only outputs changed"
    lines = text.rstrip().splitlines()
    cut = ""
    if len(lines) > MAX_LINES:
        cut = f"\n\n… {len(lines) - MAX_LINES} more lines not shown"
        lines = lines[:MAX_LINES]
    fence = "````" if any(line.startswith("```") for line in lines) else "```"
    return f"**`{rel}`** ({status}, outputs stripped)\n\n{fence}diff\n" + "\n".join(lines) + f"\n{fence}{cut}"


def notebook_diff_section(workspace: Path, baseline_sha: str) -> Section | None:
    notebooks = [p for p in changed_files(workspace, baseline_sha) if p.endswith(".ipynb")]
    if not notebooks:
        return None
    try:
        import nbdime  # noqa: F401
        import nbformat  # noqa: F401
    except ImportError:
        body = ("Notebooks changed (" + ", ".join(f"`{n}`" for n in notebooks) + "); install "
                "`cml-action[notebooks]` to see their diff here.")
        return Section("Notebook changes", body, priority=3, collapsible=True, open=False)
    parts = [_one(workspace, baseline_sha, rel) for rel in sorted(notebooks)]
    return Section(f"Notebook changes ({len(notebooks)})", "\n\n".join(parts), priority=3, collapsible=True, open=False)


class NotebookSource:
    """Notebooks changed since the first baseline (none without a baseline)."""

    def collect(self, job: Job) -> Contribution:
        out = Contribution()
        if job.baselines:
            section = notebook_diff_section(job.workspace, job.baselines[0].sha)
            if section is not None:
                out.sections.append(section)
        return out
