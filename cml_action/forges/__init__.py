"""Forges (GitHub, GitLab) behind one small interface: see base.Forge."""
