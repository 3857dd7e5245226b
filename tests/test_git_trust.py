"""A workspace mounted into the container belongs to another uid: git must trust exactly that path."""

import os
import subprocess
from pathlib import Path

from cml_action.gitrefs import head_sha, trusted_env

def test_foreign_owned_workspace_is_trusted_without_global_config(tmp_path: Path):
    """Runs as root, like the action's container and CI (chown needs it)."""
    repo = tmp_path / "ws"
    repo.mkdir()
    env = {**os.environ, "HOME": str(tmp_path / "home"), "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", "init", "-q", str(repo)], check=True, env=env)
    subprocess.run(["git", "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-q", "--allow-empty", "-m", "x"],
                   cwd=repo, check=True, env=env)
    subprocess.run(["chown", "-R", "4321:4321", str(repo)], check=True)
    plain = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, env=env, capture_output=True, text=True)
    assert plain.returncode != 0 and "dubious ownership" in plain.stderr
    trusted = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, env=trusted_env(repo, env), capture_output=True, text=True)
    assert trusted.returncode == 0 and len(trusted.stdout.strip()) == 40
    other = tmp_path / "other"
    subprocess.run(["cp", "-a", str(repo), str(other)], check=True)
    still_refused = subprocess.run(["git", "rev-parse", "HEAD"], cwd=other, env=trusted_env(repo, env), capture_output=True, text=True)
    assert still_refused.returncode != 0  # only the workspace is trusted, not every path
    assert not (tmp_path / "home" / ".gitconfig").exists()
    assert head_sha(repo) == trusted.stdout.strip()
