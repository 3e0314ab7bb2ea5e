"""NetSuite's REST error bodies (netsuite.md §3.1), raised anywhere in the emulator.

Every failure the emulator produces goes through :class:`NsError` so that clients meet exactly one
shape: ``type``, ``title``, ``status`` and ``o:errorDetails`` (``detail``, ``o:errorCode`` and, for
request-body problems, ``o:errorPath``), served as
``application/vnd.oracle.resource+json; type=error``.
"""

from __future__ import annotations

import json
from typing import Any

ERROR_CONTENT_TYPE = "application/vnd.oracle.resource+json; type=error; charset=UTF-8"

_TYPES: dict[int, tuple[str, str]] = {
    400: ("https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10.4.1", "Bad Request"),
    401: ("https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10.4.2", "Unauthorized"),
    403: ("https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10.4.4", "Forbidden"),
    404: ("https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10.4.5", "Not Found"),
    405: (
        "https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10.4.6",
        "Method Not Allowed",
    ),
    415: (
        "https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10.4.16",
        "Unsupported Media Type",
    ),
    429: ("https://tools.ietf.org/html/rfc6585#section-4", "Too Many Requests"),
    500: (
        "https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10.5.1",
        "Internal Server Error",
    ),
    503: (
        "https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10.5.4",
        "Service Unavailable",
    ),
}

INVALID_LOGIN_DETAIL = (
    "Invalid login attempt. For more details, see the Login Audit Trail in the NetSuite UI at "
    "Setup > Users/Roles > User Management > View Login Audit Trail."
)
CONCURRENCY_DETAIL = "Concurrent request limit exceeded. Request blocked."
NONEXISTENT_DETAIL = "Record does not exist."
INVALID_QUERY_TITLE = "Invalid search query."


class NsError(Exception):
    """A NetSuite REST error response; ``to_body()`` renders the exact wire JSON."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        path: str | None = None,
        title: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.path = path
        self.title = title
        self.headers = headers or {}

    def to_body(self) -> dict[str, Any]:
        type_uri, default_title = _TYPES.get(self.status, _TYPES[500])
        item: dict[str, Any] = {"detail": self.detail, "o:errorCode": self.code}
        if self.path is not None:
            item["o:errorPath"] = self.path
        return {
            "type": type_uri,
            "title": self.title or default_title,
            "status": self.status,
            "o:errorDetails": [item],
        }

    def to_json(self) -> bytes:
        return json.dumps(self.to_body()).encode()


def nonexistent(record_type: str, key: str) -> NsError:
    """404 for a record id (or ``eid:``) that does not exist."""
    del record_type, key  # NetSuite's detail does not name the record
    return NsError(404, "NONEXISTENT_ID", NONEXISTENT_DETAIL)


def invalid_login() -> NsError:
    return NsError(401, "INVALID_LOGIN", INVALID_LOGIN_DETAIL)


def concurrency_exceeded() -> NsError:
    return NsError(429, "CONCURRENCY_LIMIT_EXCEEDED", CONCURRENCY_DETAIL)


def unexpected_error(error_id: str) -> NsError:
    return NsError(
        500,
        "UNEXPECTED_ERROR",
        f"An unexpected error occurred. Error ID: {error_id}",
    )


def invalid_query(detail: str) -> NsError:
    """SuiteQL's 400 for anything the query service cannot parse or resolve."""
    return NsError(400, "USER_ERROR", detail, title=INVALID_QUERY_TITLE)


def user_error(detail: str, path: str | None = None) -> NsError:
    return NsError(400, "USER_ERROR", detail, path=path)


def invalid_content(detail: str, path: str | None = None) -> NsError:
    return NsError(400, "INVALID_CONTENT", detail, path=path)


def invalid_field_value(value: object, field: str, path: str | None = None) -> NsError:
    """USER_ERROR for a reference to something that does not exist (unknown terms id, ...)."""
    return user_error(f"Invalid Field Value {value} for the following field: {field}", path or field)
