"""Local images referenced by a report: find them, and swap each reference for a URL or a note.

References inside code (fenced blocks: the training log; inline spans) are text, never images: a log line
`![x](.git/config)` stays a log line. What may be uploaded is decided by the publisher; this module only
finds references and tells what a file's bytes are.
"""

from __future__ import annotations

import re
from typing import Callable

# ![alt](path "title") and <img src="path">; remote URLs and data: URIs are left alone
_MD_IMAGE = re.compile(r"(!\[[^\]]*\]\()\s*<?([^)\s>]+)>?(\s+\"[^\"]*\")?\s*(\))")
_HTML_IMAGE = re.compile(r"(<img\b[^>]*?\bsrc\s*=\s*[\"'])([^\"']+)([\"'][^>]*>)", re.I)
_REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//|#)", re.I)
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`).*?(?<!`)\1(?!`)", re.S)

# magic bytes of the formats a forge renders inline; SVG is recognised only to be refused
_MAGIC = ((b"\x89PNG\r\n\x1a\n", "png"), (b"\xff\xd8\xff", "jpeg"), (b"GIF87a", "gif"), (b"GIF89a", "gif"))


def image_kind(head: bytes) -> str:
    """'png', 'jpeg', 'gif', 'webp', 'svg', or '' for anything else (text, archives, .git/config...)."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if start.startswith((b"<svg", b"<?xml", b"<!doctype svg")) and b"<svg" in head.lower():
        return "svg"
    return ""


def _segments(markdown: str) -> list[tuple[str, bool]]:
    """(text, is_code) pieces: fenced blocks and inline code spans are code."""
    pieces: list[tuple[str, bool]] = []
    prose: list[str] = []
    fence = ""
    block: list[str] = []
    for line in markdown.splitlines(keepends=True):
        match = _FENCE.match(line)
        if fence:
            block.append(line)
            if match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence) \
                    and not line.strip()[len(match.group(1)):].strip():
                pieces.append(("".join(block), True))
                block, fence = [], ""
        elif match:
            pieces.extend(_spans("".join(prose)))
            prose = []
            fence = match.group(1)
            block = [line]
        else:
            prose.append(line)
    pieces.extend(_spans("".join(prose)))
    if block:
        pieces.append(("".join(block), True))  # an unclosed fence runs to the end
    return pieces


def _spans(text: str) -> list[tuple[str, bool]]:
    out: list[tuple[str, bool]] = []
    last = 0
    for match in _CODE_SPAN.finditer(text):
        out.append((text[last:match.start()], False))
        out.append((match.group(0), True))
        last = match.end()
    out.append((text[last:], False))
    return [p for p in out if p[0]]


def local_refs(markdown: str) -> list[str]:
    refs: list[str] = []
    for text, is_code in _segments(markdown):
        if is_code:
            continue
        for pattern in (_MD_IMAGE, _HTML_IMAGE):
            for match in pattern.finditer(text):
                ref = match.group(2)
                if not _REMOTE.match(ref) and ref not in refs:
                    refs.append(ref)
    return refs


def replace_refs(markdown: str, replace: Callable[[str], str | None], note: Callable[[str], str]) -> str:
    """`replace(ref)` gives the new URL, or None to drop the image and put `note(ref)` in its place."""

    def md(match: re.Match) -> str:
        ref = match.group(2)
        if _REMOTE.match(ref):
            return match.group(0)
        url = replace(ref)
        if url is None:
            return note(ref)
        return f"{match.group(1)}{url}{match.group(3) or ''}{match.group(4)}"

    def html(match: re.Match) -> str:
        ref = match.group(2)
        if _REMOTE.match(ref):
            return match.group(0)
        url = replace(ref)
        if url is None:
            return note(ref)
        return f"{match.group(1)}{url}{match.group(3)}"

    return "".join(text if is_code else _HTML_IMAGE.sub(html, _MD_IMAGE.sub(md, text))
                   for text, is_code in _segments(markdown))
