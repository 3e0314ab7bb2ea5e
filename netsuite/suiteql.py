"""SuiteQL over REST: paging, keyset paging past the 100,000-row cap, datetime columns.

Wire format (netsuite.md §2.1): ``POST /services/rest/query/v1/suiteql?limit=<n>&offset=<m>`` with
``Prefer: transient`` and ``{"q": "...", "params": [...]}``. At most 1000 rows a page, the offset
a multiple of the limit, and at most 100,000 rows per query. Result keys come back in no
guaranteed case, so they are lower-cased here; every value is a string (or absent when null).

Values are only ever passed through ``params``; nothing here formats a value into query text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from netsuite.errors import ProtocolError

if TYPE_CHECKING:
    from netsuite.client import NetSuiteClient

MAX_PAGE_SIZE = 1000
ROW_CAP = 100_000
PREFER_TRANSIENT = {"Prefer": "transient"}
DATETIME_FORMAT = "YYYY-MM-DD HH24:MI:SS"  # HH24: plain HH is a 12-hour clock in Oracle syntax
_PY_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"

SuiteQLParam = str | int | Decimal | bool

_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?$")
_ALIAS = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ORDER_BY = re.compile(r"\border\s+by\b", re.IGNORECASE)
_WHERE = re.compile(r"\bwhere\b", re.IGNORECASE)
_CANONICAL_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}", re.ASCII)


class RowCapExceeded(ProtocolError):
    """Offset paging reached NetSuite's 100,000-row cap; use :func:`keyset_query`."""


@dataclass(frozen=True)
class SuiteQLPage:
    items: list[dict[str, Any]]
    has_more: bool
    total_results: int | None


def check_paging(limit: int, offset: int) -> None:
    """NetSuite's rules: 1 <= limit <= 1000, offset >= 0 and a multiple of limit."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"SuiteQL limit must be 1..{MAX_PAGE_SIZE}, got {limit}")
    if offset < 0 or offset % limit:
        raise ValueError(f"SuiteQL offset must be a non-negative multiple of {limit}, got {offset}")


def encode_params(params: Sequence[SuiteQLParam]) -> list[str]:
    """Bound values as NetSuite's examples send them: strings; booleans as 'T'/'F'."""
    if isinstance(params, str | bytes):
        raise TypeError("params must be a sequence of values, not a string")
    encoded = []
    for value in params:
        if isinstance(value, bool):
            encoded.append("T" if value else "F")
        elif isinstance(value, str | int | Decimal):
            encoded.append(str(value))
        else:
            raise TypeError(
                f"unsupported SuiteQL parameter {value!r}; pass str, int, Decimal or bool "
                "(format datetimes with format_datetime)"
            )
    return encoded


def parse_page(data: Any, offset: int) -> SuiteQLPage:
    """Items with lower-cased keys (``links`` dropped) and whether another page follows."""
    if not isinstance(data, Mapping) or not isinstance(data.get("items"), list):
        raise ProtocolError(200, None, "SuiteQL answer has no items list")
    items = []
    plain: set[Any] = set()  # keys seen to be lower-case text (and "links")
    for raw in data["items"]:
        if type(raw) is dict and raw.keys() <= plain:  # the usual row: copy it, drop its links
            row = raw.copy()
            row.pop("links", None)
            items.append(row)
            continue
        if not isinstance(raw, Mapping):
            raise ProtocolError(200, None, "SuiteQL row is not an object")
        items.append({str(k).lower(): v for k, v in raw.items() if str(k).lower() != "links"})
        plain.update(k for k in raw if type(k) is str and k == k.lower())
    total = data.get("totalResults")
    total_results = int(total) if isinstance(total, int | str) and str(total).isdigit() else None
    has_more = data.get("hasMore")
    if not isinstance(has_more, bool):
        has_more = total_results is not None and offset + len(items) < total_results
    return SuiteQLPage(items=items, has_more=has_more, total_results=total_results)


