"""The user's own markdown (`report`), first in the report.

Its local images are the only images besides `plots` that may leave the machine: each is checked like any
workspace file and by its bytes, copied into the report folder and re-linked there
(`report.user_markdown`), and declared so that the publisher uploads exactly these. A refused one becomes a note.
"""

from __future__ import annotations

from cml_action.sources.base import Contribution, Job


class MarkdownSource:
    def __init__(self, path: str) -> None:
        self.path = path

    def collect(self, job: Job) -> Contribution:
        from cml_action.report.user_markdown import user_section

        out = Contribution()
        section, declared = user_section(self.path, job.workspace, job.out_dir, out.problems.add)
        if section is not None:
            out.lead_sections.append(section)
            out.images += declared
        return out
