"""The user's own markdown (`report`), first in the report, its local images copied into the report folder.

Its image links are relative to its own folder; the report lives elsewhere and is uploaded as a folder (the
artifact of the fork pattern), so each local image is copied under `images/` and the link re-pointed there.
An image that may not leave the machine (outside the workspace, a special file) becomes a note instead.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from cml_action.report.model import Section
from cml_action.sources.base import Contribution, Job
from cml_action.workspace_files import Refused, check


class MarkdownSource:
    def __init__(self, path: str) -> None:
        self.path = path

    def collect(self, job: Job) -> Contribution:
        from cml_action.report.images import replace_refs

        out = Contribution()
        result = check(job.workspace, self.path)
        if isinstance(result, Refused):
            out.problems.add(f"{self.path}: {result.reason}")
            return out
        text = result.read_text(encoding="utf-8", errors="replace")
        notes: dict[str, str] = {}

        def repoint(ref: str) -> str | None:
            if ref.startswith("/"):
                return ref
            return _copy_in(job, result.parent, ref, notes)

        body = replace_refs(text, repoint, lambda ref: f"⚠️ image `{ref}` was not included: {notes.get(ref, 'not found')}.")
        out.lead_sections.append(Section(title="", body=body, priority=2))
        return out


def _copy_in(job: Job, source_dir: Path, ref: str, notes: dict[str, str]) -> str | None:
    root, out_dir = job.workspace.resolve(), job.out_dir.resolve()
    target = Path(os.path.normpath(source_dir / ref.split("#", 1)[0].split("?", 1)[0]))
    rel = os.path.relpath(target, root)
    checked = check(root, rel)
    if isinstance(checked, Refused):
        notes[ref] = checked.reason
        return None
    if out_dir in checked.parents:
        return checked.relative_to(out_dir).as_posix()
    dest = out_dir / "images" / Path(rel)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(checked, dest)
    return dest.relative_to(out_dir).as_posix()
