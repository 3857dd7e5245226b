"""A GitLab stand-in written from GitLab's REST documentation and OpenAPI v3 description (facts only)."""
