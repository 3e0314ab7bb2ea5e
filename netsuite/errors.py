"""Typed exceptions built from NetSuite's error bodies.

NetSuite answers failures with ``application/vnd.oracle.resource+json; type=error``::

    {"type": "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.5", "title": "Not Found",
     "status": 404, "o:errorDetails": [{"detail": "Record does not exist.",
     "o:errorCode": "NONEXISTENT_ID", "o:errorPath": "..."}]}

(netsuite.md §3.1). Bodies are not always valid JSON -- Oracle's own 429 sample lacks a comma, and
proxies cut bodies short -- so parsing falls back to pulling the known keys out of the text, and
finally to a cleaned snippet of the text itself. Nothing here raises while parsing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

REQUEST_ID_HEADERS = ("x-n-operationid", "x-netsuite-jobid")
_MAX_DETAIL = 500
_CONCURRENCY_CODES = frozenset(
    {"CONCURRENCY_LIMIT_EXCEEDED", "SSS_REQUEST_LIMIT_EXCEEDED", "WS_REQUEST_BLOCKED"}
)
_NOT_FOUND_CODES = frozenset({"NONEXISTENT_ID", "RCRD_DSNT_EXIST"})
_FORBIDDEN_CODES = frozenset({"INSUFFICIENT_PERMISSION"})


@dataclass(frozen=True)
class ErrorDetail:
    """One entry of ``o:errorDetails``."""

    detail: str
    code: str | None = None
    path: str | None = None


@dataclass(frozen=True)
class ParsedError:
    """What could be read from an error body."""

    title: str | None
    top_code: str | None
    details: tuple[ErrorDetail, ...]


class NetSuiteError(Exception):
    """A request to NetSuite failed. ``status`` is None when no response arrived."""

    retryable: bool = False

    def __init__(
        self,
        status: int | None,
        code: str | None,
        detail: str,
        error_path: str | None = None,
        title: str | None = None,
        request_id: str | None = None,
        details: Sequence[ErrorDetail] = (),
    ) -> None:
        self.status = status
        self.code = code
        self.detail = detail
        self.error_path = error_path
        self.title = title
        self.request_id = request_id
        self.details = tuple(details)
        super().__init__(self._summary())

    def _summary(self) -> str:
        parts = [f"HTTP {self.status}" if self.status is not None else "no response"]
        if self.code:
            parts.append(self.code)
        text = " ".join(parts) + f": {self.detail}"
        if self.error_path:
            text += f" (path: {self.error_path})"
        if self.request_id:
            text += f" [request {self.request_id}]"
        return text

    @property
    def user_message(self) -> str:
        """A sentence fit to show a person in Slack."""
        return f"NetSuite reported an error: {self._detail_with_field()}"

    def _detail_with_field(self) -> str:
        text = self.detail.rstrip()
        if text and text[-1] not in ".!?":
            text += "."
        if self.error_path:
            text += f" (field: {self.error_path})"
        return text


class UserError(NetSuiteError):
    """400: NetSuite refused the request's content (``USER_ERROR``, ``INVALID_CONTENT``...)."""

    @property
    def user_message(self) -> str:
        return f"NetSuite refused the change: {self._detail_with_field()}"


class NotFound(NetSuiteError):
    """404 / ``NONEXISTENT_ID``: the record (or external id) does not exist."""

    @property
    def user_message(self) -> str:
        return f"NetSuite has no such record: {self._detail_with_field()}"


class Unauthorized(NetSuiteError):
    """401 / ``INVALID_LOGIN``: credentials, signature, realm or role rejected.

    NetSuite also answers 401 when the concurrency limit is hit, so the client retries a few.
    """

    retryable = True

    @property
    def user_message(self) -> str:
        return (
            "NetSuite did not accept Credit Desk's credentials. An administrator should check the "
            "integration's token or certificate and its role (see NetSuite's Login Audit Trail)."
        )


class Forbidden(NetSuiteError):
    """403 / ``INSUFFICIENT_PERMISSION``: the integration role may not do this."""

    @property
    def user_message(self) -> str:
        return f"The NetSuite role Credit Desk uses may not do this: {self._detail_with_field()}"


