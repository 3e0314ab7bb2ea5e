"""SuiteQL paging, keyset paging past the row cap, and datetime columns."""

from __future__ import annotations

import json
import random
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from netsuite.client import NetSuiteClient
from netsuite.config import NetSuiteConfig
from netsuite.errors import ProtocolError
from netsuite.limiter import LocalLimiter
from netsuite.suiteql import (
    ROW_CAP,
    RowCapExceeded,
    check_paging,
    datetime_select,
    encode_params,
    format_datetime,
    keyset_query,
    parse_datetime,
    run_query,
    to_timestamp_placeholder,
)

SUITEQL = "https://1234567.suitetalk.api.netsuite.com/services/rest/query/v1/suiteql"


class FakeSuiteQL:
    """Answers SuiteQL like NetSuite over a table of ``n`` customers (ids 1..n), enforcing its
    paging rules and evaluating the one filter the keyset pager adds (``id > ?``)."""

    def __init__(self, n: int, has_more_field: bool = True) -> None:
        self.rows = [{"id": str(i), "companyname": f"Co {i}"} for i in range(1, n + 1)]
        self.has_more_field = has_more_field
        self.seen: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.method == "POST"
        assert str(request.url).split("?")[0] == SUITEQL
        assert request.headers["Prefer"] == "transient"
        assert request.headers["Content-Type"] == "application/json"
        limit = int(request.url.params["limit"])
        offset = int(request.url.params["offset"])
        body = json.loads(request.content)
        self.seen.append({"limit": limit, "offset": offset, **body})
        if limit > 1000 or offset % limit:
            return httpx.Response(400, json={"o:errorDetails": [{"detail": "bad paging"}]})
        if offset >= ROW_CAP:
            return httpx.Response(400, json={"o:errorDetails": [{"detail": "over the cap"}]})
        rows = self.rows
        if re.search(r"\bid > \?", body["q"]):
            after = int(body["params"][-1])
            rows = [r for r in rows if int(r["id"]) > after]
        page = rows[offset : offset + limit]
        answer: dict[str, Any] = {
            "links": [],
            "count": len(page),
            "offset": offset,
            "totalResults": len(rows),
            # Key case is not guaranteed: answer in upper case to prove the client normalises.
            "items": [{"links": [], **{k.upper(): v for k, v in r.items()}} for r in page],
        }
        if self.has_more_field:
            answer["hasMore"] = offset + limit < len(rows)
        return httpx.Response(200, json=answer)


def make_client(handler: Any) -> NetSuiteClient:
    config = NetSuiteConfig(
        account_id="1234567",
        auth_mode="tba",
        tba_consumer_key="a",
        tba_consumer_secret="b",
        tba_token_id="c",
        tba_token_secret="d",
    )
    return NetSuiteClient(
        config,
        httpx.Client(transport=httpx.MockTransport(handler)),
        LocalLimiter(2),
        sleep=lambda s: None,
        rng=random.Random(0),
    )


def test_run_query_pages_with_limit_offset_and_bound_params() -> None:
    fake = FakeSuiteQL(2500)
    q = "SELECT id, companyname FROM customer WHERE isinactive = ? ORDER BY id"
    rows = list(run_query(make_client(fake), q, [False], page_size=1000))
    assert [r["id"] for r in rows] == [str(i) for i in range(1, 2501)]
    assert rows[0] == {"id": "1", "companyname": "Co 1"}  # lower-cased, links dropped
    assert [(s["limit"], s["offset"]) for s in fake.seen] == [(1000, 0), (1000, 1000), (1000, 2000)]
    assert all(s["q"] == q and s["params"] == ["F"] for s in fake.seen)


def test_run_query_without_has_more_uses_total_results() -> None:
    fake = FakeSuiteQL(25, has_more_field=False)
    rows = list(run_query(make_client(fake), "SELECT id FROM customer ORDER BY id", page_size=10))
    assert len(rows) == 25
    assert len(fake.seen) == 3
    assert "params" not in fake.seen[0]


def test_run_query_refuses_to_stop_silently_at_the_row_cap() -> None:
    fake = FakeSuiteQL(ROW_CAP + 1)
    rows: list[dict[str, Any]] = []
    with pytest.raises(RowCapExceeded, match="keyset_query"):
        rows.extend(run_query(make_client(fake), "SELECT id FROM customer ORDER BY id"))
    assert len(rows) == ROW_CAP
    assert fake.seen[-1]["offset"] == ROW_CAP - 1000


