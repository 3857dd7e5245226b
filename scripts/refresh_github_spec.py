#!/usr/bin/env python3
"""Refresh the GitHub API descriptions the GitHub stand-in validates requests against.

Both come from the npm registry, published by GitHub's Octokit team under the MIT licence:
  - @octokit/openapi  generated/api.github.com.json  (REST, OpenAPI 3): we keep only the operations
    cml-action calls, with every component they reference, so the vendored file stays small;
  - @octokit/graphql-schema  schema.graphql  (GraphQL SDL), kept whole.
Usage: scripts/refresh_github_spec.py [--openapi-version 23.0.2] [--graphql-version 15.26.1] [--packages DIR]
(--packages: read the tarballs that `npm pack @octokit/openapi@V @octokit/graphql-schema@V --pack-destination DIR`
wrote, instead of downloading them)
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import tarfile
import urllib.request
from pathlib import Path

DEST = Path(__file__).resolve().parent.parent / "tests" / "standins" / "github" / "spec"
REGISTRY = "https://registry.npmjs.org"

# (method, path) of every REST operation cml-action (or its tests) may call. Add a line when the code needs more.
OPERATIONS = [
    ("get", "/repos/{owner}/{repo}"),
    ("get", "/repos/{owner}/{repo}/commits/{commit_sha}/pulls"),
    ("get", "/repos/{owner}/{repo}/pulls/{pull_number}"),
    ("get", "/repos/{owner}/{repo}/pulls"),  # publish: a fork's pull request, found by head=owner:branch
    ("get", "/repos/{owner}/{repo}/issues/{issue_number}/comments"),
    ("post", "/repos/{owner}/{repo}/issues/{issue_number}/comments"),
    ("patch", "/repos/{owner}/{repo}/issues/comments/{comment_id}"),
    ("get", "/repos/{owner}/{repo}/commits/{commit_sha}/comments"),
    ("post", "/repos/{owner}/{repo}/commits/{commit_sha}/comments"),
    ("patch", "/repos/{owner}/{repo}/comments/{comment_id}"),
    ("post", "/repos/{owner}/{repo}/git/trees"),
    ("post", "/repos/{owner}/{repo}/git/commits"),
    ("post", "/repos/{owner}/{repo}/git/refs"),
    ("get", "/repos/{owner}/{repo}/git/ref/{ref}"),
    ("post", "/repos/{owner}/{repo}/check-runs"),
    ("get", "/repos/{owner}/{repo}/check-runs/{check_run_id}"),
    ("get", "/repos/{owner}/{repo}/commits/{ref}/check-runs"),
    ("post", "/repos/{owner}/{repo}/actions/runners/generate-jitconfig"),
    ("get", "/repos/{owner}/{repo}/actions/runners"),
    ("get", "/repos/{owner}/{repo}/actions/runners/{runner_id}"),
    ("delete", "/repos/{owner}/{repo}/actions/runners/{runner_id}"),
    ("get", "/repos/{owner}/{repo}/actions/runs/{run_id}"),
    ("post", "/repos/{owner}/{repo}/actions/runs/{run_id}/rerun-failed-jobs"),
    ("post", "/repos/{owner}/{repo}/dispatches"),
    ("get", "/user"),
]


def _package(name: str, version: str, folder: Path | None = None) -> tarfile.TarFile:
    short = name.split("/")[-1]
    if folder is not None:
        local = next(folder.glob(f"*{short}-{version}.tgz"), None)
        if local is None:
            raise SystemExit(f"{folder}: no {short}-{version}.tgz (run npm pack {name}@{version})")
        return tarfile.open(local, mode="r:gz")
    url = f"{REGISTRY}/{name}/-/{short}-{version}.tgz"
    with urllib.request.urlopen(url, timeout=120) as resp:
        return tarfile.open(fileobj=io.BytesIO(resp.read()), mode="r:gz")


def _refs(node: object, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            found.add(ref)
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def subset(spec: dict) -> dict:
    paths: dict[str, dict] = {}
    for method, path in OPERATIONS:
        operation = spec["paths"][path][method]
        entry = paths.setdefault(path, {})
        entry[method] = operation
        if "parameters" in spec["paths"][path]:
            entry["parameters"] = spec["paths"][path]["parameters"]
    components: dict[str, dict] = {}
    pending: set[str] = set()
    _refs(paths, pending)
    seen: set[str] = set()
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        _, _, kind, name = ref.split("/", 3)  # "#/components/<kind>/<name>"
        value = spec["components"][kind][name]
        components.setdefault(kind, {})[name] = value
        _refs(value, pending)
    return {"openapi": spec["openapi"], "info": spec["info"], "paths": paths, "components": components}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--openapi-version", default="23.0.2")
    parser.add_argument("--graphql-version", default="15.26.1")
    parser.add_argument("--packages", type=Path, default=None, help="folder of tarballs written by npm pack")
    args = parser.parse_args()
    DEST.mkdir(parents=True, exist_ok=True)
    with _package("@octokit/openapi", args.openapi_version, args.packages) as tar:
        spec = json.load(tar.extractfile("package/generated/api.github.com.json"))
        (DEST / "LICENSE.octokit-openapi").write_bytes(tar.extractfile("package/LICENSE").read())
    small = subset(spec)
    with gzip.GzipFile(DEST / "api.github.com.subset.json.gz", "wb", mtime=0) as fh:
        fh.write(json.dumps(small, sort_keys=True, separators=(",", ":")).encode())
    with _package("@octokit/graphql-schema", args.graphql_version, args.packages) as tar:
        sdl = tar.extractfile("package/schema.graphql").read()
        (DEST / "LICENSE.octokit-graphql-schema").write_bytes(tar.extractfile("package/LICENSE.md").read())
    with gzip.GzipFile(DEST / "schema.graphql.gz", "wb", mtime=0) as fh:
        fh.write(sdl)
    (DEST / "SOURCE.md").write_text(
        "# Where these files come from\n\n"
        f"- `api.github.com.subset.json.gz`: the operations listed in `scripts/refresh_github_spec.py`, with every\n"
        f"  component they reference, from `generated/api.github.com.json` of the npm package\n"
        f"  `@octokit/openapi@{args.openapi_version}` (GitHub's official OpenAPI description; MIT licence,\n"
        f"  Copyright (c) 2020 Octokit contributors: `LICENSE.octokit-openapi`).\n"
        f"- `schema.graphql.gz`: `schema.graphql` of the npm package `@octokit/graphql-schema@{args.graphql_version}`\n"
        "  (GitHub's public GraphQL schema; MIT licence, Copyright (c) GitHub: `LICENSE.octokit-graphql-schema`).\n\n"
        "Refresh both with `scripts/refresh_github_spec.py`.\n"
    )
    print(f"wrote {DEST}: {len(small['paths'])} paths, {sum(len(v) for v in small['components'].values())} components")


if __name__ == "__main__":
    main()
