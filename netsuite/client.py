"""The NetSuite REST client: records (customer, contact), SuiteQL, governance.

Every HTTP request holds one slot of the cross-process concurrency limiter while it is on the
wire, and gives it back before any backoff sleep, so a waiting retry never blocks someone else's
request (engineering.md, "NetSuite concurrency limit"). All requests send
``X-NetSuite-PropertyNameValidation: error`` so that a misspelt field fails loudly instead of
being dropped with a warning header (netsuite.md §1.2, §6.2).

Retries (netsuite.md §3.3): jittered exponential backoff on 429 / concurrency errors, 5xx,
timeouts and transport errors, and on a bounded burst of 401s (NetSuite sometimes answers 401
instead of 429 under load); ``Retry-After`` is honoured when present. Whether a failure may be
retried depends on whether repeating the request could change the outcome -- see
:class:`RetryPolicy`.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import Enum
from types import TracebackType
from typing import Any, Self
from urllib.parse import unquote, urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field

from netsuite import queries
from netsuite.auth import build_auth
from netsuite.config import NetSuiteConfig
from netsuite.errors import (
    NetSuiteError,
    ProtocolError,
    RateLimited,
    Timeout,
    TransportError,
    Unauthorized,
    error_from_response,
)
from netsuite.hosts import NetSuiteHosts
from netsuite.limiter import Limiter, SlotTimeout
from netsuite.suiteql import (
    PREFER_TRANSIENT,
    SuiteQLPage,
    SuiteQLParam,
    check_paging,
    encode_params,
    parse_page,
    run_query,
)

PROPERTY_NAME_VALIDATION = "X-NetSuite-PropertyNameValidation"
JSON = "application/json"

RecordId = str | int

_EXTERNAL_ID = re.compile(r"^[A-Za-z0-9_-]+$")
_INTERNAL_ID = re.compile(r"^-?[0-9]+$")
_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

# Failures that prove NetSuite did not apply the request, so even a create may be repeated.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class RetryPolicy(Enum):
    """Which failures a request may be repeated after.

    ``IDEMPOTENT``: GET, SuiteQL, PUT-by-external-id and PATCH whose sublists are all replaced --
    sending them twice leaves NetSuite as sending them once, so every transient failure
    (429, 401 burst, 5xx, timeout, transport error) is retried.

    ``NOT_APPLIED_ONLY``: POST creates and sublist-appending writes. A timeout or 5xx after the
    request reached NetSuite may hide a success; a blind retry would create a second customer or
    a second address line. Such requests are retried only on failures that prove nothing was
    applied: 429 / concurrency blocks, 401s, and connections that never opened. Callers that
    need a retryable create use :meth:`NetSuiteClient.upsert_customer_by_external_id` (PUT to
    ``eid:<key>``, idempotent by design).
    """

    IDEMPOTENT = "idempotent"
    NOT_APPLIED_ONLY = "not_applied_only"


class Term(BaseModel):
    """A payment term (``term`` record): Net 30 and the like. Ids differ per account."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    inactive: bool


class SalesRep(BaseModel):
    """An employee with ``issalesrep = 'T'``."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    email: str | None
    inactive: bool


class GovernanceLimits(BaseModel):
    """``GET /services/rest/system/v1/governanceLimits`` (administrator roles only)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    account_concurrency_limit: int = Field(alias="accountConcurrencyLimit")
    account_unallocated_concurrency_limit: int | None = Field(
        None, alias="accountUnallocatedConcurrencyLimit"
    )
    integration_concurrency_limit: int | None = Field(None, alias="integrationConcurrencyLimit")
    integration_limit_type: str | None = Field(None, alias="integrationLimitType")


