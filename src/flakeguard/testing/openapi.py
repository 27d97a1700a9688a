"""Validate JSON bodies against GitHub's OpenAPI 3.0 description (the subset in ../shared/github).

OpenAPI 3.0 schemas are JSON Schema plus `nullable`; this turns `nullable` into JSON Schema's
`null` type once, and resolves `#/components/...` references against the description itself.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

__all__ = ["OpenAPIValidator", "default_spec_path", "validator"]


def default_spec_path() -> Path:
    """`$FLAKEGUARD_GITHUB_OPENAPI`, else `../shared/github/openapi_subset.json` above the repository."""
    env = os.environ.get("FLAKEGUARD_GITHUB_OPENAPI")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent.parent / "shared" / "github" / "openapi_subset.json"
        if candidate.is_file():
            return candidate
    return Path("../shared/github/openapi_subset.json")


def _denullable(node: Any) -> Any:
    if isinstance(node, list):
        return [_denullable(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _denullable(v) for k, v in node.items() if k not in ("example", "examples")}
    if out.pop("nullable", False):
        if "type" in out and not any(k in out for k in ("$ref", "allOf", "anyOf", "oneOf")):
            t = out["type"]
            out["type"] = [*t, "null"] if isinstance(t, list) else [t, "null"]
            if "enum" in out and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        else:
            return {"anyOf": [out, {"type": "null"}]}
    return out


class OpenAPIValidator:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self._components = _denullable(spec.get("components", {}))
        self._templates = [(p, self._regex(p)) for p in spec.get("paths", {})]
        self._checkers: dict[tuple[str, ...], jsonschema.Draft202012Validator] = {}

    @staticmethod
    def _regex(template: str) -> Any:
        import re

        return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"[^/]+", re.escape(template)) + "$")

    def operation(self, method: str, template: str) -> dict[str, Any]:
        op: dict[str, Any] = self.spec["paths"][template][method.lower()]
        return op

    def template_for(self, path: str) -> str | None:
        exact = [t for t, rx in self._templates if rx.match(path)]
        if not exact:
            return None
        # prefer the most literal template (fewest parameters)
        best: str = min(exact, key=lambda t: t.count("{"))
        return best

    def _resolve_response(self, resp: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in resp:
            name = resp["$ref"].rsplit("/", 1)[-1]
            resp = self.spec["components"]["responses"][name]
        return resp

    def response_schema(self, method: str, template: str, status: int) -> dict[str, Any] | None:
        """The JSON schema of that response; for undocumented error statuses GitHub's `basic-error`
        (422: `validation-error`). None when the response has no body."""
        responses = self.operation(method, template).get("responses", {})
        resp = responses.get(str(status))
        if resp is None:
            if status < 400:
                raise AssertionError(f"{method} {template} does not document status {status}")
            name = "validation-error" if status == 422 else "basic-error"
            return {"$ref": f"#/components/schemas/{name}"}
        content = self._resolve_response(resp).get("content")
        if not content:
            return None
        schema: dict[str, Any] = content["application/json"]["schema"]
        return schema

    def validate(self, method: str, template: str, status: int, body: Any) -> None:
        """Raises jsonschema.ValidationError (or AssertionError) when `body` does not fit."""
        if status == 304:  # conditional requests work on every GET (best-practices docs), body-less
            assert not body, f"{method} {template} 304 must have no body"
            return
        schema = self.response_schema(method, template, status)
        if schema is None:
            assert body in (None, b"", ""), f"{method} {template} {status} must have no body"
            return
        self._checker(("response", method, template, str(status)), schema).validate(body)

    def has_request_body(self, method: str, template: str) -> bool:
        return "requestBody" in self.operation(method, template)

    def request_errors(self, method: str, template: str, body: Any) -> list[jsonschema.ValidationError]:
        """Every way `body` breaks the operation's request-body schema (none: it fits)."""
        op = self.operation(method, template)
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        checker = self._checker(("request", method, template), schema)
        return sorted(checker.iter_errors(body), key=lambda e: list(map(str, e.absolute_path)))

    def _checker(self, key: tuple[str, ...], schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
        """One validator per schema, built (and the schema checked) once."""
        checker = self._checkers.get(key)
        if checker is None:
            root = dict(_denullable(schema))
            root["components"] = self._components
            jsonschema.Draft202012Validator.check_schema(root)
            checker = self._checkers[key] = jsonschema.Draft202012Validator(root)
        return checker

    def validate_request(self, method: str, template: str, body: Any) -> None:
        errors = self.request_errors(method, template, body)
        if errors:
            raise errors[0]


# Endpoints we call that the shared subset does not describe yet, written from GitHub's REST reference
# ("List check runs for a Git reference", operationId checks/list-for-ref); subset paths win.
SUPPLEMENT_PATHS: dict[str, Any] = {
    "/repos/{owner}/{repo}/commits/{ref}/check-runs": {
        "get": {
            "operationId": "checks/list-for-ref",
            "parameters": [
                {"$ref": "#/components/parameters/owner"},
                {"$ref": "#/components/parameters/repo"},
                {"name": "ref", "in": "path", "required": True, "schema": {"type": "string"}},
                {"name": "check_name", "in": "query", "schema": {"type": "string"}},
                {"name": "status", "in": "query", "schema": {"type": "string"}},
                {
                    "name": "filter",
                    "in": "query",
                    "schema": {"type": "string", "enum": ["latest", "all"], "default": "latest"},
                },
                {"name": "per_page", "in": "query", "schema": {"type": "integer", "default": 30}},
                {"name": "page", "in": "query", "schema": {"type": "integer", "default": 1}},
                {"name": "app_id", "in": "query", "schema": {"type": "integer"}},
            ],
            "responses": {
                "200": {
                    "description": "Response",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["total_count", "check_runs"],
                                "properties": {
                                    "total_count": {"type": "integer"},
                                    "check_runs": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/check-run"},
                                    },
                                },
                            }
                        }
                    },
                }
            },
        }
    }
}


@cache
def validator(path: str | None = None) -> OpenAPIValidator:
    p = Path(path) if path else default_spec_path()
    spec = json.loads(p.read_text())
    spec["paths"] = {**SUPPLEMENT_PATHS, **spec.get("paths", {})}
    return OpenAPIValidator(spec)


def check_fake_responses(fake: Any, spec_path: str | None = None) -> int:
    """Validates every JSON response a `FakeGitHub` has sent against the description; returns how
    many were checked. Raises on the first that does not fit, naming it."""
    v = validator(spec_path)
    n = 0
    for r in fake.responses:
        if r.template is None:
            continue
        body = r.json() if r.status not in (204, 302, 304) else (r.body or None)
        try:
            v.validate(r.method, r.template, r.status, body)
        except (jsonschema.ValidationError, AssertionError) as e:
            raise AssertionError(
                f"{r.method} {r.path} -> {r.status} does not match the OpenAPI schema: {e}"
            ) from e
        n += 1
    return n