def test_keyset_query_passes_the_row_cap_one_page_at_a_time() -> None:
    fake = FakeSuiteQL(2500)
    base = "SELECT c.id, c.companyname FROM customer c WHERE c.isinactive = ?"
    rows = list(keyset_query(make_client(fake), base, "c.id", ["F"], page_size=1000))
    assert [r["id"] for r in rows] == [str(i) for i in range(1, 2501)]
    assert [s["offset"] for s in fake.seen] == [0, 0, 0]
    assert fake.seen[0]["q"] == base + " ORDER BY c.id"
    assert fake.seen[0]["params"] == ["F"]
    assert fake.seen[1]["q"] == base + " AND c.id > ? ORDER BY c.id"
    assert fake.seen[1]["params"] == ["F", "1000"]
    assert fake.seen[2]["params"] == ["F", "2000"]


def test_keyset_query_adds_where_and_can_resume() -> None:
    fake = FakeSuiteQL(30)
    rows = list(
        keyset_query(make_client(fake), "SELECT id FROM customer", "id", page_size=10, start_after=25)
    )
    assert [r["id"] for r in rows] == ["26", "27", "28", "29", "30"]
    assert fake.seen[0]["q"] == "SELECT id FROM customer WHERE id > ? ORDER BY id"
    assert fake.seen[0]["params"] == ["25"]


def test_keyset_query_refuses_bad_input() -> None:
    client = make_client(FakeSuiteQL(1))
    with pytest.raises(ValueError, match="ORDER BY"):
        list(keyset_query(client, "SELECT id FROM customer ORDER BY id", "id"))
    with pytest.raises(ValueError, match="column"):
        list(keyset_query(client, "SELECT id FROM customer", "id; DROP"))


def test_keyset_query_stops_when_the_key_does_not_advance() -> None:
    page = {"items": [{"id": "5"}], "hasMore": True}
    client = make_client(lambda r: httpx.Response(200, json=page))
    with pytest.raises(ProtocolError, match="did not advance"):
        list(keyset_query(client, "SELECT id FROM customer", "id", page_size=1))


def test_paging_rules() -> None:
    check_paging(1000, 3000)
    for limit, offset in ((0, 0), (1001, 0), (100, 50), (100, -100)):
        with pytest.raises(ValueError):
            check_paging(limit, offset)
    with pytest.raises(ValueError):
        list(run_query(make_client(FakeSuiteQL(1)), "SELECT id FROM customer", page_size=5000))


def test_params_are_encoded_as_strings() -> None:
    assert encode_params(["a", 5, Decimal("1.50"), True, False]) == ["a", "5", "1.50", "T", "F"]
    with pytest.raises(TypeError):
        encode_params([1.5])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        encode_params([datetime.now(UTC)])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        encode_params("abc")


def test_datetime_select_and_parse() -> None:
    assert (
        datetime_select("c.lastmodifieddate", "lastmodified")
        == "TO_CHAR(c.lastmodifieddate, 'YYYY-MM-DD HH24:MI:SS') AS lastmodified"
    )
    assert datetime_select("datecreated").endswith(" AS datecreated")
    with pytest.raises(ValueError):
        datetime_select("x) || (y")
    assert to_timestamp_placeholder() == "TO_TIMESTAMP(?, 'YYYY-MM-DD HH24:MI:SS')"

    parsed = parse_datetime("2026-03-01 13:05:09")
    assert parsed == datetime(2026, 3, 1, 13, 5, 9, tzinfo=UTC)
    pacific = parse_datetime("2026-07-01 08:00:00", ZoneInfo("America/Los_Angeles"))
    assert pacific == datetime(2026, 7, 1, 15, 0, 0, tzinfo=UTC)
    assert pacific is not None and pacific.tzinfo is UTC
    assert parse_datetime(None) is None
    assert parse_datetime("  ") is None
    with pytest.raises(ProtocolError):
        parse_datetime("03/01/2026 1:05 pm")


def test_format_datetime_round_trips() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert format_datetime(moment) == "2026-01-02 03:04:05"
    tz = ZoneInfo("America/Los_Angeles")
    assert parse_datetime(format_datetime(moment, tz), tz) == moment
    with pytest.raises(ValueError):
        format_datetime(datetime(2026, 1, 2))  # noqa: DTZ001