class RateLimited(NetSuiteError):
    """429 / ``CONCURRENCY_LIMIT_EXCEEDED``, or no local slot came free: try again later."""

    retryable = True

    def __init__(self, *args: Any, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after = retry_after

    @property
    def user_message(self) -> str:
        return "NetSuite is busy (too many requests at once); the change will be tried again."


class ServerError(NetSuiteError):
    """5xx: NetSuite failed internally (``UNEXPECTED_ERROR``)."""

    retryable = True

    @property
    def user_message(self) -> str:
        return f"NetSuite had an internal error: {self._detail_with_field()} Try again later."


class TransportError(NetSuiteError):
    """No usable response: connection refused or reset, TLS failure, protocol error."""

    retryable = True

    @property
    def user_message(self) -> str:
        return f"Could not reach NetSuite ({self.detail}). Try again later."


class Timeout(TransportError):
    """The request timed out; NetSuite may or may not have applied it."""

    @property
    def user_message(self) -> str:
        return "NetSuite did not answer in time. Try again later."


class ProtocolError(NetSuiteError):
    """NetSuite answered 2xx but not as documented (e.g. a create without ``Location``)."""

    @property
    def user_message(self) -> str:
        return f"NetSuite gave an unexpected answer: {self.detail}"


def parse_error_body(content: bytes) -> ParsedError:
    """Read ``title``, the top-level code and ``o:errorDetails`` from a body, however broken."""
    text = content.decode("utf-8", errors="replace")
    try:
        data = json.loads(text)
    except ValueError:
        return _salvage(text)
    if not isinstance(data, Mapping):
        return ParsedError(None, None, (ErrorDetail(_clean(text)),) if text.strip() else ())
    details: list[ErrorDetail] = []
    raw_details = data.get("o:errorDetails")
    if isinstance(raw_details, list):
        for item in raw_details:
            if isinstance(item, Mapping):
                details.append(
                    ErrorDetail(
                        detail=_clean(_str(item.get("detail")) or ""),
                        code=_str(item.get("o:errorCode")),
                        path=_str(item.get("o:errorPath")),
                    )
                )
    # OAuth token endpoint errors: {"error": "invalid_grant", "error_description": "..."}
    if not details and isinstance(data.get("error"), str):
        details.append(
            ErrorDetail(
                detail=_clean(_str(data.get("error_description")) or data["error"]),
                code=data["error"],
            )
        )
    return ParsedError(_str(data.get("title")), _str(data.get("o:errorCode")), tuple(details))


_SALVAGE_KEYS = {
    "detail": re.compile(r'"detail"\s*:\s*"((?:[^"\\]|\\.)*)'),
    "code": re.compile(r'"o:errorCode"\s*:\s*"((?:[^"\\]|\\.)*)"'),
    "path": re.compile(r'"o:errorPath"\s*:\s*"((?:[^"\\]|\\.)*)"'),
    "title": re.compile(r'"title"\s*:\s*"((?:[^"\\]|\\.)*)"'),
}


def _salvage(text: str) -> ParsedError:
    """Best effort for invalid or truncated JSON: find the known keys by pattern."""
    found = {key: pattern.findall(text) for key, pattern in _SALVAGE_KEYS.items()}
    codes = [_unescape(c) for c in found["code"]]
    detail: ErrorDetail | None
    if found["detail"]:
        detail = ErrorDetail(
            detail=_clean(_unescape(found["detail"][0])),
            # A top-level code (USER_ERROR in Oracle's 429 sample) comes before the details.
            code=codes[-1] if codes else None,
            path=_unescape(found["path"][0]) if found["path"] else None,
        )
        top = codes[0] if len(codes) > 1 else None
    else:
        snippet = _clean(re.sub(r"<[^>]+>", " ", text))  # HTML error pages from proxies
        detail = ErrorDetail(snippet, codes[0] if codes else None) if snippet else None
        top = None
    title = _unescape(found["title"][0]) if found["title"] else None
    return ParsedError(title, top, (detail,) if detail else ())


def error_from_response(response: httpx.Response) -> NetSuiteError:
    """The exception for a non-2xx response (the body must already be read)."""
    parsed = parse_error_body(response.content)
    status = response.status_code
    first = parsed.details[0] if parsed.details else None
    codes = {d.code for d in parsed.details if d.code} | ({parsed.top_code} if parsed.top_code else set())
    code = (first.code if first and first.code else None) or parsed.top_code
    detail = first.detail if first and first.detail else (parsed.title or response.reason_phrase)
    kwargs: dict[str, Any] = {
        "status": status,
        "code": code,
        "detail": detail or f"HTTP {status}",
        "error_path": first.path if first else None,
        "title": parsed.title,
        "request_id": _request_id(response.headers),
        "details": parsed.details,
    }
    if status == 429 or codes & _CONCURRENCY_CODES:
        if code not in _CONCURRENCY_CODES:
            kwargs["code"] = next(iter(sorted(codes & _CONCURRENCY_CODES)), code)
        return RateLimited(**kwargs, retry_after=parse_retry_after(response.headers))
    if status == 404 or codes & _NOT_FOUND_CODES:
        return NotFound(**kwargs)
    if status == 401:
        return Unauthorized(**kwargs)
    if status == 403 or codes & _FORBIDDEN_CODES:
        return Forbidden(**kwargs)
    if status >= 500:
        return ServerError(**kwargs)
    if 400 <= status < 500:
        return UserError(**kwargs)
    return NetSuiteError(**kwargs)


def parse_retry_after(headers: httpx.Headers) -> float | None:
    """``Retry-After`` in seconds (delta-seconds form only; NetSuite documents none)."""
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return _retry_after_date(value)
    return seconds if seconds >= 0 else None


def _retry_after_date(value: str) -> float | None:
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _request_id(headers: httpx.Headers) -> str | None:
    for name in REQUEST_ID_HEADERS:
        if value := headers.get(name):
            return str(value)
    return None


def _str(value: object) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _unescape(value: str) -> str:
    try:
        result = json.loads(f'"{value}"')
    except ValueError:
        return value
    return result if isinstance(result, str) else value


def _clean(text: str) -> str:
    """Collapse whitespace and control characters; cap the length for display."""
    collapsed = " ".join(text.split())
    if len(collapsed) > _MAX_DETAIL:
        collapsed = collapsed[: _MAX_DETAIL - 1].rstrip() + "…"
    return collapsed
