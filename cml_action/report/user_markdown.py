"""The user's own markdown (`report:`), and the images it references: the only images besides `plots`.

Each local image it names is checked like any workspace file, must be an image by its bytes, and is copied
into the report folder; the link is re-pointed to the copy. So the publisher uploads only from the report
folder, and only what was declared here or by `plots`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable
from urllib.parse import quote, unquote

from cml_action.report.escape import code, prose
from cml_action.report.images import image_kind, local_refs, replace_refs
from cml_action.report.model import Section
from cml_action.workspace_files import Refused, check, in_output

MAX_CHARS = 1_000_000
MAX_IMAGE_BYTES = 10 * 1024 * 1024  # as publish.MAX_IMAGE_BYTES: a bigger file is not copied at all
FOLDER = "images/report"


def _source(ref: str, source_dir: Path, workspace: Path) -> Path | Refused:
    target = unquote(ref.split("#", 1)[0].split("?", 1)[0])
    if os.path.isabs(target):
        return Refused(ref, "absolute paths are not published; use a path inside the workspace")
    rel = os.path.relpath(os.path.normpath(source_dir / target), workspace.resolve())
    result = check(workspace, rel)
    if isinstance(result, Refused):
        return Refused(ref, result.reason)
    if in_output(workspace, result):
        return Refused(ref, "inside cml-action's own output folder")
    if result.stat().st_size > MAX_IMAGE_BYTES:
        return Refused(ref, f"beyond the {MAX_IMAGE_BYTES // 1048576} MiB published per image")
    with open(result, "rb") as fh:
        kind = image_kind(fh.read(64))
    if kind == "svg":
        return Refused(ref, "SVG is not published (it can carry scripts and links); use PNG")
    if not kind:
        return Refused(ref, "not an image (PNG, JPEG, GIF or WebP by its content)")
    return result


def user_section(path_text: str, workspace: Path, out_dir: Path,
                 problem: Callable[[str], None]) -> tuple[Section | None, list[str]]:
    """(the section, the report-folder paths of the images it declares)."""
    result = check(workspace, path_text)
    if isinstance(result, Refused):
        problem(f"{path_text}: {result.reason}")
        return None, []
    text = result.read_text(encoding="utf-8", errors="replace")
    if len(text) > MAX_CHARS:
        problem(f"{path_text}: {len(text):,} characters is beyond the {MAX_CHARS:,} kept; the rest was cut")
        text = text[:MAX_CHARS]
    root = workspace.resolve()
    declared: list[str] = []
    refused: dict[str, str] = {}
    copies: dict[str, str] = {}
    for ref in local_refs(text):
        source = _source(ref, result.parent, workspace)
        if isinstance(source, Refused):
            refused[ref] = source.reason
            continue
        rel = source.relative_to(root).as_posix()
        dest = out_dir / FOLDER / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
        copies[ref] = f"{FOLDER}/{rel}"
        declared.append(copies[ref])

    def note(ref: str) -> str:
        return f"⚠️ image {code(ref)} was not published: {prose(refused.get(ref, 'not found'))}."

    body = replace_refs(text, lambda ref: quote(copies[ref]) if ref in copies else None, note)
    return Section(title="", body=body, priority=2), declared
