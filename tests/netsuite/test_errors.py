"""NetSuite error bodies become typed exceptions with messages fit for people."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from netsuite.errors import (
    Forbidden,
    NetSuiteError,
    NotFound,
    RateLimited,
    ServerError,
    Timeout,
    TransportError,
    Unauthorized,
    UserError,
    error_from_response,
    parse_error_body,
    parse_retry_after,
)

ERROR_TYPE = "application/vnd.oracle.resource+json; type=error"


def response(status: int, body: object | str | bytes, **headers: str) -> httpx.Response:
    if isinstance(body, bytes):
        content = body
    elif isinstance(body, str):
        content = body.encode()
    else:
        content = json.dumps(body).encode()
    return httpx.Response(status, content=content, headers={"content-type": ERROR_TYPE, **headers})


def ns_body(status: int, title: str, detail: str, code: str, path: str | None = None) -> dict[str, object]:
    item = {"detail": detail, "o:errorCode": code}
    if path:
        item["o:errorPath"] = path
    return {
        "type": "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.1",
        "title": title,
        "status": status,
        "o:errorDetails": [item],
    }


def test_user_error_with_path_reads_as_a_refusal_naming_the_field() -> None:
    error = error_from_response(
        response(
            400,
            ns_body(
                400,
                "Bad Request",
                "You must enter a value for Company Name.",
                "USER_ERROR",
                "companyName",
            ),
            **{"x-n-operationid": "op-123"},
        )
    )
    assert type(error) is UserError
    assert (error.status, error.code, error.error_path) == (400, "USER_ERROR", "companyName")
    assert error.title == "Bad Request"
    assert error.request_id == "op-123"
    assert error.user_message == (
        "NetSuite refused the change: You must enter a value for Company Name. (field: companyName)"
    )
    assert "op-123" in str(error) and "USER_ERROR" in str(error)
    assert not error.retryable


def test_nonexistent_id_is_not_found() -> None:
    error = error_from_response(
        response(404, ns_body(404, "Not Found", "Record does not exist.", "NONEXISTENT_ID"))
    )
    assert type(error) is NotFound
    assert error.code == "NONEXISTENT_ID"
    assert error.user_message == "NetSuite has no such record: Record does not exist."


def test_oracles_429_sample_missing_a_comma_is_still_read() -> None:
    # Oracle's published sample is invalid JSON (no comma after the top-level o:errorCode).
    body = (
        '{"type":"https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.30",'
        '"title":"Bad Request","status":429,"o:errorCode":"USER_ERROR"\n'
        '"o:errorDetails":[{"detail":"Concurrent request limit exceeded. Request blocked.",'
        '"o:errorCode":"CONCURRENCY_LIMIT_EXCEEDED"}]}'
    )
    error = error_from_response(response(429, body))
    assert type(error) is RateLimited
    assert error.code == "CONCURRENCY_LIMIT_EXCEEDED"
    assert error.detail == "Concurrent request limit exceeded. Request blocked."
    assert error.title == "Bad Request"
    assert error.retryable


def test_concurrency_code_under_a_400_is_rate_limited_too() -> None:
    error = error_from_response(
        response(
            400,
            {
                "title": "Bad Request",
                "o:errorCode": "USER_ERROR",
                "o:errorDetails": [
                    {"detail": "Concurrent request limit exceeded.", "o:errorCode": "USER_ERROR"},
                    {"detail": "blocked", "o:errorCode": "CONCURRENCY_LIMIT_EXCEEDED"},
                ],
            },
        )
    )
    assert isinstance(error, RateLimited)
    assert error.code == "CONCURRENCY_LIMIT_EXCEEDED"
    assert len(error.details) == 2


def test_retry_after_is_read_from_a_429() -> None:
    error = error_from_response(response(429, "", **{"retry-after": "7"}))
    assert isinstance(error, RateLimited)
    assert error.retry_after == 7.0
    assert error.detail == "Too Many Requests"


def test_retry_after_forms() -> None:
    assert parse_retry_after(httpx.Headers({"Retry-After": "2.5"})) == 2.5
    assert parse_retry_after(httpx.Headers({"Retry-After": "-3"})) is None
    assert parse_retry_after(httpx.Headers({"Retry-After": "soon"})) is None
    assert parse_retry_after(httpx.Headers({})) is None
    later = datetime.now(UTC) + timedelta(seconds=120)
    seconds = parse_retry_after(httpx.Headers({"Retry-After": format_datetime(later, usegmt=True)}))
    assert seconds is not None and 100 < seconds <= 120


def test_truncated_body_keeps_detail_code_and_path() -> None:
    full = json.dumps(
        ns_body(
            400, "Bad Request", 'Invalid Field Value 9999 for "item"', "INVALID_CONTENT", "item.items[0].item"
        )
    )
    error = error_from_response(response(400, full[: full.index("item.items") + 6]))
    assert isinstance(error, UserError)
    assert error.detail == 'Invalid Field Value 9999 for "item"'
    assert error.code == "INVALID_CONTENT"
    assert error.error_path is None  # the path itself was cut off

    cut_in_detail = full[: full.index("9999") + 2]
    error = error_from_response(response(400, cut_in_detail))
    assert error.detail == "Invalid Field Value 99"


def test_html_and_empty_bodies_give_readable_server_errors() -> None:
    html = error_from_response(
        response(502, "<html><body><h1>502 Bad Gateway</h1>\n<p>nginx</p></body></html>")
    )
    assert type(html) is ServerError
    assert html.detail == "502 Bad Gateway nginx"
    assert html.retryable

    empty = error_from_response(httpx.Response(500))
    assert type(empty) is ServerError
    assert empty.detail == "Internal Server Error"
    assert empty.user_message.startswith("NetSuite had an internal error: Internal Server Error.")


def test_unexpected_error_keeps_netsuites_error_id_in_the_message() -> None:
    error = error_from_response(
        response(
            500,
            ns_body(
                500,
                "Internal Server Error",
                "An unexpected error occurred. Error ID: lx2k3j4",
                "UNEXPECTED_ERROR",
            ),
        )
    )
    assert isinstance(error, ServerError)
    assert "Error ID: lx2k3j4" in error.user_message


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (401, "INVALID_LOGIN", Unauthorized),
        (403, "INSUFFICIENT_PERMISSION", Forbidden),
        (400, "INSUFFICIENT_PERMISSION", Forbidden),
        (400, "NONEXISTENT_ID", NotFound),
        (400, "INVALID_REQUEST", UserError),
        (503, "UNEXPECTED_ERROR", ServerError),
        (302, None, NetSuiteError),
    ],
)
def test_status_and_code_choose_the_class(status: int, code: str | None, kind: type[NetSuiteError]) -> None:
    body = ns_body(status, "t", "something", code) if code else {}
    assert type(error_from_response(response(status, body))) is kind


def test_unauthorized_message_points_at_the_credentials() -> None:
    error = error_from_response(
        response(401, ns_body(401, "Unauthorized", "Invalid login attempt.", "INVALID_LOGIN"))
    )
    assert isinstance(error, Unauthorized)
    assert "credentials" in error.user_message
    assert "Invalid login attempt." in str(error)


def test_token_endpoint_error_shape_is_understood() -> None:
    parsed = parse_error_body(b'{"error":"invalid_grant","error_description":"expired"}')
    assert parsed.details[0].code == "invalid_grant"
    assert parsed.details[0].detail == "expired"


def test_long_details_are_collapsed_and_capped() -> None:
    detail = "word\n\t" * 400
    parsed = parse_error_body(json.dumps({"o:errorDetails": [{"detail": detail}]}).encode())
    text = parsed.details[0].detail
    assert "\n" not in text and len(text) == 500 and text.endswith("…")


def test_garbage_never_raises() -> None:
    for content in (b"", b"\xff\xfe\x00", b"[1,2]", b"null", b'{"o:errorDetails": "x"}', b"{"):
        parsed = parse_error_body(content)
        assert isinstance(parsed.details, tuple)
    assert parse_error_body(b"").details == ()
    assert parse_error_body(b"[1,2]").details[0].detail == "[1,2]"


def test_transport_errors_read_well() -> None:
    assert "did not answer in time" in Timeout(None, "ReadTimeout", "timed out").user_message
    error = TransportError(None, "ConnectError", "connection refused")
    assert error.user_message == "Could not reach NetSuite (connection refused). Try again later."
    assert str(error) == "no response ConnectError: connection refused"
    assert error.retryable
