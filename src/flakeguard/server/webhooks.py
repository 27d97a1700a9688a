"""`POST /webhooks/github`: GitHub's webhook deliveries, verified, deduplicated, enqueued.

Order of checks (each answer names no secret and echoes no signature):
1. no GITHUB_WEBHOOK_SECRET configured → 503: unsigned deliveries are refused, never accepted;
2. body over GitHub's 25 MB cap → 413 (read with a cap, before any parsing);
3. `X-Hub-Signature-256` missing or not the HMAC-SHA256 of the *raw* body → 401 (constant-time compare);
4. body not JSON (or a form-encoded `payload=` that is not) → 400;
5. an `X-GitHub-Delivery` seen in the last 24 h → 200 `{"status": "duplicate"}` (Redis `SET NX EX`;
   the mark is removed again when handling fails, so GitHub's redelivery is not lost);
6. `flakeguard.pipeline.webhooks.handle_delivery` enqueues jobs / tracks repositories and answers.

Metric: `flakeguard_webhook_deliveries_total{event,outcome}` (event is one of the events FlakeGuard
uses or `other`; `unverified` before the signature is checked).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from flakeguard.github.webhooks import SIGNATURE_HEADER, verify_signature
from flakeguard.logging import bind_correlation_id, get_logger
from flakeguard.metrics import WEBHOOK_DELIVERIES
from flakeguard.pipeline.webhooks import KNOWN_EVENTS, BadDelivery, handle_delivery
from flakeguard.services import Services

log = get_logger("flakeguard.webhooks")
router = APIRouter(tags=["webhooks"])

MAX_BODY_BYTES = 25 * 1024 * 1024  # GitHub does not deliver larger payloads
DELIVERY_TTL_S = 24 * 3600
_DELIVERY_ID = re.compile(r"[A-Za-z0-9-]{1,64}")


class _TooLarge(Exception):
    pass


def _answer(event: str, outcome: str, status_code: int, body: dict[str, Any]) -> JSONResponse:
    WEBHOOK_DELIVERIES.labels(event=event, outcome=outcome).inc()
    return JSONResponse(body, status_code=status_code)


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _payload(body: bytes, content_type: str) -> Any:
    """JSON from a JSON body or a form-encoded `payload=` body (GitHub's two content types)."""
    if content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
        values = parse_qs(body.decode("utf-8"), strict_parsing=True).get("payload")
        if not values:
            raise ValueError("no payload field")
        return json.loads(values[0])
    return json.loads(body)


def _delivery_key(services: Services, delivery_id: str) -> str:
    # GitHub's ids are GUIDs; anything else is hashed so that it cannot shape our Redis keys.
    part = (
        delivery_id
        if _DELIVERY_ID.fullmatch(delivery_id)
        else hashlib.sha256(delivery_id.encode()).hexdigest()
    )
    return services.key("webhook-delivery", part)


@router.post("/webhooks/github", summary="GitHub webhook deliveries (signed with GITHUB_WEBHOOK_SECRET)")
async def github_webhook(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    secret = services.settings.github_webhook_secret
    if secret is None or not secret.get_secret_value():
        return _answer(
            "unverified",
            "disabled",
            503,
            {"status": "error", "detail": "webhooks are disabled: set GITHUB_WEBHOOK_SECRET"},
        )
    try:
        body = await _read_body(request)
    except _TooLarge:
        return _answer("unverified", "too_large", 413, {"status": "error", "detail": "payload too large"})
    if not verify_signature(secret.get_secret_value().encode(), body, request.headers.get(SIGNATURE_HEADER)):
        log.warn(
            "webhook_refused",
            reason="missing or invalid signature",
            delivery_id=(request.headers.get("x-github-delivery") or "")[:64],
        )
        return _answer(
            "unverified",
            "unauthorized",
            401,
            {"status": "error", "detail": "missing or invalid X-Hub-Signature-256"},
        )

    event_header = request.headers.get("x-github-event")
    event = event_header if event_header in KNOWN_EVENTS else "other"
    delivery_id = request.headers.get("x-github-delivery") or None
    # The delivery is where this work enters: its id is the correlation id of every job it causes.
    bind_correlation_id(delivery_id[:64] if delivery_id else None)
    try:
        payload = _payload(body, request.headers.get("content-type", "application/json"))
    except (ValueError, UnicodeDecodeError):
        return _answer(event, "malformed", 400, {"status": "error", "detail": "body is not valid JSON"})
    if not isinstance(payload, dict):
        return _answer(event, "malformed", 400, {"status": "error", "detail": "body is not a JSON object"})

    key = _delivery_key(services, delivery_id) if delivery_id else None
    if key is not None and not await services.kv.set(key, "1", nx=True, ex=DELIVERY_TTL_S):
        log.info("webhook_duplicate", delivery_id=delivery_id, github_event=event)
        return _answer(event, "duplicate", 200, {"status": "duplicate"})
    try:
        outcome = await handle_delivery(services, event_header, payload, delivery_id)
    except BadDelivery as exc:
        if key is not None:
            await services.kv.delete(key)
        log.warn("webhook_malformed", delivery_id=delivery_id, github_event=event, error=str(exc))
        return _answer(event, "malformed", 400, {"status": "error", "detail": str(exc)})
    except Exception as exc:
        # Forget the delivery so that GitHub's redelivery is processed.
        if key is not None:
            with contextlib.suppress(Exception):  # Redis may be what failed; the answer is the same
                await services.kv.delete(key)
        log.error(
            "webhook_failed",
            delivery_id=delivery_id,
            github_event=event,
            error_type=type(exc).__name__,
            error=str(exc)[:300],
        )
        return _answer(event, "error", 503, {"status": "error", "detail": "could not process the delivery"})
    log.info(
        "webhook_handled",
        delivery_id=delivery_id,
        github_event=event,
        outcome=outcome.status,
        action=str(payload.get("action") or "")[:40],
    )
    return _answer(event, outcome.status, outcome.status_code, outcome.body)
