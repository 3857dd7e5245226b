"""From a finished markdown report to the places people read it.

One path for every report, whether built by `run` or handed over by `publish`: make the text safe to post
(secrets redacted, mentions and markers defused), upload only the declared images of the report folder,
rewrite the links, fit the body to the forge's limit, post or update the sticky comment, and optionally a
check run. No forge failure escapes: each one becomes a warning naming its cause, and the report stays in
the file and the job summary.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable
from urllib.parse import unquote

from cml_action.ci.context import CIContext
from cml_action.errors import CmlError, PermissionDenied, TokenRefused
from cml_action.forges.base import Forge, Image, Target, sticky_marker
from cml_action.redact import Redactor
from cml_action.report.escape import code, defuse_markers, defuse_mentions, prose
from cml_action.report.images import image_kind, local_refs, replace_refs
from cml_action.report.shorten import shorten
from cml_action.workspace_files import Refused, check


MAX_IMAGE_BYTES = 10 * 1024 * 1024  # what GitHub accepts for an image in a comment; a report needs less
MAX_IMAGES = 100  # a glob that matched a whole dataset is not a report


@dataclass
class Published:
    summary: str  # full markdown with published image URLs, for the job summary
    comment_urls: list[str] = field(default_factory=list)
    check_url: str = ""
    warnings: list[str] = field(default_factory=list)


def safe_text(markdown: str, redactor: Redactor) -> str:
    """What may leave the machine: no secret in any encoding, no ping, no copy of our hidden markers."""
    return defuse_markers(defuse_mentions(redactor.text(markdown)))


def failure(exc: BaseException) -> str:
    """The cause of a forge failure, in words (a raw library exception says little to a user)."""
    if isinstance(exc, CmlError):
        return str(exc)
    name = type(exc).__name__
    if "Connection" in name or "Timeout" in name or isinstance(exc, OSError):
        return f"the forge could not be reached ({name})"
    status = getattr(exc, "status", None) or getattr(exc, "response_code", None)
    if status == 401:
        return "the token was refused (401 Bad credentials)"
    return f"{name}: {exc}" if str(exc) else name


def _image(ref: str, base_dir: Path, declared: frozenset[str] | None, redactor: Redactor) -> Image | Refused:
    """A reference is uploaded only if it is a declared file of the report folder whose bytes are an image."""
    target = unquote(ref.split("#", 1)[0].split("?", 1)[0])
    if os.path.isabs(target):
        return Refused(ref, "absolute paths are not published")
    rel = os.path.normpath(target).replace(os.sep, "/")
    if declared is not None and rel not in declared:
        return Refused(ref, "not one of the report's declared images (plots, or images of the `report` markdown)")
    result = check(base_dir, rel)  # the report folder is the root: nothing outside it can be named
    if isinstance(result, Refused):
        return Refused(ref, f"{result.reason} (only files inside the report folder are published)")
    size = result.stat().st_size
    if size > MAX_IMAGE_BYTES:
        return Refused(ref, f"{size / 1048576:.0f} MiB is beyond the {MAX_IMAGE_BYTES // 1048576} MiB published per image")
    data = result.read_bytes()
    kind = image_kind(data[:64])
    if kind == "svg":
        return Refused(ref, "SVG is not published (it can carry scripts and links); use PNG")
    if not kind:
        return Refused(ref, "not an image (PNG, JPEG, GIF or WebP by its content)")
    if redactor.found_in(data):
        return Refused(ref, "it contains a secret")
    return Image(path=result, rel=rel)


def collect_images(markdown: str, base_dir: Path, declared: Iterable[str] | None = None,
                   redactor: Redactor | None = None) -> tuple[dict[str, Image], dict[str, Refused]]:
    allowed = None if declared is None else frozenset(os.path.normpath(d).replace(os.sep, "/") for d in declared)
    images: dict[str, Image] = {}
    refused: dict[str, Refused] = {}
    for ref in local_refs(markdown):
        if len(images) >= MAX_IMAGES:
            refused[ref] = Refused(ref, f"the report already has {MAX_IMAGES} images")
            continue
        result = _image(ref, base_dir, allowed, redactor or Redactor())
        if isinstance(result, Refused):
            refused[ref] = result
        else:
            images[ref] = result
    return images, refused


def _upload(forge: Forge, images: dict[str, Image], result: Published) -> tuple[dict[str, str], str]:
    """URLs by reference, and why images are missing when the upload failed (the report goes on without them)."""
    if not images:
        return {}, ""
    try:
        uploaded = forge.upload_images(list(images.values()))
    except PermissionDenied as exc:
        result.warnings.append(f"images were not published: {exc}")
        return {}, f"the token lacks `{exc.permission or exc}` permission"
    except TokenRefused:
        raise  # nothing else will work either
    except Exception as exc:  # noqa: BLE001 - any failure: the report is posted without its images
        result.warnings.append(f"images were not published: {failure(exc)}")
        return {}, f"the upload failed ({failure(exc)})"
    return {ref: uploaded[image.rel] for ref, image in images.items() if image.rel in uploaded}, ""


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
    declared: Iterable[str] | None = None,
) -> Published:
    """`declared`: the report-folder paths of the images `run` put there; None (publish: a report folder from an
    artifact) allows any image file inside `base_dir`."""
    markdown = safe_text(markdown, ctx.redactor)
    result = Published(summary=markdown)
    images, refused = collect_images(markdown, base_dir, declared, ctx.redactor)
    try:
        urls, missing = _upload(forge, images, result) if forge is not None else ({}, "")
    except TokenRefused as exc:
        result.warnings.append(f"the report was not posted: {exc}; it is in the job summary")
        urls, missing, forge = {}, "the token was refused", None

    def url_for(ref: str) -> str | None:
        if ref in urls:
            return urls[ref]
        if ref in refused or forge is not None or missing:
            return None
        return ref  # nowhere to upload (local run): keep the relative link for the report file

    def note(ref: str) -> str:
        if ref in refused:
            return f"⚠️ image {code(ref)} was not published: {prose(refused[ref].reason)}."
        if missing:
            return f"⚠️ image {code(ref)} is not shown: {prose(missing)}."
        return f"⚠️ image {code(ref)} could not be published."

    result.summary = replace_refs(markdown, url_for, note)
    if forge is not None:
        _post(forge, result, ctx, title=title, target=target, update=update, check_run=check_run, conclusion=conclusion)
    return result


def _post(forge: Forge, result: Published, ctx: CIContext, *, title: str, target: Target, update: bool,
          check_run: bool, conclusion: str) -> None:
    marker = sticky_marker(title)
    room = forge.body_limit - len(marker) - 200  # the forge adds a one-off marker to each create
    body, cut = shorten(result.summary, room, ctx.run_url)
    if cut:
        result.warnings.append(f"the report was shortened to fit {forge.body_limit:,} characters; the job summary has it all")
    body = f"{marker}\n{body}"
    try:
        destinations = forge.resolve(target)
    except Exception as exc:  # noqa: BLE001 - a warning, never a lost report
        result.warnings.append(f"report not posted: {failure(exc)}")
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
        except Exception as exc:  # noqa: BLE001
            result.warnings.append(f"report not posted on {dest.describe()}: {failure(exc)}. It is in the job summary")
    if check_run and ctx.sha:
        try:
            result.check_url = forge.create_check(ctx.sha, title, body, conclusion)
        except Exception as exc:  # noqa: BLE001
            result.warnings.append(f"check run not created: {failure(exc)}")
