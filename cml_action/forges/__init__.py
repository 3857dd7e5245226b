"""Forges (GitHub, GitLab) behind one small interface: see base.Forge."""

from __future__ import annotations

from typing import Mapping

from cml_action.ci.context import CIContext
from cml_action.forges.base import Forge


def find_token(ctx: CIContext, option: str, env: Mapping[str, str]) -> tuple[str, str]:
    """(token, where it came from). GitLab's CI_JOB_TOKEN is a last resort: it cannot write notes."""
    if option:
        return option, "--token"
    names = ("GITHUB_TOKEN", "GH_TOKEN") if ctx.kind == "github" else ("CML_TOKEN", "GITLAB_TOKEN", "CI_JOB_TOKEN")
    for name in names:
        if env.get(name):
            return env[name], name
    return "", ""


def open_forge(ctx: CIContext, token: str, token_source: str, assets_branch: str = "cml-assets") -> Forge | None:
    """The forge for this CI, or None when there is nowhere to post (local runs, no token)."""
    if ctx.kind == "local" or not token:
        return None
    if ctx.kind == "github":
        from cml_action.forges.github import GitHubForge

        return GitHubForge(ctx, token, assets_branch=assets_branch)
    from cml_action.forges.gitlab import GitLabForge

    return GitLabForge(ctx, token, token_source)
