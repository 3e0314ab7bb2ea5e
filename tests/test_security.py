"""The security review's checks (issue 7, item 5).

1. Secrets never reach the logs: the whole demo story runs in process with every log record captured at DEBUG
   as the product renders it (structlog JSON, the standard library's loggers included), plus intake requests
   with a wrong token; no secret setting and no clear Federal ID may appear there, nor a clear Federal ID in
   what Slack received or in the database (outside the NetSuite mirror's copy of NetSuite's own field).
2. Every Slack listener refuses the wrong person: the listeners Bolt has registered are enumerated, and each
   must have a case here that sends it a signed request as someone without the role and proves the refusal
   (explained, nothing changed, audited). A new listener without a case fails
   `test_every_listener_has_a_case`.
3. The intake API is rate-limited per token (per address for wrong tokens), on fakeredis and real Redis.
"""

from __future__ import annotations

import io
import json
import logging
import secrets
import shutil
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import redis as redis_lib
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from freezegun import freeze_time
from pydantic import SecretStr
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from blocks.ids import ActionId, BlockId, CallbackId
from blocks.utilization import INCREASE_CALLBACK, INPUT_ACTION, CustomerRef, PageRef, UtilizationAction
from blocks.utilization import UtilizationBlock as UB
from bot.applications.schemas import ApplicationIn
from bot.container import Container
from bot.demo import environment as demo_environment
from bot.demo.environment import DemoOptions, DemoStack
from bot.demo.story import DemoStory, transcript_html
from bot.federal_id import digits
from bot.observability import configure_logging
from bot.ratelimit import KEY_PREFIX, FixedWindowRateLimiter, intake_client_key
from bot.sandbox.signing import (
    SignedSlackClient,
    block_actions_payload,
    block_suggestion_payload,
    button_action,
    view_submission_payload,
)
from bot.sandbox.slack_api import MockSlackServer, SlackUser
from bot.settings import Settings, describe
from bot.web import create_app
from storage.db import transaction
from storage.models import (
    AuditEvent,
    Base,
    CreditApplication,
    Decision,
    NetSuiteLink,
    NsCustomer,
    NsSalesRep,
    NsTerm,
    SyncRequest,
)
from storage.redis import make_redis
from tests.conftest import AUTH, INTAKE_TOKEN, TEST_FEDERAL_ID_KEY, make_settings, valid_application

# ============================================================================ captured logs


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Every log record of the test, rendered exactly as production renders it at LOG_LEVEL=DEBUG."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    capped = ("urllib3", "httpx", "httpcore", "alembic")
    saved_capped = {name: logging.getLogger(name).level for name in capped}
    saved_structlog = structlog.get_config()
    configure_logging("DEBUG", "json")
    (handler,) = root.handlers
    assert isinstance(handler, logging.StreamHandler)
    stream = io.StringIO()
    handler.setStream(stream)
    try:
        yield stream
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for name, level in saved_capped.items():
            logging.getLogger(name).setLevel(level)
        structlog.configure(**saved_structlog)


def secret_values(settings: Settings) -> dict[str, str]:
    """Every secret the settings hold, by setting name: each SecretStr (each key of a key list, each line
    of a PEM body) and the passwords inside the database and Redis URLs."""
    found: dict[str, str] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if not isinstance(value, SecretStr):
            continue
        raw = value.get_secret_value()
        if name in ("database_url", "redis_url"):
            password = urlsplit(raw).password
            if password:
                found[f"{name} password"] = password
            continue
        found[name] = raw
        for i, part in enumerate(raw.split(",")):
            if part.strip() and part.strip() != raw:
                found[f"{name} key {i}"] = part.strip()
        for i, line in enumerate(raw.splitlines()):
            if len(line) >= 16 and not line.startswith("-----"):
                found[f"{name} line {i}"] = line
    return found


def leaks(haystack: str, needles: dict[str, str]) -> list[str]:
    return sorted(name for name, value in needles.items() if value and value in haystack)


def closed_port() -> int:
    with socket.socket() as sock:  # bound, never listening: connections are refused
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def ec_private_key_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


APP_TOKEN = f"xapp-1-A0SECURITY-{secrets.token_hex(12)}"
WRONG_TOKEN = f"wrong-{secrets.token_urlsafe(18)}"


