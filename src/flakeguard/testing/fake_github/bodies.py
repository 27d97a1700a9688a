"""Request bodies checked against the operation's schema in GitHub's OpenAPI description, as
GitHub does before it acts: 400 when the body is not a JSON object, 422 when it breaks the schema.

Schema checks need `jsonschema` (a dev dependency) and the OpenAPI subset (`../shared/github`, or
`$FLAKEGUARD_GITHUB_OPENAPI`). The tests always have both; a fake started from a runtime-only
install (the README demo, `flakeguard loadtest`) skips the schema and keeps the rules of `checks.py`.
"""

from __future__ import annotations

import json
from functools import cache
from typing import TYPE_CHECKING, Any

from flakeguard.testing.fake_github.request import JSON, ApiError

if TYPE_CHECKING:
    import jsonschema

    from flakeguard.testing.openapi import OpenAPIValidator

_SHOWN_VALUE = 60  # characters of an offending value quoted in a message


@cache
def schema_validator() -> OpenAPIValidator | None:
    """The OpenAPI validator, or None where jsonschema or the description is not installed."""
    try:
        from flakeguard.testing.openapi import validator

        return validator()
    except (ImportError, OSError):
        return None


def parse_json_object(raw: bytes) -> JSON:
    if not raw:
        return {}
    try:
        payload = json.loads(raw)
    except ValueError as e:
        raise ApiError(400, "Problems parsing JSON") from e
    if not isinstance(payload, dict):
        raise ApiError(400, "Body should be a JSON object")
    return payload


def validate_body(method: str, template: str, body: JSON, resource: str) -> None:
    """422 `Invalid request.` naming every schema violation, like GitHub's validation errors."""
    checker = schema_validator()
    if checker is None or not checker.has_request_body(method, template):
        return
    problems = [describe(e) for e in checker.request_errors(method, template, body)]
    if problems:
        raise invalid(resource, problems)


def invalid(resource: str, problems: list[str]) -> ApiError:
    return ApiError(
        422,
        "Invalid request.\n\n" + "\n".join(problems),
        errors=[{"resource": resource, "code": "invalid", "message": p} for p in problems],
    )


def describe(error: jsonschema.ValidationError) -> str:
    """One line per violation, in GitHub's wording where it has one; never the whole value."""
    where = "/".join(str(p) for p in error.absolute_path) or "body"
    limit: Any = error.validator_value
    if error.validator == "required":
        missing = str(error.message).split("'")[1] if "'" in str(error.message) else str(limit)
        return f'"{missing}" wasn\'t supplied.'
    if error.validator == "maxLength":
        return f"For '{where}', is too long (maximum is {limit} characters)."
    if error.validator == "maxItems":
        return f"For '{where}', only {limit} items are allowed."
    if error.validator == "enum":
        return f"For '{where}', {_shown(error.instance)} is not a member of {list(limit)}."
    if error.validator == "type":
        return f"For '{where}', {_shown(error.instance)} is not {limit}."
    if error.validator in ("anyOf", "oneOf"):
        return f"For '{where}', the body matches none of the allowed shapes."
    return f"For '{where}', {str(error.message)[: _SHOWN_VALUE * 2]}"


def _shown(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= _SHOWN_VALUE else text[:_SHOWN_VALUE] + "…"
