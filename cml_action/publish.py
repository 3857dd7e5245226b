"""From a finished markdown report to the places people read it.

One path for every report, whether built by `run` or handed over by `publish`: find the local images
it references, keep only safe workspace files, upload them, rewrite the links, fit the body to the
forge's limit, post or update the sticky comment, and optionally a check run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from cml_action.ci.context import CIContext
from cml_action.errors import ForgeError, PermissionDenied
from cml_action.forges.base import Forge, Image, Target, sticky_marker
from cml_action.report.images import local_refs, replace_refs
from cml_action.report.shorten import shorten
from cml_action.workspace_files import Refused, check


@dataclass
class Published:
    summary: str  # full markdown with published image URLs, for the job summary
    comment_urls: list[str] = field(default_factory=list)
    check_url: str = ""
    warnings: list[str] = field(default_factory=list)


def _workspace_path(ref: str, base_dir: Path, workspace: Path) -> str:
    """A reference relative to the report's folder, as a path relative to the workspace (lexically)."""
    if os.path.isabs(ref):
        return ref  # check() refuses it with the right reason
    return os.path.relpath(os.path.normpath(base_dir.resolve() / ref), workspace.resolve())


def collect_images(markdown: str, base_dir: Path, workspace: Path) -> tuple[dict[str, Image], dict[str, Refused]]:
    images: dict[str, Image] = {}
    refused: dict[str, Refused] = {}
    for ref in local_refs(markdown):
        rel = _workspace_path(ref, base_dir, workspace)
        result = check(workspace, rel)
        if isinstance(result, Refused):
            refused[ref] = Refused(ref, result.reason)
        else:
            images[ref] = Image(path=result, rel=rel)
    return images, refused


def publish(
    markdown: str,
    base_dir: Path,
    ctx: CIContext,
    forge: Forge | None,
    *,
    title: str,
    target: Target,
    update: bool,
    check_run: bool,
    conclusion: str,
) -> Published:
    result = Published(summary=markdown)
    images, refused = collect_images(markdown, base_dir, ctx.workspace)
    urls: dict[str, str] = {}
    missing_permission = ""
    if forge is not None and images:
        try:
            uploaded = forge.upload_images(list(images.values()))
            urls = {ref: uploaded[image.rel] for ref, image in images.items() if image.rel in uploaded}
        except PermissionDenied as exc:
            missing_permission = exc.permission or str(exc)
            result.warnings.append(f"images were not published: {exc}")

    def url_for(ref: str) -> str | None:
        if ref in urls:
            return urls[ref]
        if ref in refused or forge is not None:
            return None
        return ref  # nowhere to upload (local run): keep the relative link for the report file

    def note(ref: str) -> str:
        name = f"`{ref}`"
        if ref in refused:
            return f"⚠️ image {name} was not published: {refused[ref].reason}."
        if missing_permission:
            return f"⚠️ image {name} is not shown: the token lacks `{missing_permission}` permission."
        return f"⚠️ image {name} could not be published."

    rewritten = replace_refs(markdown, url_for, note)
    result.summary = rewritten
    if forge is None:
        return result

    marker = sticky_marker(title)
    room = forge.body_limit - len(marker) - 200  # the forge adds a one-off marker to each create
    body, cut = shorten(rewritten, room, ctx.run_url)
    if cut:
        result.warnings.append(f"the report was shortened to fit {forge.body_limit:,} characters; the job summary has it all")
    body = f"{marker}\n{body}"
    try:
        destinations = forge.resolve(target)
    except PermissionDenied as exc:
        result.warnings.append(f"report not posted: {exc}")
        destinations = []
    for dest in destinations:
        try:
            posted = forge.post(dest, body, marker, update)
            result.comment_urls.append(posted.url)
            print(f"cml-action: {'updated' if posted.updated else 'posted'} the report on {dest.describe()}: {posted.url}")
        except PermissionDenied as exc:
            result.warnings.append(
                f"report not posted on {dest.describe()}: {exc}. It is in the job summary; "
                "for pull requests from forks, use the artifact + workflow_run pattern (see README)"
            )
    if check_run and ctx.sha:
        try:
            result.check_url = forge.create_check(ctx.sha, title, body, conclusion)
        except (PermissionDenied, ForgeError) as exc:
            result.warnings.append(f"check run not created: {exc}")
    return result
