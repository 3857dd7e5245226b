"""Hand a written report to its readers without ever losing it.

Order matters: the report file exists already; the job summary (GitHub) or the job log (GitLab) gets the
report next, before any forge call, so a forge that refuses, fails or hangs cannot take the report with
it. After posting, our part of the job summary is rewritten with the published image links.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cml_action.ci.context import CIContext, neutralize_sections
from cml_action.errors import EXIT_OK
from cml_action.forges import open_forge
from cml_action.forges.base import Target
from cml_action.publish import Published, failure, publish, safe_text
from cml_action.report.escape import code, prose
from cml_action.report.images import replace_refs
from cml_action.report.shorten import shorten

SUMMARY_LIMIT = 1_000_000  # GitHub refuses job summaries over 1 MiB


class SummaryPart:
    """Our part of $GITHUB_STEP_SUMMARY (other steps may have written before us): written, then replaced."""

    def __init__(self, path: Path | None, report_name: str) -> None:
        self.path = path
        self.report_name = report_name
        self.offset: int | None = None

    def write(self, markdown: str) -> None:
        if self.path is None:
            return
        summary, _ = shorten(markdown, SUMMARY_LIMIT, self.report_name)
        with open(self.path, "a", encoding="utf-8") as fh:
            if self.offset is None:
                self.offset = fh.tell()
            else:
                fh.seek(self.offset)
                fh.truncate()
            fh.write(summary + "\n")


def _pending(markdown: str) -> str:
    """The report before its images are published: each image is a note, so the text stands on its own."""
    return replace_refs(markdown, lambda ref: None,
                        lambda ref: f"_(image {code(ref)}: in the report folder; its link comes once published)_")


def post_report(
    args: argparse.Namespace,
    ctx: CIContext,
    token: str,
    token_source: str,
    markdown: str,
    out_dir: Path,
    report_path: Path,
    meta: dict,
) -> int:
    """Post the report; forge trouble never loses it: it stays in the file and the job summary."""
    target = Target.parse(args.target)
    title = " ".join(ctx.redactor.text(str(meta.get("title") or args.title)).split())  # the artifact's, with publish
    markdown = safe_text(markdown, ctx.redactor)
    summary = SummaryPart(ctx.summary_path, report_path.name)
    summary.write(_pending(markdown) if ctx.kind != "local" else markdown)
    if ctx.kind == "gitlab":
        with ctx.group(f"Report: {title}"):
            print(neutralize_sections(markdown))
    warnings: list[str] = []
    forge = None
    if ctx.kind != "local" and target.kind != "none":
        if not token:
            warnings.append("no token: the report was not posted (set the `token` input, or CML_TOKEN on GitLab)")
        else:
            try:
                forge = open_forge(ctx, token, token_source, args.assets_branch)
            except Exception as exc:  # noqa: BLE001 - a warning naming the cause, never a lost report
                warnings.append(f"the report was not posted: {failure(exc)}")
    try:
        published = publish(markdown, out_dir, ctx, forge, title=title, target=target, update=args.update,
                            check_run=args.check, conclusion=meta.get("conclusion", "neutral"),
                            declared=meta.get("images"))
    except Exception as exc:  # noqa: BLE001 - publish degrades each step itself; this is the last net
        warnings.append(f"the report was not posted: {failure(exc)}")
        published = Published(summary=_pending(markdown))
    warnings.extend(published.warnings)
    for warning in warnings:
        ctx.warning(warning)
    summary.write(published.summary + "".join(f"\n> ⚠️ {prose(ctx.redactor.text(w))}\n" for w in warnings))
    try:
        shown = report_path.relative_to(ctx.workspace)
    except ValueError:
        shown = report_path
    ctx.set_outputs({
        "report-path": str(shown),
        "comment-url": published.comment_urls[0] if published.comment_urls else "",
        "check-url": published.check_url,
        "gates": meta.get("gates", "none"),
    })
    print(f"cml-action: report written to {shown}")
    return EXIT_OK