class NetSuiteClient:
    """Synchronous NetSuite REST client; thread-safe when ``http`` and ``limiter`` are.

    ``http`` is used for every call including OAuth token requests (built from the config's
    timeouts if omitted, and then closed by :meth:`close`). ``auth`` defaults to the config's
    mode. ``clock`` feeds authentication (JWT times, token expiry, TBA timestamps); ``sleep`` and
    ``rng`` drive backoff so tests can run without waiting.
    """

    def __init__(
        self,
        config: NetSuiteConfig,
        http: httpx.Client | None,
        limiter: Limiter,
        *,
        auth: httpx.Auth | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.hosts: NetSuiteHosts = config.hosts
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client(timeout=config.timeout)
        self._limiter = limiter
        self._auth = auth if auth is not None else build_auth(config, self._http, clock=clock)
        self._sleep = sleep
        self._rng = rng or random.Random()

    # ---- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---- the one way out ------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        *,
        retry: RetryPolicy,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one logical request, retrying per ``retry``; return the 2xx response.

        Raises a :class:`~netsuite.errors.NetSuiteError` subclass when NetSuite refuses, or when
        retries run out (the last failure), or :class:`RateLimited` when no limiter slot came free.
        """
        send_headers = {PROPERTY_NAME_VALIDATION: "error", "Content-Type": JSON}
        send_headers.update(headers or {})
        unauthorized = 0
        for attempt in range(1, self.config.max_attempts + 1):
            request = self._http.build_request(method, url, params=params, json=json, headers=send_headers)
            response, error, maybe_applied = self._send_once(request)
            if response is not None and response.is_success:
                return response
            assert error is not None
            if isinstance(error, Unauthorized):
                unauthorized += 1
            if not self._may_retry(error, retry, maybe_applied, attempt, unauthorized):
                raise error
            self._sleep(self._backoff(attempt, error))  # the slot is already released here
        raise AssertionError("unreachable: the last attempt either returns or raises")

    def _send_once(self, request: httpx.Request) -> tuple[httpx.Response | None, NetSuiteError | None, bool]:
        """One HTTP exchange inside one limiter slot: (response, error, may have been applied)."""
        try:
            with self._limiter.slot():
                try:
                    response = self._http.send(request, auth=self._auth)
                except httpx.TimeoutException as exc:
                    return None, _transport_error(Timeout, exc), not isinstance(exc, _NOT_SENT)
                except httpx.TransportError as exc:
                    error = _transport_error(TransportError, exc)
                    return None, error, not isinstance(exc, _NOT_SENT)
                except NetSuiteError as exc:  # from the OAuth token endpoint, before sending
                    return None, exc, False
        except SlotTimeout as exc:
            raise RateLimited(None, "CONCURRENCY_SLOT_TIMEOUT", str(exc)) from exc
        if response.is_success:
            return response, None, True
        return response, error_from_response(response), True

    def _may_retry(
        self,
        error: NetSuiteError,
        policy: RetryPolicy,
        maybe_applied: bool,
        attempt: int,
        unauthorized: int,
    ) -> bool:
        if attempt >= self.config.max_attempts or not error.retryable:
            return False
        if isinstance(error, Unauthorized):
            # One refresh already happened inside the auth flow; allow a short burst more.
            return unauthorized <= self.config.max_unauthorized_retries
        if isinstance(error, RateLimited):
            return True  # NetSuite blocked the request before running it
        return policy is RetryPolicy.IDEMPOTENT or not maybe_applied

    def _backoff(self, attempt: int, error: NetSuiteError) -> float:
        """Exponential backoff with jitter (half fixed, half random); Retry-After as a floor."""
        cap = min(
            self.config.backoff_max_seconds,
            self.config.backoff_base_seconds * 2.0 ** (attempt - 1),
        )
        delay = cap / 2 + self._rng.uniform(0, cap / 2)
        retry_after = error.retry_after if isinstance(error, RateLimited) else None
        if retry_after is not None:
            delay = max(delay, retry_after)
        return min(delay, self.config.backoff_max_seconds)

    # ---- customers ------------------------------------------------------------------------

    def get_customer(self, customer_id: RecordId, expand_sub_resources: bool = True) -> dict[str, Any]:
        """The customer record; sublists (address book...) expanded unless told otherwise."""
        return self._get_record("customer", record_ref(customer_id), expand_sub_resources)

    def get_customer_by_external_id(
        self, external_id: str, expand_sub_resources: bool = True
    ) -> dict[str, Any]:
        return self._get_record("customer", external_ref(external_id), expand_sub_resources)

    def create_customer(self, body: Mapping[str, Any]) -> str:
        """POST a new customer; return its internal id (from the 204's ``Location``).

        Not retried after failures that may hide a success (see :class:`RetryPolicy`); prefer
        :meth:`upsert_customer_by_external_id` when the caller has a stable key.
        """
        return self._create("customer", body)

    def update_customer(
        self, customer_id: RecordId, body: Mapping[str, Any], replace: Sequence[str] | None = None
    ) -> None:
        """PATCH the customer; ``replace`` names sublists to replace (``?replace=addressBook``).

        Without ``replace`` a sublist's unkeyed lines are appended, so such a PATCH is not
        retried blindly; with every sent sublist named in ``replace`` it is.
        """
        self._write("PATCH", "customer", record_ref(customer_id), body, replace)

    def upsert_customer_by_external_id(
        self, external_id: str, body: Mapping[str, Any], replace: Sequence[str] | None = None
    ) -> str:
        """PUT ``customer/eid:<external_id>``: create or update; return the internal id.

        The idempotent way to create: a retry finds the record the first attempt made. Pass
        ``replace=["addressBook"]`` when the body carries address lines, or a retry that follows
        an unseen success appends them twice (and is therefore not retried blindly).
        """
        ref = external_ref(external_id)
        response = self._write("PUT", "customer", ref, body, replace)
        found = _id_from_location(response, required=False)
        if found is not None and _INTERNAL_ID.fullmatch(found):
            return found
        record = self.get_customer_by_external_id(external_id, expand_sub_resources=False)
        return _record_id(record)

    # ---- contacts -------------------------------------------------------------------------

    def get_contact(self, contact_id: RecordId, expand_sub_resources: bool = False) -> dict[str, Any]:
        return self._get_record("contact", record_ref(contact_id), expand_sub_resources)

    def create_contact(self, body: Mapping[str, Any]) -> str:
        """POST a contact (set ``company: {"id": ...}`` to place it under a customer)."""
        return self._create("contact", body)

    def update_contact(
        self, contact_id: RecordId, body: Mapping[str, Any], replace: Sequence[str] | None = None
    ) -> None:
        self._write("PATCH", "contact", record_ref(contact_id), body, replace)

    def upsert_contact_by_external_id(
        self, external_id: str, body: Mapping[str, Any], replace: Sequence[str] | None = None
    ) -> str:
        ref = external_ref(external_id)
        response = self._write("PUT", "contact", ref, body, replace)
        found = _id_from_location(response, required=False)
        if found is not None and _INTERNAL_ID.fullmatch(found):
            return found
        return _record_id(self._get_record("contact", ref, False))

    def attach_contact(
        self, customer_id: RecordId, contact_id: RecordId, role_id: RecordId | None = None
    ) -> None:
        """``POST customer/<id>/!attach/contact/<contactId>`` with an optional contact role.

        Retried like an idempotent call: attaching links two records rather than creating one,
        so a repeat cannot make a duplicate (at worst NetSuite reports the link exists).
        """
        url = self.hosts.record_url(
            "customer", record_ref(customer_id), "!attach", "contact", record_ref(contact_id)
        )
        body = {"role": {"id": record_ref(role_id)}} if role_id is not None else None
        self.request("POST", url, json=body, retry=RetryPolicy.IDEMPOTENT)

    # ---- look-ups -------------------------------------------------------------------------

    def list_terms(self) -> list[Term]:
        """Every payment term, inactive ones flagged (ids are account data: resolve by name)."""
        return [
            Term(
                id=str(row["id"]),
                name=str(row.get("name") or ""),
                inactive=_flag(row.get("isinactive")),
            )
            for row in run_query(self, queries.TERMS)
        ]

    def list_sales_reps(self) -> list[SalesRep]:
        """Employees marked as sales reps (SuiteQL ``employee`` where ``issalesrep = 'T'``)."""
        reps = []
        for row in run_query(self, queries.SALES_REPS):
            full = " ".join(str(row[k]) for k in ("firstname", "lastname") if row.get(k)).strip()
            reps.append(
                SalesRep(
                    id=str(row["id"]),
                    name=full or str(row.get("entityid") or row["id"]),
                    email=str(row["email"]) if row.get("email") else None,
                    inactive=_flag(row.get("isinactive")),
                )
            )
        return reps

    def suiteql_page(
        self, q: str, params: Sequence[SuiteQLParam] = (), *, limit: int, offset: int
    ) -> SuiteQLPage:
        """One page of a SuiteQL query (``Prefer: transient``; values bound via ``params``).

        A query only reads, so it is retried like any idempotent call. For all rows use
        :func:`netsuite.suiteql.run_query` or :func:`netsuite.suiteql.keyset_query`.
        """
        check_paging(limit, offset)
        body: dict[str, Any] = {"q": q}
        bound = encode_params(params)
        if bound:
            body["params"] = bound
        response = self.request(
            "POST",
            self.hosts.suiteql_url,
            params={"limit": str(limit), "offset": str(offset)},
            json=body,
            headers=PREFER_TRANSIENT,
            retry=RetryPolicy.IDEMPOTENT,
        )
        return parse_page(_json_object(response), offset)

    def governance_limits(self) -> GovernanceLimits:
        """The account's concurrency governance (netsuite.md §3.2).

        NetSuite serves this only to administrator roles; an integration role gets 401/403,
        so callers should treat failure as "unknown" and fall back to the configured limit.
        """
        response = self.request("GET", self.hosts.governance_url, retry=RetryPolicy.IDEMPOTENT)
        return GovernanceLimits.model_validate(_json_object(response))

    # ---- helpers --------------------------------------------------------------------------

    def _get_record(self, record_type: str, ref: str, expand: bool) -> dict[str, Any]:
        params = {"expandSubResources": "true"} if expand else None
        response = self.request(
            "GET",
            self.hosts.record_url(record_type, ref),
            params=params,
            retry=RetryPolicy.IDEMPOTENT,
        )
        return _json_object(response)

    def _create(self, record_type: str, body: Mapping[str, Any]) -> str:
        response = self.request(
            "POST",
            self.hosts.record_url(record_type),
            json=dict(body),
            retry=RetryPolicy.NOT_APPLIED_ONLY,
        )
        found = _id_from_location(response, required=True)
        assert found is not None
        return found

    def _write(
        self,
        method: str,
        record_type: str,
        ref: str,
        body: Mapping[str, Any],
        replace: Sequence[str] | None,
    ) -> httpx.Response:
        replace_list = _replace_list(replace)
        appending = appended_sublists(body, replace_list)
        return self.request(
            method,
            self.hosts.record_url(record_type, ref),
            params={"replace": ",".join(replace_list)} if replace_list else None,
            json=dict(body),
            retry=RetryPolicy.NOT_APPLIED_ONLY if appending else RetryPolicy.IDEMPOTENT,
        )


# ---- module helpers ---------------------------------------------------------------------------


def record_ref(value: RecordId) -> str:
    """An internal id (``647``) or an ``eid:<key>`` reference, checked for use in a URL path."""
    if isinstance(value, bool):
        raise TypeError("a record id cannot be a bool")
    if isinstance(value, int):
        return str(value)
    text = value.strip()
    if text.startswith("eid:"):
        return external_ref(text[4:])
    if not _INTERNAL_ID.fullmatch(text):
        raise ValueError(f"not a NetSuite internal id: {value!r}")
    return text


def external_ref(external_id: str) -> str:
    """``eid:<external_id>``. NetSuite parses only letters, digits, ``_`` and ``-`` there."""
    if not _EXTERNAL_ID.fullmatch(external_id):
        raise ValueError(
            f"external id {external_id!r} cannot be used in a URL: "
            "only letters, digits, '_' and '-' are allowed"
        )
    return f"eid:{external_id}"


def appended_sublists(body: Mapping[str, Any], replace: Iterable[str]) -> list[str]:
    """Sublists in ``body`` (``{"items": [...]}`` values) that NetSuite will merge, not replace.

    Writing those twice can append their unkeyed lines twice, which is why such writes are
    not retried blindly.
    """
    replaced = {name.lower() for name in replace}
    return [
        key
        for key, value in body.items()
        if isinstance(value, Mapping) and "items" in value and key.lower() not in replaced
    ]


def _replace_list(replace: Sequence[str] | None) -> list[str]:
    if replace is None:
        return []
    if isinstance(replace, str):
        raise TypeError("replace takes a list of sublist names, not a string")
    for name in replace:
        if not _FIELD_NAME.fullmatch(name):
            raise ValueError(f"not a sublist name: {name!r}")
    return list(dict.fromkeys(replace))


def _id_from_location(response: httpx.Response, *, required: bool) -> str | None:
    location = response.headers.get("location")
    if not location:
        if required:
            raise ProtocolError(response.status_code, None, "NetSuite answered without a Location header")
        return None
    last = unquote(urlsplit(location).path.rstrip("/").rsplit("/", 1)[-1])
    if required and not _INTERNAL_ID.fullmatch(last):
        raise ProtocolError(response.status_code, None, f"Location does not end in a record id: {location}")
    return last or None


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError as exc:
        raise ProtocolError(response.status_code, None, "NetSuite sent a body that is not JSON") from exc
    if not isinstance(data, dict):
        raise ProtocolError(response.status_code, None, "NetSuite sent JSON that is not an object")
    return data


def _record_id(record: Mapping[str, Any]) -> str:
    value = record.get("id")
    if value is None or not _INTERNAL_ID.fullmatch(str(value)):
        raise ProtocolError(200, None, "NetSuite record has no internal id")
    return str(value)


def _flag(value: Any) -> bool:
    """SuiteQL booleans are 'T'/'F' strings; the REST API sends JSON booleans."""
    if isinstance(value, bool):
        return value
    return str(value).strip().upper() in ("T", "TRUE") if value is not None else False


def _transport_error(kind: type[TransportError], exc: httpx.HTTPError) -> TransportError:
    return kind(None, type(exc).__name__, str(exc) or type(exc).__name__)
