"""Check a request against an OpenAPI 3.0 description: operation exists, parameters and JSON body match.

OpenAPI 3.0 schemas are almost JSON Schema; the differences that matter for request bodies (`nullable`,
`$ref` into components) are translated here, then jsonschema does the validation.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from standins.server import Request, SpecViolation


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    pattern: re.Pattern[str]
    parameters: tuple[dict, ...]
    body_schema: dict | None
    body_required: bool


class OpenAPI:
    def __init__(self, spec: dict) -> None:
        self.spec = spec
        self.operations: list[Operation] = []
        for template, item in spec["paths"].items():
            shared = [self.deref(p) for p in item.get("parameters", [])]
            regex = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")
            for method, op in item.items():
                if method == "parameters":
                    continue
                params = {(p["in"], p["name"]): p for p in shared}
                params.update({(p["in"], p["name"]): p for p in (self.deref(x) for x in op.get("parameters", []))})
                body = op.get("requestBody")
                schema = None
                if body:
                    body = self.deref(body)
                    media = body.get("content", {}).get("application/json")
                    schema = self._json_schema(media["schema"]) if media else None
                self.operations.append(Operation(method.upper(), template, regex, tuple(params.values()), schema,
                                                 bool(body and body.get("required"))))
        # literal segments beat templated ones (GitHub has /issues/comments/{id} and /issues/{number}/comments)
        self.operations.sort(key=lambda op: op.template.count("{"))

    @classmethod
    def load(cls, path: Path) -> "OpenAPI":
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            return cls(json.load(fh))

    def deref(self, node: Any) -> Any:
        while isinstance(node, dict) and "$ref" in node:
            _, _, kind, name = node["$ref"].split("/", 3)
            node = self.spec["components"][kind][name]
        return node

    def _json_schema(self, node: Any) -> Any:
        """OpenAPI schema -> JSON Schema: inline $refs, turn `nullable: true` into a null-accepting type."""
        node = self.deref(node)
        if isinstance(node, list):
            return [self._json_schema(v) for v in node]
        if not isinstance(node, dict):
            return node
        out = {}
        for key, value in node.items():
            if key in ("example", "examples", "description", "x-github", "discriminator"):
                continue
            if key in ("properties", "patternProperties"):
                out[key] = {k: self._json_schema(v) for k, v in value.items()}
            elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
                out[key] = self._json_schema(value)
            elif key in ("allOf", "anyOf", "oneOf"):
                out[key] = [self._json_schema(v) for v in value]
            else:
                out[key] = value
        if out.pop("nullable", False):
            if "type" in out:
                out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else [*out["type"], "null"]
            else:
                out = {"anyOf": [out, {"type": "null"}]}
        return out

    def find(self, method: str, path: str) -> Operation | None:
        for op in self.operations:
            if op.method == method and op.pattern.match(path):
                return op
        return None

    def check(self, request: Request, path: str) -> Operation:
        """Raise SpecViolation when the request is not something the description allows."""
        import jsonschema

        op = self.find(request.method, path)
        if op is None:
            raise SpecViolation("no such operation in GitHub's OpenAPI description")
        known = {p["name"]: p for p in op.parameters if p["in"] == "query"}
        for name, values in request.query.items():
            if name not in known:
                raise SpecViolation(f"unknown query parameter {name!r} for {op.method} {op.template}")
            schema = self._json_schema(known[name].get("schema", {}))
            for value in values:
                _check_scalar(name, value, schema)
        for name, param in known.items():
            if param.get("required") and name not in request.query:
                raise SpecViolation(f"missing required query parameter {name!r}")
        if op.body_schema is not None and (request.body or op.body_required):
            try:
                body = json.loads(request.body or b"null")
            except ValueError:
                raise SpecViolation("the body is not JSON") from None
            try:
                jsonschema.validate(body, op.body_schema)
            except jsonschema.ValidationError as exc:
                where = "/".join(str(p) for p in exc.absolute_path) or "body"
                raise SpecViolation(f"{where}: {exc.message}") from None
        elif request.body and request.method in ("GET", "DELETE"):
            raise SpecViolation("a body on a request that takes none")
        return op


def _check_scalar(name: str, value: str, schema: dict) -> None:
    kind = schema.get("type")
    if kind == "integer" and not re.fullmatch(r"-?\d+", value):
        raise SpecViolation(f"query parameter {name!r} must be an integer, got {value!r}")
    if kind == "boolean" and value not in ("true", "false"):
        raise SpecViolation(f"query parameter {name!r} must be true or false, got {value!r}")
    if "enum" in schema and value not in schema["enum"]:
        raise SpecViolation(f"query parameter {name!r} must be one of {schema['enum']}, got {value!r}")