def run_query(
    client: NetSuiteClient,
    q: str,
    params: Sequence[SuiteQLParam] = (),
    page_size: int = MAX_PAGE_SIZE,
) -> Iterator[dict[str, Any]]:
    """Every row of ``q``, fetched page by page. ``q`` should ORDER BY a unique key, or paging
    may skip or repeat rows. Raises :class:`RowCapExceeded` rather than stopping silently at
    100,000 rows."""
    check_paging(page_size, 0)
    offset = 0
    for _ in range(ROW_CAP // page_size + 1):
        if offset >= ROW_CAP:
            raise RowCapExceeded(None, "ROW_CAP", f"query has more than {ROW_CAP} rows; use keyset_query")
        page = client.suiteql_page(q, params, limit=page_size, offset=offset)
        yield from page.items
        if not page.has_more:
            return
        if not page.items:
            raise ProtocolError(200, None, "SuiteQL said hasMore but sent an empty page")
        offset += page_size
    raise AssertionError("unreachable: the row cap ends the loop")


def keyset_query(
    client: NetSuiteClient,
    base_q: str,
    key_col: str,
    params: Sequence[SuiteQLParam] = (),
    page_size: int = MAX_PAGE_SIZE,
    start_after: SuiteQLParam | None = None,
    max_pages: int = 100_000,
) -> Iterator[dict[str, Any]]:
    """All rows of ``base_q`` in ``key_col`` order, however many, one page per request.

    Each page re-runs ``base_q`` with ``AND <key_col> > ?`` (``WHERE`` if it has none) and
    ``ORDER BY <key_col>`` at offset 0, so the 100,000-row cap never applies and rows added
    meanwhile do not shift pages. ``key_col`` must be unique (``id``) and selected; ``base_q``
    must not have its own ORDER BY, and its WHERE (if any) must be the outermost clause.
    """
    if not _COLUMN.fullmatch(key_col):
        raise ValueError(f"not a column name: {key_col!r}")
    if _ORDER_BY.search(base_q):
        raise ValueError("keyset_query adds its own ORDER BY; remove it from base_q")
    check_paging(page_size, 0)
    result_key = key_col.rsplit(".", 1)[-1].lower()
    joiner = "AND" if _WHERE.search(base_q) else "WHERE"
    base = base_q.strip().rstrip(";")
    last: SuiteQLParam | None = start_after
    for _ in range(max_pages):
        if last is None:
            q, bound = f"{base} ORDER BY {key_col}", list(params)
        else:
            q, bound = f"{base} {joiner} {key_col} > ? ORDER BY {key_col}", [*params, last]
        page = client.suiteql_page(q, bound, limit=page_size, offset=0)
        yield from page.items
        if not page.has_more or not page.items:
            return
        raw_last = page.items[-1].get(result_key)
        if raw_last is None:
            raise ProtocolError(200, None, f"SuiteQL rows lack the key column {result_key!r}")
        if last is not None and str(raw_last) == str(last):
            raise ProtocolError(200, None, f"key {result_key!r} did not advance; is it unique?")
        last = str(raw_last)
    raise ProtocolError(None, None, f"keyset_query stopped after {max_pages} pages")


def datetime_select(column: str, alias: str | None = None) -> str:
    """``TO_CHAR(col, 'YYYY-MM-DD HH24:MI:SS') AS alias`` -- raw datetimes follow the user's
    display preferences, so select them in this fixed format and read them with
    :func:`parse_datetime`."""
    if not _COLUMN.fullmatch(column):
        raise ValueError(f"not a column name: {column!r}")
    name = alias or column.rsplit(".", 1)[-1]
    if not _ALIAS.fullmatch(name):
        raise ValueError(f"not an alias: {name!r}")
    return f"TO_CHAR({column}, '{DATETIME_FORMAT}') AS {name}"


def to_timestamp_placeholder() -> str:
    """``TO_TIMESTAMP(?, 'YYYY-MM-DD HH24:MI:SS')`` for a bound value from :func:`format_datetime`."""
    return f"TO_TIMESTAMP(?, '{DATETIME_FORMAT}')"


def parse_datetime(value: str | None, tz: tzinfo = UTC) -> datetime | None:
    """Read a ``TO_CHAR`` value as an aware datetime in UTC.

    ``tz`` is the zone NetSuite rendered it in -- UTC unless the integration user's time zone
    says otherwise (UNCONFIRMED, netsuite.md §2.4; make it a setting).
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        if _CANONICAL_DATETIME.fullmatch(text):  # as TO_CHAR renders it: skip strptime's parser
            naive = datetime.fromisoformat(text)
        else:
            naive = datetime.strptime(text, _PY_DATETIME_FORMAT)  # noqa: DTZ007
    except ValueError as exc:
        raise ProtocolError(200, None, f"not a {DATETIME_FORMAT} datetime: {value!r}") from exc
    return naive.replace(tzinfo=tz).astimezone(UTC)


def format_datetime(value: datetime, tz: tzinfo = UTC) -> str:
    """An aware datetime as a ``TO_TIMESTAMP`` parameter in the zone NetSuite reads it in."""
    if value.tzinfo is None:
        raise ValueError("format_datetime needs an aware datetime")
    return value.astimezone(tz).strftime(_PY_DATETIME_FORMAT)