def test_a_full_demo_run_logs_no_secret_and_no_clear_federal_id(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    captured_logs: io.StringIO,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # The demo's own settings carry random Slack, intake, Federal ID and NetSuite TBA secrets; add the
    # secrets it does not use, so that a start-up dump of the settings would be caught too.
    original = demo_environment.demo_settings
    private_key = ec_private_key_pem()

    def with_every_secret(workdir: Path, slack_api_url: str, emulator_url: str) -> Settings:
        settings = original(workdir, slack_api_url, emulator_url)
        return settings.model_copy(
            update={
                "slack_app_token": SecretStr(APP_TOKEN),
                "netsuite_oauth2_private_key_pem": SecretStr(private_key),
                "log_level": "DEBUG",
            }
        )

    monkeypatch.setattr(demo_environment, "demo_settings", with_every_secret)
    with DemoStack(DemoOptions(workdir=tmp_path / "demo", customers=60, step_timeout=20.0)) as stack:
        transcript = DemoStory(stack).run()
        assert transcript.completed
        for headers in ({"Authorization": f"Bearer {WRONG_TOKEN}"}, {"Authorization": WRONG_TOKEN}, {}):
            refused = stack.http.post("/api/applications", json=valid_application("nope"), headers=headers)
            assert refused.status_code == 401
        container = stack.container
        settings = stack.settings
        assert container.cipher is not None
        with transaction(container.sessions, readonly=True) as s:
            (application,) = s.scalars(select(CreditApplication)).all()
            ein = container.cipher.reveal(application.federal_id_ciphertext)
            link = s.scalars(select(NetSuiteLink)).one()
        database = dump_database(container)
        slack_seen = json.dumps(
            [call.args for call in stack.slack.calls()]
            + [post.body for post in stack.slack.responses()]
            + [m.blocks or m.text for m in stack.slack.messages()],
            ensure_ascii=False,
        )
        html = transcript_html(transcript)
        assert link.customer_internal_id is not None
        written = stack.emulator.state.get_customer(link.customer_internal_id)

    secrets_by_name = secret_values(settings)
    expected = {
        "slack_bot_token",
        "slack_signing_secret",
        "slack_app_token",
        "intake_api_token",
        "federal_id_key",
        "netsuite_tba_consumer_secret",
        "netsuite_tba_token_secret",
        "netsuite_oauth2_private_key_pem",
    }
    assert expected <= set(secrets_by_name), expected - set(secrets_by_name)
    secrets_by_name["the wrong intake token sent"] = WRONG_TOKEN
    federal_id = {"federal id": ein, "federal id digits": digits(ein)}
    assert len(federal_id["federal id digits"]) == 9

    # The search is not vacuous: the clear value did travel, once, to NetSuite (which needs it).
    assert written is not None and written.vat_reg_number == ein

    logs = captured_logs.getvalue()
    lines = [json.loads(line) for line in logs.splitlines() if line.strip()]
    assert len(lines) > 20 and any(line.get("level") == "debug" for line in lines), "logging was not captured"
    assert any(line.get("event") == "http.request" for line in lines)
    out, err = capfd.readouterr()
    everything_logged = logs + out + err
    assert leaks(everything_logged, secrets_by_name) == []
    assert leaks(everything_logged, federal_id) == []

    # Slack shows the Federal ID masked, never in clear; the demo's HTML transcript likewise.
    assert f"**-***{ein[-4:]}" in slack_seen
    assert leaks(slack_seen, federal_id) == []
    assert leaks(slack_seen, {k: v for k, v in secrets_by_name.items() if k != "slack_bot_token"}) == []
    assert leaks(html, federal_id | secrets_by_name) == []

    # The database holds the Federal ID only as ciphertext: not in clear anywhere, the NetSuite mirror
    # included (a sync records the Tax Reg. Number's digest, never its value).
    clear = {where for where, text in database.items() if leaks(text, federal_id)}
    assert clear == set(), clear
    assert leaks(database["credit_applications.federal_id_ciphertext"], federal_id) == []
    assert leaks("\n".join(database.values()), secrets_by_name) == []


def dump_database(container: Container) -> dict[str, str]:
    """Every column of every table as text, keyed `table.column` (bytes decoded as Latin-1)."""
    dumped: dict[str, list[str]] = {}
    with container.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(table.select()):
                for column, value in row._mapping.items():
                    text = (
                        value.decode("latin-1")
                        if isinstance(value, bytes)
                        else json.dumps(value, default=str)
                    )
                    dumped.setdefault(f"{table.name}.{column}", []).append(text)
    return {k: "\n".join(v) for k, v in dumped.items()}


def test_database_and_redis_passwords_stay_out_of_logs_errors_and_config(
    captured_logs: io.StringIO,
) -> None:
    """PostgreSQL and Redis URLs with passwords, pointed at closed loopback ports: every failure path (start,
    readiness, an intake request that cannot reach the database, `credit-desk config`) keeps them hidden."""
    db_password, redis_password = f"pg-{secrets.token_hex(10)}", f"rd-{secrets.token_hex(10)}"
    settings = make_settings(
        database_url=f"postgresql://credit:{db_password}@127.0.0.1:{closed_port()}/creditdesk",
        redis_url=f"redis://:{redis_password}@127.0.0.1:{closed_port()}/0",
        intake_api_token=INTAKE_TOKEN,
        federal_id_key=TEST_FEDERAL_ID_KEY,
    )
    needles = {"database password": db_password, "redis password": redis_password}
    assert needles == {
        "database password": secret_values(settings)["database_url password"],
        "redis password": secret_values(settings)["redis_url password"],
    }
    from bot.container import build_container

    container = build_container(settings)  # PostgreSQL: no automatic migration, so nothing connects yet
    try:
        client = create_app(container).test_client()
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert "unreachable" in ready.get_data(as_text=True)
        failed = client.post("/api/applications", json=valid_application(), headers=AUTH)
        assert failed.status_code == 500
        with pytest.raises(OperationalError) as refused:
            container.engine.connect()
        shown = [
            ready.get_data(as_text=True),
            failed.get_data(as_text=True),
            str(refused.value),
            repr(container.engine),
            repr(settings),
            json.dumps(describe(settings)),
        ]
    finally:
        container.close()
    logs = captured_logs.getvalue()
    assert (
        "http.unhandled_error" in logs and "OperationalError" in logs
    )  # the failure was logged, with its trace
    assert "ratelimit.unavailable" in logs  # Redis was tried too
    assert leaks(logs + "\n".join(shown), needles) == []


# ============================================================================ authorization

SECRET = "security-signing-secret"
ANALYST, MANAGER, ADMIN, OUTSIDER = "U0SECANA01", "U0SECMGR01", "U0SECADM01", "U0SECOUT01"
REP, OTHER_REP = "U0SECREP01", "U0SECREP02"
REP_ID, OTHER_REP_ID, OTHER_CUSTOMER, OWN_CUSTOMER = 501, 502, 9001, 9002
OWN_CUSTOMER_EIN = "98-7654321"

# Listeners no person triggers: Slack itself sends these lifecycle events (signed like the rest).
NOT_PERSONAL = {("event", "app_uninstalled"), ("event", "tokens_revoked")}


@dataclass
class Fixtures:
    submitted: int
    awaiting: int
    approved: int
    sync_id: int


@dataclass
class Desk:
    slack: MockSlackServer
    container: Container
    signed: SignedSlackClient
    ids: Fixtures
    views_seen: int = 0
    published: int = 0

    def click(self, user: str, action_id: str, value: str) -> str:
        """A button click in a message; returns the response_url the answer goes to."""
        url = self.slack.response_url()
        payload = block_actions_payload(
            [button_action(action_id, value)],
            user_id=user,
            message={"ts": "1700000000.000100", "type": "message", "text": "x"},
            response_url=url,
        )
        assert self.signed.interaction(payload).status_code == 200
        return url

    def told(self, url: str) -> str:
        (post,) = self.slack.wait_for_response(url, timeout=10.0)
        return str(post.body.get("text", ""))

    def submit(self, user: str, view: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
        r = self.signed.interaction(view_submission_payload(view, values, user_id=user))
        assert r.status_code == 200, r.text
        assert r.text, "a refused submission must answer with an explanation, not close the modal"
        body: dict[str, Any] = r.json()
        return body

    def next_view(self) -> dict[str, Any]:
        self.views_seen += 1
        call = self.slack.wait_for("views.open", self.views_seen, timeout=10.0)[self.views_seen - 1]
        view = call.args["view"]
        return view if isinstance(view, dict) else json.loads(view)

    def command(self, command: str, text: str, user: str) -> str:
        r = self.signed.command(command, text, user, response_url=self.slack.response_url())
        assert r.status_code == 200, r.text
        return json.dumps(r.json())

    def state(self) -> dict[str, Any]:
        """What a refused request must leave exactly as it was."""
        with transaction(self.container.sessions, readonly=True) as s:
            return {
                "applications": sorted(
                    (a.id, a.status, str(a.approved_credit_limit))
                    for a in s.scalars(select(CreditApplication))
                ),
                "decisions": s.scalar(select(func.count()).select_from(Decision)),
                "links": sorted(
                    (x.application_id, x.mode, x.customer_internal_id)
                    for x in s.scalars(select(NetSuiteLink))
                ),
                "syncs": sorted(
                    (x.id, x.status, str(x.next_attempt_at)) for x in s.scalars(select(SyncRequest))
                ),
            }

    def refusals(self) -> list[AuditEvent]:
        with transaction(self.container.sessions, readonly=True) as s:
            return list(
                s.scalars(
                    select(AuditEvent)
                    .where(AuditEvent.action == "authorization.refused")
                    .order_by(AuditEvent.id)
                )
            )


def _submit_application(container: Container, reference: str, limit: str) -> int:
    assert container.applications is not None
    body = valid_application(reference, requested_credit_limit={"amount": limit, "currency": "USD"})
    result = container.applications.submit(ApplicationIn.model_validate(body), source="api", actor="test")
    return result.application.id


@pytest.fixture
def desk(
    tmp_path: Path, sqlite_template: Path, container_factory: Callable[..., Container]
) -> Iterator[Desk]:
    users = [
        SlackUser(ANALYST, "Ana", "ana@credit.example"),
        SlackUser(MANAGER, "Mia", "mia@credit.example"),
        SlackUser(ADMIN, "Adi", "adi@credit.example"),
        SlackUser(OUTSIDER, "Oli", "oli@elsewhere.example"),
        SlackUser(REP, "Dana", "dana@sales.example"),
        SlackUser(OTHER_REP, "Eli", "eli@sales.example"),
    ]
    with MockSlackServer(users=users) as slack:
        container = container_factory(
            database_url=f"sqlite:///{shutil.copy(sqlite_template, tmp_path / 'security.db')}",
            intake_api_token=INTAKE_TOKEN,
            slack_bot_token="xoxb-security",
            slack_signing_secret=SECRET,
            slack_api_url=slack.url,
            analysts=ANALYST,
            managers=MANAGER,
            admins=ADMIN,
            analysts_channel="C0CREDITQ1",
            analyst_approval_limit="50000",
            utilization_chart=False,
        )
        assert container.decisions is not None and container.roles is not None and container.sync is not None
        assert container.cipher is not None
        with transaction(container.sessions) as s:
            s.add(NsTerm(internal_id=1, name="Net 30", days_until_due=30))
            s.add_all(
                [
                    NsSalesRep(internal_id=REP_ID, name="Dana Rep", email="dana@sales.example"),
                    NsSalesRep(internal_id=OTHER_REP_ID, name="Eli Rep", email="eli@sales.example"),
                ]
            )
            s.flush()
            s.add(
                NsCustomer(
                    internal_id=OTHER_CUSTOMER,
                    entity_id="CUST-9001",
                    company_name="Globex Corporation",
                    name_normalized="globex corporation",
                    currency="USD",
                    terms_id=1,
                    sales_rep_id=OTHER_REP_ID,
                    is_inactive=False,
                )
            )
            s.add(
                NsCustomer(
                    internal_id=OWN_CUSTOMER,
                    entity_id="CUST-9002",
                    company_name="Initech Services",
                    name_normalized="initech services",
                    tax_number_digest=container.cipher.digest(OWN_CUSTOMER_EIN),
                    currency="USD",
                    terms_id=1,
                    sales_rep_id=REP_ID,
                    is_inactive=False,
                )
            )
        analyst = container.roles.actor(ANALYST)
        submitted = _submit_application(container, "sec-submitted", "20000.00")
        awaiting = _submit_application(container, "sec-awaiting", "90000.00")
        container.decisions.approve(awaiting, analyst, terms="Net 30", credit_limit="90000", note=None)
        approved = _submit_application(container, "sec-approved", "20000.00")
        container.decisions.approve(approved, analyst, terms="Net 30", credit_limit="20000", note=None)
        container.sync.link(approved, analyst, "new", None)
        comparison = container.sync.comparison(approved)
        chosen = comparison.default_fields
        sync = container.sync.request(approved, analyst, chosen, comparison.seen_values(chosen), now=False)
        app = create_app(container)
        with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://credit-desk.test") as http:
            yield Desk(
                slack,
                container,
                SignedSlackClient(http, SECRET),
                Fixtures(submitted, awaiting, approved, sync.id),
            )


def ref(application_id: int) -> str:
    return json.dumps({"a": application_id}, separators=(",", ":"))


def modal(callback_id: str, private_metadata: str) -> dict[str, Any]:
    """A modal as a forger would send it back: the right callback id and metadata, any values."""
    return {"type": "modal", "callback_id": callback_id, "private_metadata": private_metadata, "blocks": []}


def notice_text(answer: dict[str, Any]) -> str:
    assert answer.get("response_action") == "update", answer
    return json.dumps(answer["view"])


# Each case: (the users it is tried as, what to do, the refusal it must see, whether a refusal is audited).
# `do` performs the forged request and returns the explanation the person was shown.
Case = tuple[tuple[str, ...], Callable[[Desk, str], str], str, bool]


def _button(action_id: str, value: Callable[[Desk], str]) -> Callable[[Desk, str], str]:
    def do(desk: Desk, user: str) -> str:
        return desk.told(desk.click(user, action_id, value(desk)))

    return do


def _no_modal_button(action_id: str, value: Callable[[Desk], str]) -> Callable[[Desk, str], str]:
    def do(desk: Desk, user: str) -> str:
        told = _button(action_id, value)(desk, user)
        assert not desk.slack.calls("views.open"), "a refused click must not open a modal"
        return told

    return do


def _approve_submit(desk: Desk, user: str) -> str:
    view = modal(CallbackId.APPROVE, json.dumps({"a": desk.ids.submitted, "m": False}))
    values: dict[str, Any] = {
        BlockId.TERMS: {ActionId.TERMS: {"type": "static_select", "selected_option": {"value": "Net 30"}}},
        BlockId.CREDIT_LIMIT: {ActionId.CREDIT_LIMIT: {"type": "plain_text_input", "value": "20000"}},
        BlockId.NOTE: {ActionId.NOTE: {"type": "plain_text_input", "value": None}},
    }
    return notice_text(desk.submit(user, view, values))


def _reject_submit(desk: Desk, user: str) -> str:
    view = modal(CallbackId.REJECT, json.dumps({"a": desk.ids.submitted, "m": False}))
    values: dict[str, Any] = {
        BlockId.REASON: {ActionId.REASON: {"type": "plain_text_input", "value": "not for you"}}
    }
    return notice_text(desk.submit(user, view, values))


def _link_submit(desk: Desk, user: str) -> str:
    view = modal(CallbackId.LINK, ref(desk.ids.approved))
    values: dict[str, Any] = {
        BlockId.LINK_MODE: {
            ActionId.LINK_MODE: {"type": "radio_buttons", "selected_option": {"value": "existing"}}
        },
        BlockId.LINK_CUSTOMER: {
            ActionId.LINK_CUSTOMER: {
                "type": "external_select",
                "selected_option": {"value": str(OTHER_CUSTOMER)},
            }
        },
    }
    return notice_text(desk.submit(user, view, values))


def _pick_submit(desk: Desk, user: str) -> str:
    assert desk.container.sync is not None
    comparison = desk.container.sync.comparison(desk.ids.approved)
    fields = [f.value for f in comparison.default_fields]
    meta = json.dumps({"a": desk.ids.approved, "seen": comparison.seen_values(fields)})
    values: dict[str, Any] = {
        BlockId.SYNC_FIELDS: {
            ActionId.SYNC_FIELDS: {
                "type": "checkboxes",
                "selected_options": [{"value": f} for f in fields],
            }
        },
    }
    return notice_text(desk.submit(user, modal(CallbackId.PICK, meta), values))


def customer_options(desk: Desk, user: str, typed: str = "globex") -> dict[str, Any]:
    """The answer to an options load of the link modal's customer search, typed by `user`."""
    view = {"id": "V0SECLINK1", **modal(CallbackId.LINK, ref(desk.ids.approved))}
    payload = block_suggestion_payload(
        ActionId.LINK_CUSTOMER, typed, block_id=BlockId.LINK_CUSTOMER, user_id=user, view=view
    )
    r = desk.signed.interaction(payload)
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


def offered_customers(answer: dict[str, Any]) -> list[str]:
    options = [
        *answer.get("options", []),
        *(o for g in answer.get("option_groups", []) for o in g["options"]),
    ]
    return [o["value"] for o in options if o["value"].isdigit()]


def _customer_options(desk: Desk, user: str) -> str:
    answer = customer_options(desk, user)
    assert offered_customers(answer) == [], f"customers were offered to {user}: {answer}"
    return json.dumps(answer)


def _credit_command(desk: Desk, user: str) -> str:
    pending = desk.command("/credit", "pending", user)
    shown = desk.command("/credit", f"show {desk.ids.submitted}", user)
    for answer in (pending, shown):
        assert "Acme Industrial" not in answer, "application details were shown to someone off the team"
    return pending + shown


def home_of(desk: Desk, user: str) -> str:
    """The Home tab published for `user` after they open it."""
    event = {
        "type": "app_home_opened",
        "user": user,
        "tab": "home",
        "channel": "D0HOME0001",
        "event_ts": "1.2",
    }
    assert desk.signed.event(event).status_code == 200
    desk.published += 1
    desk.slack.wait_for("views.publish", desk.published, timeout=10.0)
    return json.dumps(desk.slack.home_view(user))


def _home(desk: Desk, user: str) -> str:
    home = home_of(desk, user)
    assert "Acme Industrial" not in home and "Waiting for" not in home
    return home


def _utilization_command(desk: Desk, user: str) -> str:
    text = f"<@{OTHER_REP}|eli>" if user == REP else ""
    return desk.command("/utilization", text, user)


def _page(action: str) -> Callable[[Desk, str], str]:
    def do(desk: Desk, user: str) -> str:
        query = f"<@{OTHER_REP}|eli>" if user == REP else ""
        url = desk.click(user, action, PageRef(q=query, p=1).dump())
        (post,) = desk.slack.wait_for_response(url, timeout=10.0)
        text = json.dumps(post.body)
        assert "Globex" not in text
        return text

    return do


def _request_increase(desk: Desk, user: str) -> str:
    desk.click(user, UtilizationAction.REQUEST_INCREASE, CustomerRef(c=OTHER_CUSTOMER).dump())
    view = desk.next_view()
    assert view.get("callback_id") != INCREASE_CALLBACK, "the request form was opened"
    return json.dumps(view)


def _increase_submit(desk: Desk, user: str) -> str:
    values = {
        block: {INPUT_ACTION: {"type": "plain_text_input", "value": value}}
        for block, value in (
            (UB.LIMIT, "90000"),
            (UB.FEDERAL_ID, "12-3456789"),
            (UB.CONTACT_NAME, "Pat Payables"),
            (UB.CONTACT_EMAIL, "ap@globex.example"),
            (UB.REASON, "please"),
        )
    }
    return notice_text(
        desk.submit(user, modal(INCREASE_CALLBACK, CustomerRef(c=OTHER_CUSTOMER).dump()), values)
    )


NOT_ANALYST = "Only a credit analyst or manager"
SYNC_REFUSAL = "Only credit analysts and managers can work with NetSuite syncs"
UNMAPPED = "don't know which customers are yours"

CASES: dict[tuple[str, str], Case] = {
    ("action", ActionId.APPROVE): (
        (OUTSIDER, ADMIN),
        _no_modal_button(ActionId.APPROVE, lambda d: ref(d.ids.submitted)),
        NOT_ANALYST,
        True,
    ),
    ("action", ActionId.REJECT): (
        (OUTSIDER, ADMIN),
        _no_modal_button(ActionId.REJECT, lambda d: ref(d.ids.submitted)),
        NOT_ANALYST,
        True,
    ),
    ("action", ActionId.MANAGER_REJECT): (
        (OUTSIDER, ANALYST),
        _no_modal_button(ActionId.MANAGER_REJECT, lambda d: ref(d.ids.awaiting)),
        "Only a credit manager",
        True,
    ),
    ("action", ActionId.MANAGER_CONFIRM): (
        (OUTSIDER, ANALYST),
        _button(ActionId.MANAGER_CONFIRM, lambda d: ref(d.ids.awaiting)),
        "Only a credit manager",
        True,
    ),
    ("action", ActionId.DETAILS): (
        (OUTSIDER,),
        _no_modal_button(ActionId.DETAILS, lambda d: ref(d.ids.submitted)),
        "Only the credit team",
        True,
    ),
    ("view_submission", CallbackId.APPROVE): ((OUTSIDER, ADMIN), _approve_submit, NOT_ANALYST, True),
    ("view_submission", CallbackId.REJECT): ((OUTSIDER, ADMIN), _reject_submit, NOT_ANALYST, True),
    ("command", "/credit"): ((OUTSIDER,), _credit_command, "for the credit team", True),
    ("event", "app_home_opened"): ((OUTSIDER,), _home, "no Credit Desk role", False),
    ("action", ActionId.LINK): (
        (OUTSIDER, ADMIN),
        _no_modal_button(ActionId.LINK, lambda d: ref(d.ids.approved)),
        NOT_ANALYST,
        True,
    ),
    ("options", ActionId.LINK_CUSTOMER): ((OUTSIDER, ADMIN), _customer_options, NOT_ANALYST, True),
    ("view_submission", CallbackId.LINK): ((OUTSIDER, ADMIN), _link_submit, SYNC_REFUSAL, True),
    ("view_submission", CallbackId.PICK): ((OUTSIDER, ADMIN), _pick_submit, SYNC_REFUSAL, True),
    ("action", ActionId.SYNC_REVIEW): (
        (OUTSIDER, ADMIN),
        _no_modal_button(ActionId.SYNC_REVIEW, lambda d: ref(d.ids.approved)),
        NOT_ANALYST,
        True,
    ),
    ("action", ActionId.SYNC_RUN_NOW): (
        (OUTSIDER, ADMIN),
        _button(ActionId.SYNC_RUN_NOW, lambda d: json.dumps({"s": d.ids.sync_id})),
        SYNC_REFUSAL,
        True,
    ),
    ("action", ActionId.SYNC_CANCEL): (
        (OUTSIDER, ADMIN),
        _button(ActionId.SYNC_CANCEL, lambda d: json.dumps({"s": d.ids.sync_id})),
        SYNC_REFUSAL,
        True,
    ),
    ("action", ActionId.SYNC_RETRY): (
        (OUTSIDER, ADMIN),
        _button(ActionId.SYNC_RETRY, lambda d: json.dumps({"s": d.ids.sync_id})),
        SYNC_REFUSAL,
        True,
    ),
    # Reps are not a configured role: the outsider is nobody's rep, and a rep asking about another rep's
    # book is the wrong role for that (only the credit team may name a rep).
    ("command", "/utilization"): ((OUTSIDER, REP), _utilization_command, "", True),
    ("action", UtilizationAction.NEXT): ((OUTSIDER, REP), _page(UtilizationAction.NEXT), "", True),
    ("action", UtilizationAction.PREVIOUS): ((OUTSIDER, REP), _page(UtilizationAction.PREVIOUS), "", True),
    ("action", UtilizationAction.REQUEST_INCREASE): (
        (OUTSIDER, REP),
        _request_increase,
        "Only the customer's sales rep or the credit team",
        True,
    ),
    ("view_submission", INCREASE_CALLBACK): (
        (OUTSIDER, REP),
        _increase_submit,
        "Only the customer's sales rep or the credit team",
        True,
    ),
}
UTILIZATION_REFUSALS = {OUTSIDER: UNMAPPED, REP: "Reps see only their own customers"}


def registered_listeners(container: Container) -> set[tuple[str, str]]:
    """(kind, what it listens to) for every listener Bolt holds, read from its matchers.

    Bolt's built-in matchers close over their constraint (`action("id")` over `constraints`, and so on);
    if a Bolt upgrade changes that, this fails loudly instead of finding nothing.
    """
    assert container.bolt is not None
    found: set[tuple[str, str]] = set()
    for listener in container.bolt._listeners:
        matcher = listener.matchers[0]
        fn = matcher.func  # type: ignore[attr-defined]
        kind = fn.__qualname__.split(".", 1)[0]
        cells = dict(
            zip(fn.__code__.co_freevars, (c.cell_contents for c in fn.__closure__ or ()), strict=True)
        )
        constraint = [
            v for k, v in cells.items() if k in ("constraints", "callback_id", "command", "event_type")
        ]
        assert len(constraint) == 1 and isinstance(constraint[0], str), (kind, cells)
        found.add((kind, str(constraint[0])))
    return found


def test_every_listener_has_a_case(desk: Desk) -> None:
    listeners = registered_listeners(desk.container)
    assert len(listeners) >= 20  # every surface is wired in this container
    covered = set(CASES) | NOT_PERSONAL
    assert listeners - covered == set(), "listeners without an authorization case in tests/test_security.py"
    assert covered - listeners == set(), "cases for listeners that no longer exist"


@pytest.mark.parametrize("key", sorted(CASES), ids=lambda k: f"{k[0]}:{k[1]}")
def test_each_listener_refuses_the_wrong_person(desk: Desk, key: tuple[str, str]) -> None:
    users, do, expected, audited = CASES[key]
    for user in users:
        before, refusals = desk.state(), len(desk.refusals())
        told = do(desk, user)
        want = expected or UTILIZATION_REFUSALS[user]
        assert want in told, f"{user} was not told {want!r}: {told[:500]}"
        assert desk.state() == before, f"{key} changed state for {user}"
        if audited:
            new = desk.refusals()[refusals:]
            assert new and {e.actor for e in new} == {user}, f"{key}: refusal of {user} not audited"


def test_the_right_people_are_let_through(desk: Desk) -> None:
    """The refusals above are not everyone being refused: the same requests work for the right role."""
    assert offered_customers(customer_options(desk, ANALYST)) == [str(OTHER_CUSTOMER)]
    url = desk.click(MANAGER, ActionId.MANAGER_REJECT, ref(desk.ids.awaiting))
    assert desk.next_view()["callback_id"] == CallbackId.REJECT
    assert not desk.slack.responses(url)
    assert "Waiting for an analyst" in home_of(desk, ANALYST)
    assert "Customers of Eli Rep" in desk.command("/utilization", f"<@{OTHER_REP}|eli>", MANAGER)


def test_the_credit_increase_form_does_not_show_the_federal_id_in_clear(desk: Desk) -> None:
    desk.click(REP, UtilizationAction.REQUEST_INCREASE, CustomerRef(c=OWN_CUSTOMER).dump())
    view = desk.next_view()
    assert view.get("callback_id") == INCREASE_CALLBACK  # the rep's own customer: the form opens
    shown = json.dumps(view)
    assert OWN_CUSTOMER_EIN not in shown and digits(OWN_CUSTOMER_EIN) not in shown


# ============================================================================ the intake rate limit


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_limiter_counts_per_key_within_each_window(redis_url: str | None) -> None:
    client = make_redis(redis_url)
    try:
        clock = Clock(1_800_000_010.0)  # 10 s into a 60 s window (windows are aligned on the epoch)
        limiter = FixedWindowRateLimiter(client, limit=3, window_seconds=60, clock=clock)
        assert [limiter.hit("a").remaining for _ in range(3)] == [2, 1, 0]
        refused = limiter.hit("a")
        assert (refused.allowed, refused.remaining, refused.retry_after) == (False, 0, 50)
        assert limiter.hit("b").allowed  # another client has its own count
        clock.now += 49.5
        assert limiter.hit("a").retry_after == 1  # never 0 while refused
        clock.now += 0.5  # the next window
        assert limiter.hit("a") == limiter.hit("a").__class__(True, 3, 2, 0)
        keys = [k.decode() for k in client.scan_iter(f"{KEY_PREFIX}:*")]
        assert len(keys) == 3  # a:window1, b:window1, a:window2
        assert all(0 < client.ttl(k) <= 61 for k in keys)  # counters clean themselves up
    finally:
        client.close()


def test_limiter_off_bad_arguments_and_redis_away() -> None:
    client = make_redis(None)
    off = FixedWindowRateLimiter(client, limit=0, window_seconds=60)
    assert all(off.hit("a").allowed for _ in range(500))
    assert list(client.scan_iter(f"{KEY_PREFIX}:*")) == []
    for limit, window in ((-1, 60), (1, 0)):
        with pytest.raises(ValueError):
            FixedWindowRateLimiter(client, limit=limit, window_seconds=window)
    with pytest.raises(ValueError, match="name"):
        FixedWindowRateLimiter(client, limit=1, window_seconds=1, name="a:b")
    with pytest.raises(ValueError, match="empty"):
        FixedWindowRateLimiter(client, limit=1, window_seconds=1).hit("")
    # Redis unreachable: requests go through (the service matters more than the brake), and it is logged.
    away = redis_lib.Redis(
        host="127.0.0.1", port=closed_port(), socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )
    limiter = FixedWindowRateLimiter(away, limit=1, window_seconds=60)
    assert limiter.hit("a").allowed and limiter.hit("a").allowed
    away.close()


def test_intake_client_key_never_holds_the_token() -> None:
    token = "s3cret-intake-token-value"
    key = intake_client_key(True, token, "10.0.0.1")
    assert key.startswith("token:") and token not in key and "10.0.0.1" not in key
    assert key == intake_client_key(True, token, "10.0.0.2")  # one count per token, wherever it comes from
    assert intake_client_key(False, token, "10.0.0.1") == "ip:10.0.0.1"
    assert intake_client_key(False, "", None) == "ip:unknown"


def test_intake_endpoint_answers_429_with_retry_after(
    redis_url: str | None, tmp_path: Path, container_factory: Callable[..., Container]
) -> None:
    container = container_factory(
        database_url=f"sqlite:///{tmp_path / 'limit.db'}",
        redis_url=redis_url,
        intake_api_token=INTAKE_TOKEN,
        intake_rate_limit=3,
        intake_rate_window_seconds=60,
    )
    client = create_app(container).test_client()
    guesser = {"REMOTE_ADDR": "10.9.9.9"}
    wrong = {"Authorization": "Bearer not-the-token"}
    with freeze_time("2026-03-02 10:00:10") as frozen:
        # Guessing tokens: three wrong answers, then the address is held off.
        assert [
            client.post("/api/applications", json={}, headers=wrong, environ_base=guesser).status_code
            for _ in range(3)
        ] == [401, 401, 401]
        held = client.post("/api/applications", json={}, headers=wrong, environ_base=guesser)
        assert held.status_code == 429
        assert held.headers["Retry-After"] == "50"
        assert held.get_json() == {
            "error": "rate_limited",
            "message": "more than 3 requests in 60 s; try again in 50 s",
            "retry_after": 50,
        }
        other_address = {"REMOTE_ADDR": "10.9.9.10"}
        assert client.get("/api/applications/1", headers=wrong, environ_base=other_address).status_code == 401
        # The real client counts against its token, not the guesser's address.
        statuses = [
            client.post(
                "/api/applications", json=valid_application(f"lim-{i}"), headers=AUTH, environ_base=guesser
            ).status_code
            for i in range(3)
        ]
        assert statuses == [201, 201, 201]
        over = client.post("/api/applications", json=valid_application("lim-over"), headers=AUTH)
        assert over.status_code == 429 and over.headers["Retry-After"] == "50"
        assert client.get("/api/applications/1", headers=AUTH).status_code == 429  # reads count too
        with transaction(container.sessions, readonly=True) as s:
            refs = sorted(s.scalars(select(CreditApplication.reference)))
        assert refs == ["lim-0", "lim-1", "lim-2"]  # the refused request stored nothing
        frozen.move_to("2026-03-02 10:01:00")  # the next window
        again = client.post("/api/applications", json=valid_application("lim-over"), headers=AUTH)
        assert again.status_code == 201
        # Read while the clock is still frozen: fakeredis expires keys by the clock it is given.
        keys = " ".join(k.decode() for k in container.redis.scan_iter(f"{KEY_PREFIX}:*"))
    assert "ip:10.9.9.9" in keys and "token:" in keys and INTAKE_TOKEN not in keys


def test_the_limit_is_a_setting_that_can_be_turned_off(
    tmp_path: Path, container_factory: Callable[..., Container]
) -> None:
    assert Settings.model_fields["intake_rate_limit"].default > 0  # on by default
    container = container_factory(
        database_url=f"sqlite:///{tmp_path / 'off.db'}", intake_api_token=INTAKE_TOKEN, intake_rate_limit=0
    )
    client = create_app(container).test_client()
    wrong = {"Authorization": "Bearer not-the-token"}
    assert {client.get("/api/applications/1", headers=wrong).status_code for _ in range(400)} == {401}
    with pytest.raises(ValueError):
        make_settings(intake_rate_window_seconds=0)
