"""Where are we running? One CIContext, built from the environment of GitHub Actions, GitLab CI or a shell."""

from cml_action.ci.context import CIContext, detect

__all__ = ["CIContext", "detect"]
