"""The WSGI app: `/slack/events`, the intake API, health, readiness and metrics, in one Flask app."""

from __future__ import annotations

import hmac
import json
import time
import uuid
from typing import Any

import structlog
from flask import Flask, Response, g, jsonify, request
from pydantic import ValidationError
from slack_bolt.adapter.flask import SlackRequestHandler
from slack_sdk.signature import SignatureVerifier
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from bot.applications.schemas import ApplicationIn, field_errors
from bot.applications.service import ReferenceConflict
from bot.container import Container
from bot.openapi import openapi_spec
from bot.ratelimit import FixedWindowRateLimiter, intake_client_key
from storage import migrate
from storage.db import ping

log = structlog.get_logger(__name__)
REQUEST_ID_HEADER = "X-Request-Id"


def _error(status: int, error: str, message: str, **extra: Any) -> tuple[Response, int]:
    return jsonify({"error": error, "message": message, **extra}), status


def create_app(container: Container) -> Flask:
    settings = container.settings
    app = Flask("credit_desk")
    app.config["MAX_CONTENT_LENGTH"] = settings.intake_max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    metrics = container.metrics
    slack_handler = SlackRequestHandler(container.bolt) if container.bolt is not None else None
    secret = settings.slack_signing_secret
    slack_verifier = SignatureVerifier(secret.get_secret_value()) if secret is not None else None
    intake_limiter = FixedWindowRateLimiter(
        container.redis,
        limit=settings.intake_rate_limit,
        window_seconds=settings.intake_rate_window_seconds,
    )

    @app.before_request
    def _start() -> None:
        rid = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = rid if 0 < len(rid) <= 100 and rid.isprintable() else uuid.uuid4().hex
        g.started = time.perf_counter()
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=g.request_id)

    @app.after_request
    def _finish(response: Response) -> Response:
        route = request.url_rule.rule if request.url_rule is not None else "(unmatched)"
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        metrics.http_requests.labels(request.method, route, str(response.status_code)).inc()
        metrics.http_latency.labels(route).observe(elapsed)
        response.headers[REQUEST_ID_HEADER] = g.get("request_id", "")
        if route not in ("/metrics", "/healthz"):
            log.info(
                "http.request",
                method=request.method,
                route=route,
                status=response.status_code,
                ms=round(elapsed * 1000, 1),
            )
        return response

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(_exc: RequestEntityTooLarge) -> tuple[Response, int]:
        return _error(413, "too_large", f"the body is larger than {settings.intake_max_body_bytes} bytes")

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[Response, int]:
        code = exc.code or 500
        return _error(code, (exc.name or "error").lower().replace(" ", "_"), exc.description or "")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[Response, int]:
        log.exception("http.unhandled_error")
        return _error(500, "internal_error", "something went wrong; the request id is in the logs")

    # --- health -------------------------------------------------------------------------------

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok"})

    @app.get("/readyz")
    def readyz() -> tuple[Response, int]:
        checks: dict[str, str] = {}
        try:
            ping(container.engine)
            checks["database"] = "ok"
            checks["migrations"] = (
                "ok" if migrate.is_at_head(container.engine) else "behind: run `credit-desk db upgrade`"
            )
        except Exception as exc:
            checks["database"] = f"unreachable: {type(exc).__name__}"
        try:
            container.redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"unreachable: {type(exc).__name__}"
        ready = all(v == "ok" for v in checks.values()) and "migrations" in checks
        return jsonify({"status": "ready" if ready else "not_ready", "checks": checks}), (
            200 if ready else 503
        )

    @app.get("/metrics")
    def prometheus_metrics() -> Response:
        return Response(metrics.exposition(), mimetype="text/plain; version=0.0.4")

    # --- Slack --------------------------------------------------------------------------------

    @app.post("/slack/events")
    def slack_events() -> Any:
        if slack_handler is None or slack_verifier is None:
            return _error(
                503,
                "slack_not_configured",
                "set SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN (or SLACK_CLIENT_ID/SECRET)",
            )
        # Verify before Bolt parses: a signed-looking body that is not valid JSON would otherwise raise
        # inside Bolt's request parsing, before its own signature check.
        if not slack_verifier.is_valid_request(request.get_data(), dict(request.headers)):
            return _error(401, "invalid_request", "bad or stale Slack signature")
        try:
            return slack_handler.handle(request)
        except ValueError as exc:
            log.warning("slack.malformed_payload", error=str(exc)[:200])
            return _error(400, "malformed_payload", "the Slack payload could not be read")

    @app.get("/slack/install")
    @app.get("/slack/oauth_redirect")
    def slack_oauth() -> Any:
        # Bolt's OAuth flow: /slack/install sets the state cookie and redirects to Slack's consent
        # screen; /slack/oauth_redirect exchanges the code and stores the installation.
        if slack_handler is None or container.bolt is None or container.bolt.oauth_flow is None:
            return _error(
                404,
                "install_flow_off",
                "the install flow is off: set SLACK_CLIENT_ID and SLACK_CLIENT_SECRET",
            )
        return slack_handler.handle(request)

    # --- intake API ---------------------------------------------------------------------------

    @app.get("/api/openapi.json")
    def openapi() -> Response:
        return jsonify(openapi_spec(settings.intake_max_body_bytes))

    def _authorized() -> tuple[Response, int] | None:
        token = settings.intake_api_token
        if token is None or container.applications is None:
            missing = "INTAKE_API_TOKEN" if token is None else "FEDERAL_ID_KEY"
            return _error(503, "intake_disabled", f"the intake API is off: set {missing}")
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        valid = scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.get_secret_value().encode()
        )
        # Counted before the token is judged, so that guessing tokens is limited too (per address).
        limit = intake_limiter.hit(intake_client_key(valid, given.strip(), request.remote_addr))
        if not limit.allowed:
            log.warning("intake.rate_limited", authenticated=valid, retry_after=limit.retry_after)
            response, status = _error(
                429,
                "rate_limited",
                f"more than {limit.limit} requests in {settings.intake_rate_window_seconds} s; "
                f"try again in {limit.retry_after} s",
                retry_after=limit.retry_after,
            )
            response.headers["Retry-After"] = str(limit.retry_after)
            return response, status
        if not valid:
            return _error(401, "unauthorized", "send Authorization: Bearer <INTAKE_API_TOKEN>")
        return None

    @app.post("/api/applications")
    def submit_application() -> tuple[Response, int]:
        refusal = _authorized()
        if refusal is not None:
            return refusal
        assert container.applications is not None
        if not request.is_json:
            return _error(415, "unsupported_media_type", "send Content-Type: application/json")
        raw = request.get_data(cache=False)  # raises RequestEntityTooLarge past MAX_CONTENT_LENGTH
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            return _error(400, "malformed_json", f"the body is not valid JSON: {exc}")
        except RecursionError:
            return _error(400, "malformed_json", "the body is nested too deeply")
        if not isinstance(body, dict):
            return _error(400, "malformed_json", "the body must be a JSON object")
        try:
            data = ApplicationIn.model_validate(body)
        except ValidationError as exc:
            metrics.applications_submitted.labels("api", "invalid").inc()
            errors = [e.model_dump() for e in field_errors(exc)]
            return _error(422, "invalid_application", "the application has errors", errors=errors)
        try:
            result = container.applications.submit(data, source="api", actor="intake-api")
        except ReferenceConflict as exc:
            metrics.applications_submitted.labels("api", "conflict").inc()
            return _error(409, "reference_conflict", str(exc), application_id=exc.existing_id)
        outcome = "created" if result.created else "repeat"
        metrics.applications_submitted.labels(result.application.source, outcome).inc()
        if result.created:
            log.info("application.submitted", application_id=result.application.id)
        response = jsonify(result.application.model_dump(mode="json"))
        response.headers["Location"] = f"/api/applications/{result.application.id}"
        return response, 201 if result.created else 200

    @app.get("/api/applications/<int:application_id>")
    def get_application(application_id: int) -> tuple[Response, int]:
        refusal = _authorized()
        if refusal is not None:
            return refusal
        assert container.applications is not None
        found = container.applications.get(application_id)
        if found is None:
            return _error(404, "not_found", f"no application {application_id}")
        return jsonify(found.model_dump(mode="json")), 200

    return app
