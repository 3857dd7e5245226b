"""GitHub's GraphQL endpoint, for the two operations cml-action uses, executed against GitHub's real schema.

graphql-core parses and validates every document and variable set against `schema.graphql` from
@octokit/graphql-schema; the resolvers below only supply data, so a misspelt field or a wrong input
type is refused exactly as GitHub would refuse it.
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

SCHEMA_FILE = Path(__file__).parent / "spec" / "schema.graphql.gz"


@lru_cache(maxsize=1)
def schema():
    from graphql import build_schema

    with gzip.open(SCHEMA_FILE, "rt", encoding="utf-8") as fh:
        return build_schema(fh.read(), assume_valid=True)


class Refusal(Exception):
    """A resolver's refusal, reported the way GitHub reports it (`type` at the error's top level)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def execute(document: str, variables: dict | None, root: dict[str, Callable[..., Any]]) -> tuple[dict, list[str]]:
    """(response body, spec violations). Violations are documents or variables GitHub would reject."""
    from graphql import GraphQLError, execute as run, parse, validate

    try:
        ast = parse(document)
    except GraphQLError as exc:
        return {"errors": [{"message": exc.message}]}, [f"GraphQL syntax: {exc.message}"]
    problems = validate(schema(), ast)
    if problems:
        return {"errors": [{"message": p.message} for p in problems]}, [f"GraphQL: {p.message}" for p in problems]
    result = run(schema(), ast, root_value=root, variable_values=variables or {})
    body: dict[str, Any] = {"data": result.data}
    violations: list[str] = []
    if result.errors:
        errors = []
        for err in result.errors:
            original = err.original_error
            if isinstance(original, Refusal):
                errors.append({"type": original.kind, "path": err.path, "message": str(original)})
            else:
                errors.append({"message": err.message, "path": err.path})
                violations.append(f"GraphQL: {err.message}")
        body["errors"] = errors
    return body, violations
