"""Notebook diffs between the baseline commit and the working tree, with real git and real notebooks."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

from cml_action.sources.notebooks import notebook_diff_section
from repo_helpers import git


def notebook(code: str, output: str) -> str:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(code, execution_count=3)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=output)]
    nb.cells = [nbformat.v4.new_markdown_cell("# Exploration"), cell]
    return nbformat.writes(nb)


def repo_with(tmp_path: Path) -> tuple[Path, str]:
    repo = tmp_path / "r"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "explore.ipynb").write_text(notebook("lr = 0.1\nprint(lr)", "0.1\n"))
    (repo / "old.ipynb").write_text(notebook("x = 1", "1\n"))
    (repo / "train.py").write_text("print('hi')\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    return repo, git(repo, "rev-parse", "HEAD")


def test_changed_notebooks_get_a_folded_diff_without_outputs(tmp_path: Path):
    repo, base = repo_with(tmp_path)
    (repo / "explore.ipynb").write_text(notebook("lr = 0.01\nprint(lr)", "A" * 5000))
    (repo / "old.ipynb").unlink()
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "change")
    section = notebook_diff_section(repo, base)
    assert section is not None and section.collapsible and not section.open
    assert "Notebook changes (2)" == section.title
    assert re.search(r"^-\s*lr = 0\.1$", section.body, re.M) and re.search(r"^\+\s*lr = 0\.01$", section.body, re.M)
    assert "AAAA" not in section.body  # outputs stripped
    assert "`old.ipynb`** (deleted" in section.body


def test_only_outputs_changed_says_so_and_nothing_changed_gives_no_section(tmp_path: Path):
    repo, base = repo_with(tmp_path)
    assert notebook_diff_section(repo, base) is None
    (repo / "explore.ipynb").write_text(notebook("lr = 0.1\nprint(lr)", "different output\n"))
    section = notebook_diff_section(repo, base)
    assert section is not None and "only outputs changed" in section.body
