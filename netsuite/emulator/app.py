"""The emulator's WSGI application: NetSuite's paths, status codes, headers and bodies.

Order of events per request, mirroring NetSuite's front door: count it in flight, refuse it with
429 when more requests are in flight than the concurrency cap, apply injected faults, wait the
configured latency, authenticate, then route. The latency is served while the request counts as in
flight, so concurrency caps bite exactly as on a real account.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from werkzeug.wrappers import Request, Response

from netsuite.emulator.auth import (
    TOKEN_PATH,
    AuthConfig,
    AuthFailure,
    TbaVerifier,
    TokenIssuer,
)
from netsuite.emulator.errors import (
    ERROR_CONTENT_TYPE,
    NsError,
    concurrency_exceeded,
    invalid_content,
    invalid_login,
    nonexistent,
    unexpected_error,
)
from netsuite.emulator.faults import Faults, LogEntry, RequestLog, Stats
from netsuite.emulator.model import ContactRole, Customer
from netsuite.emulator.rest import (
    RECORD_PATH,
    BodyOptions,
    BodyReader,
    Renderer,
    parse_replace,
)
from netsuite.emulator.state import EmulatorState
from netsuite.emulator.suiteql import SuiteQLService, check_paging

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

_log = logging.getLogger(__name__)

SINGULAR = "application/vnd.oracle.resource+json; type=singular; charset=UTF-8"
COLLECTION = "application/vnd.oracle.resource+json; type=collection; charset=UTF-8"
SUITEQL_PATH = "/services/rest/query/v1/suiteql"

_ROUTES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(rf"^{RECORD_PATH}/(customer|contact|term)$"), "collection"),
    (re.compile(rf"^{RECORD_PATH}/(customer|contact|term)/([^/]+)$"), "record"),
    (re.compile(rf"^{RECORD_PATH}/customer/([^/]+)/addressBook$"), "address_book"),
    (re.compile(rf"^{RECORD_PATH}/customer/([^/]+)/addressBook/(\d+)$"), "address_line"),
    (
        re.compile(rf"^{RECORD_PATH}/customer/([^/]+)/addressBook/(\d+)/addressBookAddress$"),
        "address",
    ),
    (
        re.compile(rf"^{RECORD_PATH}/customer/([^/]+)/!(attach|detach)/contact/([^/]+)$"),
        "attach",
    ),
]


@dataclass
class EmulatorConfig:
    """Everything that shapes one emulator instance.

    ``concurrency_cap=None`` never refuses; ``public_base_url`` is the scheme+host clients sign
    TBA requests with and see in ``Location`` headers when the emulator sits behind a proxy
    (default: the request's own host). ``property_names_case_insensitive`` and ``timezone`` model
    UNCONFIRMED NetSuite behaviour (netsuite.md §1.2, §2.4).
    """

    seed: int = 1
    customers: int = 200
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    concurrency_cap: int | None = None
    auth: AuthConfig = field(default_factory=AuthConfig.off)
    timezone: str = "UTC"
    property_names_case_insensitive: bool = False
    public_base_url: str | None = None
    log_size: int = 10_000
    log_bodies: bool = False

    def __post_init__(self) -> None:
        if self.latency_ms < 0 or self.jitter_ms < 0:
            raise ValueError("latency and jitter must be >= 0")
        if self.concurrency_cap is not None and self.concurrency_cap < 1:
            raise ValueError("concurrency_cap must be >= 1 (or None for no cap)")


class _Dropped(Exception):
    """The connection was closed on purpose; nothing may be written."""


class EmulatorApp:
    """A NetSuite account behind REST record + SuiteQL + OAuth endpoints, as a WSGI app."""

    def __init__(self, config: EmulatorConfig, state: EmulatorState | None = None) -> None:
        self.config = config
        self.state = state or EmulatorState(config.seed, config.customers)
        self.faults = Faults()
        self.stats = Stats()
        self.log = RequestLog(config.log_size)
        self.suiteql = SuiteQLService(self.state, timezone=config.timezone)
        self.tokens = TokenIssuer(config.auth)
        self.tba = TbaVerifier(config.auth)
        self.stopping = threading.Event()
        self._rng = random.Random(config.seed)
        self._rng_lock = threading.Lock()

    # --- WSGI entry ----------------------------------------------------------------------------

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        started = datetime.now(UTC)
        clock = time.perf_counter()
        in_flight = self.stats.enter()
        status = 0
        auth_note = "off" if not self.config.auth.enabled else "none"
        fault_note: str | None = None
        try:
            try:
                response, auth_note, fault_note = self._serve(request, in_flight)
            except NsError as error:
                response = _error_response(error)
            except _Dropped:
                fault_note = "drop"
                _drop_connection(environ)
                # werkzeug's server treats a ConnectionError as a client that went away: no
                # response, no traceback in the log.
                raise ConnectionAbortedError("connection dropped by a fault rule") from None
            except Exception:  # a bug in the emulator must still look like NetSuite
                _log.exception("emulator error on %s %s", request.method, request.path)
                response = _error_response(unexpected_error("emulator-internal"))
            status = response.status_code
            return response(environ, start_response)
        finally:
            self.stats.leave(status)
            self.log.append(
                LogEntry(
                    started=started,
                    method=request.method,
                    path=request.path,
                    query=request.query_string.decode("latin-1"),
                    status=status,
                    in_flight=in_flight,
                    duration_ms=(time.perf_counter() - clock) * 1000,
                    auth=auth_note,
                    fault=fault_note,
                    body=request.get_data(cache=True) if self.config.log_bodies else b"",
                )
            )

    def _serve(self, request: Request, in_flight: int) -> tuple[Response, str, str | None]:
        cap = self.config.concurrency_cap
        if cap is not None and in_flight > cap:
            self.stats.count_rejection()
            raise concurrency_exceeded()
        fault_note: str | None = None
        rule = self.faults.match(request.method, request.path, in_flight)
        if rule is not None:
            self.stats.count_fault()
            fault_note = f"{rule.kind}:{rule.status if rule.kind == 'status' else ''}"
            if rule.kind == "drop":
                raise _Dropped
            if rule.kind == "status":
                raise _fault_error(rule.status)
            self.stopping.wait(rule.delay_seconds)
        self._latency()
        if request.path == TOKEN_PATH:
            return self._token(request), "token", fault_note
        auth_note = self._authenticate(request)
        return self._route(request), auth_note, fault_note

    def _latency(self) -> None:
        base = self.config.latency_ms
        if self.config.jitter_ms:
            with self._rng_lock:
                base += self._rng.uniform(0, self.config.jitter_ms)
        if base > 0:
            self.stopping.wait(base / 1000)

    # --- auth ----------------------------------------------------------------------------------

    def base_url(self, request: Request) -> str:
        return (self.config.public_base_url or request.host_url).rstrip("/")

    def _authenticate(self, request: Request) -> str:
        if not self.config.auth.enabled:
            return "off"
        header = request.headers.get("Authorization", "")
        try:
            if header.startswith("Bearer "):
                self.tokens.check_bearer(header[7:].strip())
                return "bearer"
            if header.startswith("OAuth "):
                self.tba.verify(
                    header,
                    request.method,
                    self.base_url(request) + request.path,
                    list(request.args.items(multi=True)),
                )
                return "tba"
            raise AuthFailure("no Authorization header")
        except AuthFailure as failure:
            error = invalid_login()
            error.headers["X-Emulator-Auth-Failure"] = failure.reason
            raise error from None

    def _token(self, request: Request) -> Response:
        if request.method != "POST":
            raise NsError(405, "INVALID_REQUEST", "Use POST for the token endpoint.")
        try:
            if not self.config.auth.enabled:
                raise AuthFailure("authentication is off: no tokens to issue",
                                  oauth_error="invalid_request")  # fmt: skip
            answer = self.tokens.issue(dict(request.form.items()), self.base_url(request) + TOKEN_PATH)
        except AuthFailure as failure:
            status = 400 if failure.oauth_error != "invalid_client" else 401
            return Response(
                json.dumps({"error": failure.oauth_error}),
                status=status,
                content_type="application/json",
                headers={"X-Emulator-Auth-Failure": failure.reason},
            )
        return Response(json.dumps(answer), status=200, content_type="application/json")

    # --- routing -------------------------------------------------------------------------------

    def _route(self, request: Request) -> Response:
        path = request.path
        if path == SUITEQL_PATH:
            return self._suiteql(request)
        for pattern, name in _ROUTES:
            match = pattern.match(path)
            if match:
                handler: Callable[..., Response] = getattr(self, f"_{name}")
                return handler(request, *match.groups())
        raise NsError(404, "INVALID_REQUEST", f"The URL path {path} is not a valid REST resource.")

    def _json_body(self, request: Request, *, optional: bool = False) -> Any:
        raw = request.get_data(cache=True)
        if not raw.strip():
            if optional:
                return None
            raise invalid_content("The request body is empty; send a JSON object.")
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise invalid_content(f"Invalid JSON in the request body: {exc}.") from exc

    def _reader(self, request: Request) -> BodyReader:
        strict = request.headers.get("X-NetSuite-PropertyNameValidation", "warning").lower()
        return BodyReader(
            self.state,
            BodyOptions(
                strict_names=strict == "error",
                replace=parse_replace(request.args.get("replace")),
                case_insensitive_names=self.config.property_names_case_insensitive,
            ),
        )

    def _renderer(self, request: Request) -> Renderer:
        return Renderer(self.state, self.base_url(request))

    @staticmethod
    def _paging(request: Request, default_limit: int = 1000) -> tuple[int, int]:
        try:
            limit = int(request.args.get("limit", default_limit))
            offset = int(request.args.get("offset", 0))
        except ValueError:
            raise NsError(400, "INVALID_PARAMETER", "limit and offset must be integers.") from None
        return limit, offset

    def _customer_id(self, key: str) -> int:
        """Resolve ``<id>`` or ``eid:<externalId>`` to an existing customer's internal id."""
        if key.startswith("eid:"):
            found = self.state.customer_id_by_external_id(key[4:])
        else:
            found = int(key) if key.isdigit() else None
            if found is not None and self.state.get_customer(found) is None:
                found = None
        if found is None:
            raise nonexistent("customer", key)
        return found

    def _contact_id(self, key: str) -> int:
        if key.startswith("eid:"):
            found = self.state.contact_id_by_external_id(key[4:])
        else:
            found = int(key) if key.isdigit() else None
            if found is not None and self.state.get_contact(found) is None:
                found = None
        if found is None:
            raise nonexistent("contact", key)
        return found

    # --- SuiteQL -------------------------------------------------------------------------------

    def _suiteql(self, request: Request) -> Response:
        if request.method != "POST":
            raise NsError(405, "INVALID_REQUEST", "Use POST to run a SuiteQL query.")
        if "transient" not in request.headers.get("Prefer", "").lower():
            raise NsError(
                400,
                "INVALID_REQUEST",
                "The request is missing the 'Prefer: transient' header required by the query service.",
            )
        limit, offset = self._paging(request)
        check_paging(limit, offset, self.suiteql.max_results)
        body = self._json_body(request)
        if not isinstance(body, dict):
            raise invalid_content("The request body must be a JSON object with 'q'.")
        page = self.suiteql.execute(body.get("q"), body.get("params"), limit=limit, offset=offset)
        url = f"{self.base_url(request)}{SUITEQL_PATH}"
        links = [{"rel": "self", "href": f"{url}?limit={limit}&offset={offset}"}]
        if page.has_more:
            links.insert(0, {"rel": "next", "href": f"{url}?limit={limit}&offset={offset + limit}"})
        payload = {
            "links": links,
            "count": len(page.items),
            "hasMore": page.has_more,
            "items": page.items,
            "offset": page.offset,
            "totalResults": page.total,
        }
        # Every value of a SuiteQL answer is text (or a list or object of text), which orjson
        # encodes as the json module would -- compactly and several times faster; a page of
        # 1000 rows is most of an answer's cost after the query itself.
        return Response(orjson.dumps(payload), status=200, content_type=COLLECTION)

    # --- records -------------------------------------------------------------------------------

    def _collection(self, request: Request, record_type: str) -> Response:
        if request.method == "POST":
            return self._create(request, record_type)
        if request.method != "GET":
            raise NsError(405, "INVALID_REQUEST", f"{request.method} is not supported here.")
        if request.args.get("q"):
            raise NsError(400, "INVALID_PARAMETER",
                          "The emulator does not support 'q' filters; use SuiteQL.")  # fmt: skip
        limit, offset = self._paging(request)
        check_paging(limit, offset)
        renderer = self._renderer(request)
        if record_type == "term":
            ids = [t.id for t in self.state.base.terms]
        elif record_type == "customer":
            ids = sorted(_id for _id in self._customer_ids())
        else:
            raise NsError(400, "INVALID_REQUEST", "Listing contacts is not supported; use SuiteQL.")
        page = ids[offset : offset + limit]
        body = renderer.collection(
            record_type, page, offset=offset, total=len(ids), has_more=offset + limit < len(ids)
        )
        return _json(body, COLLECTION)

    def _customer_ids(self) -> list[int]:
        return [key[1] for key, _ in self.state.scan_customers()]

    def _create(self, request: Request, record_type: str) -> Response:
        reader = self._reader(request)
        body = self._json_body(request)
        base = self.base_url(request)
        with self.state.lock:
            if record_type == "customer":
                customer = reader.customer(body, None, self.state.allocate_customer_id)
                record_id = self.state.save_customer(customer).id
            elif record_type == "contact":
                contact = reader.contact(body, None, self.state.allocate_contact_id)
                record_id = self.state.save_contact(contact).id
            else:
                raise NsError(405, "INVALID_REQUEST", "Terms cannot be created here.")
        return _no_content(f"{base}{RECORD_PATH}/{record_type}/{record_id}")

    def _record(self, request: Request, record_type: str, key: str) -> Response:
        method = request.method
        renderer = self._renderer(request)
        if record_type == "term":
            if method != "GET":
                raise NsError(405, "INVALID_REQUEST", "Terms are read-only here.")
            term = next((t for t in self.state.base.terms if str(t.id) == key), None)
            if term is None:
                raise nonexistent("term", key)
            return _json(renderer.term(term), SINGULAR)
        if method == "PUT":
            return self._upsert(request, record_type, key)
        if record_type == "customer":
            return self._customer_record(request, key, renderer)
        return self._contact_record(request, key, renderer)

    def _customer_record(self, request: Request, key: str, renderer: Renderer) -> Response:
        method = request.method
        if method == "GET":
            customer = self.state.get_customer(self._customer_id(key))
            if customer is None:
                raise nonexistent("customer", key)
            expand = request.args.get("expandSubResources", "false").lower() == "true"
            fields_arg = request.args.get("fields")
            fields = {f.strip() for f in fields_arg.split(",")} if fields_arg else None
            return _json(renderer.customer(customer, expand=expand, fields=fields), SINGULAR)
        if method == "PATCH":
            reader = self._reader(request)
            body = self._json_body(request)
            with self.state.lock:
                customer_id = self._customer_id(key)
                current = self.state.get_customer(customer_id)
                if current is None:
                    raise nonexistent("customer", key)
                updated = reader.customer(body, current, self.state.allocate_customer_id)
                self.state.save_customer(updated)
            return _no_content(renderer.customer_url(customer_id))
        if method == "DELETE":
            with self.state.lock:
                self.state.delete_customer(self._customer_id(key))
            return _no_content(None)
        raise NsError(405, "INVALID_REQUEST", f"{method} is not supported on a customer.")

    def _contact_record(self, request: Request, key: str, renderer: Renderer) -> Response:
        method = request.method
        if method == "GET":
            contact = self.state.get_contact(self._contact_id(key))
            if contact is None:
                raise nonexistent("contact", key)
            return _json(renderer.contact(contact), SINGULAR)
        if method == "PATCH":
            reader = self._reader(request)
            body = self._json_body(request)
            with self.state.lock:
                contact_id = self._contact_id(key)
                current = self.state.get_contact(contact_id)
                if current is None:
                    raise nonexistent("contact", key)
                self.state.save_contact(reader.contact(body, current, self.state.allocate_contact_id))
            return _no_content(f"{self.base_url(request)}{RECORD_PATH}/contact/{contact_id}")
        if method == "DELETE":
            with self.state.lock:
                self.state.delete_contact(self._contact_id(key))
            return _no_content(None)
        raise NsError(405, "INVALID_REQUEST", f"{method} is not supported on a contact.")

    def _upsert(self, request: Request, record_type: str, key: str) -> Response:
        """``PUT .../<type>/eid:<externalId>``: create if absent, update if present (§1.3)."""
        if not key.startswith("eid:") or len(key) == 4:
            raise NsError(400, "INVALID_REQUEST", "Upsert (PUT) needs an external id in the path: eid:<id>.")
        external_id = key[4:]
        if not re.fullmatch(r"[A-Za-z0-9_\-]+", external_id):
            raise NsError(400, "INVALID_REQUEST", f"Invalid external id {external_id!r}.")
        reader = self._reader(request)
        body = self._json_body(request)
        if isinstance(body, dict) and body.get("externalId") not in (None, external_id):
            raise NsError(400, "USER_ERROR",
                          "The externalId in the body differs from the one in the URL.",
                          path="externalId")  # fmt: skip
        base = self.base_url(request)
        with self.state.lock:
            if record_type == "customer":
                found = self.state.customer_id_by_external_id(external_id)
                current = self.state.get_customer(found) if found is not None else None
                customer = reader.customer(body, current, self.state.allocate_customer_id)
                customer.external_id = external_id
                reader._check_unique(customer)
                record_id = self.state.save_customer(customer).id
            else:
                found = self.state.contact_id_by_external_id(external_id)
                current_contact = self.state.get_contact(found) if found is not None else None
                contact = reader.contact(body, current_contact, self.state.allocate_contact_id)
                contact.external_id = external_id
                record_id = self.state.save_contact(contact).id
        return _no_content(f"{base}{RECORD_PATH}/{record_type}/{record_id}")

    def _address_book(self, request: Request, key: str) -> Response:
        customer = self._get_customer_for_read(request, key)
        expand = request.args.get("expandSubResources", "false").lower() == "true"
        return _json(self._renderer(request).address_book(customer, expand=expand), COLLECTION)

    def _address_line(self, request: Request, key: str, line_id: str) -> Response:
        customer = self._get_customer_for_read(request, key)
        line = next((ln for ln in customer.address_book if str(ln.internal_id) == line_id), None)
        if line is None:
            raise nonexistent("addressBook", line_id)
        return _json(self._renderer(request).address_line(customer, line), SINGULAR)

    def _address(self, request: Request, key: str, line_id: str) -> Response:
        customer = self._get_customer_for_read(request, key)
        line = next((ln for ln in customer.address_book if str(ln.internal_id) == line_id), None)
        if line is None:
            raise nonexistent("addressBook", line_id)
        renderer = self._renderer(request)
        url = f"{renderer.customer_url(customer.id)}/addressBook/{line.internal_id}"
        return _json(renderer.address(url, line.address), SINGULAR)

    def _get_customer_for_read(self, request: Request, key: str) -> Customer:
        if request.method != "GET":
            raise NsError(405, "INVALID_REQUEST", "Sublists are changed through the customer.")
        customer = self.state.get_customer(self._customer_id(key))
        if customer is None:
            raise nonexistent("customer", key)
        return customer

    def _attach(self, request: Request, key: str, action: str, contact_key: str) -> Response:
        """``POST /customer/{id}/!attach/contact/{id}`` with an optional role (§1.8)."""
        if request.method != "POST":
            raise NsError(405, "INVALID_REQUEST", f"Use POST for !{action}.")
        reader = self._reader(request)
        role_id = reader.role(self._json_body(request, optional=True))
        with self.state.lock:
            customer_id = self._customer_id(key)
            contact_id = self._contact_id(contact_key)
            customer = self.state.get_customer(customer_id)
            if customer is None:
                raise nonexistent("customer", key)
            roles = [r for r in customer.contact_roles if r.contact_id != contact_id]
            if action == "attach":
                roles.append(ContactRole(contact_id, role_id))
            elif len(roles) == len(customer.contact_roles):
                raise NsError(400, "USER_ERROR", "The contact is not attached to this record.")
            customer.contact_roles = roles
            self.state.save_customer(customer)
        return _no_content(None)


def _json(body: Any, content_type: str, status: int = 200) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status=status, content_type=content_type)


def _no_content(location: str | None) -> Response:
    response = Response(status=204)
    if location is not None:
        response.headers["Location"] = location
    return response


def _error_response(error: NsError) -> Response:
    response = Response(error.to_json(), status=error.status, content_type=ERROR_CONTENT_TYPE)
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


def _fault_error(status: int) -> NsError:
    if status == 401:
        return invalid_login()
    if status == 429:
        return concurrency_exceeded()
    if status >= 500:
        error = unexpected_error(f"emulator-fault-{status}")
        error.status = status
        return error
    return NsError(status, "USER_ERROR", f"Injected fault {status}.")


def _drop_connection(environ: WSGIEnvironment) -> None:
    """Close the client's connection at once (werkzeug's server exposes the socket)."""
    sock = environ.get("werkzeug.socket")
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
