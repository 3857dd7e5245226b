"""Local images referenced by a report: find them, and swap each reference for a URL or a note."""

from __future__ import annotations

import re
from typing import Callable

# ![alt](path "title") and <img src="path">; remote URLs and data: URIs are left alone
_MD_IMAGE = re.compile(r"(!\[[^\]]*\]\()\s*<?([^)\s>]+)>?(\s+\"[^\"]*\")?\s*(\))")
_HTML_IMAGE = re.compile(r"(<img\b[^>]*?\bsrc\s*=\s*[\"'])([^\"']+)([\"'][^>]*>)", re.I)
_REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//|#)", re.I)


def local_refs(markdown: str) -> list[str]:
    refs: list[str] = []
    for pattern in (_MD_IMAGE, _HTML_IMAGE):
        for match in pattern.finditer(markdown):
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

    return _HTML_IMAGE.sub(html, _MD_IMAGE.sub(md, markdown))
