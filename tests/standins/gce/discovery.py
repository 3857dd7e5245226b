"""Check requests against a Google API discovery document (the ones google-api-python-client ships).

Method and path select the method; query parameters must be declared; the JSON body must use only
properties of the method's request schema (recursively) with compatible JSON types. Google's JSON
encodes int64 as strings, which is accepted for integer fields.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from standins.server import Request, SpecViolation


def document(name: str) -> dict:
    import googleapiclient

    path = Path(googleapiclient.__file__).parent / "discovery_cache" / "documents" / f"{name}.json"
    return json.loads(path.read_text())


@dataclass(frozen=True)
class Method:
    id: str
    http: str
    pattern: re.Pattern[str]
    query: dict[str, dict]
    body: str | None


class Discovery:
    def __init__(self, doc: dict) -> None:
        self.doc = doc
        self.base = "/" + doc["servicePath"].strip("/")
        self.methods: list[Method] = []
        self._collect(doc.get("resources", {}))
        self.methods.sort(key=lambda m: m.pattern.pattern.count("[^/]"))

    def _collect(self, resources: dict) -> None:
        for resource in resources.values():
            for method in resource.get("methods", {}).values():
                template = method.get("flatPath") or method["path"]
                regex = re.sub(r"\\\{\\\+[^}]+\\\}", ".+", re.escape(template))
                regex = re.sub(r"\\\{[^}]+\\\}", "[^/]+", regex)
                query = {k: v for k, v in method.get("parameters", {}).items() if v.get("location") == "query"}
                query.update(self.doc.get("parameters", {}))
                body = (method.get("request") or {}).get("$ref")
                prefix = re.escape(self.base) + "/" if self.base != "/" else "/"
                self.methods.append(Method(method["id"], method["httpMethod"], re.compile(f"^{prefix}{regex}$"), query, body))
            self._collect(resource.get("resources", {}))

    def check(self, request: Request) -> Method:
        for method in self.methods:
            if method.http == request.method and method.pattern.match(request.path):
                break
        else:
            raise SpecViolation("no such method in the discovery document")
        for name in request.query:
            if name not in method.query:
                raise SpecViolation(f"{method.id}: undeclared query parameter {name!r}")
        if method.body:
            try:
                body = json.loads(request.body or b"{}")
            except ValueError:
                raise SpecViolation(f"{method.id}: the body is not JSON") from None
            self._check_value(body, {"$ref": method.body}, method.body)
        elif request.body and request.method in ("GET", "DELETE"):
            raise SpecViolation(f"{method.id}: takes no body")
        return method

    def _check_value(self, value: Any, schema: dict, where: str) -> None:
        if "$ref" in schema:
            schema = self.doc["schemas"][schema["$ref"]]
        kind = schema.get("type")
        if kind == "object" or "properties" in schema:
            if not isinstance(value, dict):
                raise SpecViolation(f"{where}: expected an object")
            props = schema.get("properties", {})
            extra = schema.get("additionalProperties")
            for key, item in value.items():
                if key in props:
                    self._check_value(item, props[key], f"{where}.{key}")
                elif extra:
                    self._check_value(item, extra, f"{where}.{key}")
                else:
                    raise SpecViolation(f"{where}: unknown field {key!r}")
        elif kind == "array":
            if not isinstance(value, list):
                raise SpecViolation(f"{where}: expected an array")
            for i, item in enumerate(value):
                self._check_value(item, schema.get("items", {}), f"{where}[{i}]")
        elif kind == "string" and not isinstance(value, str):
            raise SpecViolation(f"{where}: expected a string")
        elif kind == "integer" and not (isinstance(value, int) or (isinstance(value, str) and value.lstrip("-").isdigit())):
            raise SpecViolation(f"{where}: expected an integer")
        elif kind == "boolean" and not isinstance(value, bool):
            raise SpecViolation(f"{where}: expected a boolean")
        if "enum" in schema and value not in schema["enum"]:
            raise SpecViolation(f"{where}: {value!r} is not one of {schema['enum']}")
