"""`/utilization`, the reps' App Home and utilization alerts, through /slack/events with signed payloads
against the mock Slack Web API, on both databases: reps, the credit team, unmapped users, filters,
paging, alerts once per crossing, credit increase requests, refusals (explained and audited), and every
surface validated."""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from blocks.utilization import (
    INCREASE_CALLBACK,
    INPUT_ACTION,
    UtilizationAction,
    UtilizationBlock,
    chart_png,
)
from bot.container import Container
from bot.sandbox.signing import (
    SignedSlackClient,
    block_actions_payload,
    button_action,
    view_submission_payload,
)
from bot.sandbox.slack_api import MockSlackServer, SlackUser
from bot.utilization.alerts import alert_after_refresh
from bot.utilization.service import Mark, QueryError, parse_query, parse_rep_overrides, standing
from bot.web import create_app
from storage.db import transaction
from storage.models import (
    AuditEvent,
    CreditApplication,
    MirrorCheckpoint,
    NsCustomer,
    NsCustomerAddress,
    NsCustomerContact,
    NsSalesRep,
    NsTerm,
)
from storage.repositories.utilization import CustomerFigures, utilization_alerts
from storage.types import utcnow
from tests.slack_checks import check_message, check_view

SECRET = "utilization-signing-secret"
REP, REP2, FAY = "U0REPDANA1", "U0REPELI01", "U0REPFAY01"
MANAGER, ANALYST, OUTSIDER = "U0MANAGER1", "U0ANALYST1", "U0OUTSIDE1"
DANA, ELI, FAY_REP = 101, 102, 103


@dataclass
class Desk:
    slack: MockSlackServer
    container: Container
    signed: SignedSlackClient
    views_seen: int = 0

    def command(self, user: str, text: str = "") -> dict[str, Any]:
        r = self.signed.command("/utilization", text, user, response_url=self.slack.response_url())
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        assert body.get("response_type") == "ephemeral"
        check_message(body["blocks"], body.get("text"))
        return body

    def click(self, user: str, action_id: str, value: str, *, ephemeral: bool = True) -> str:
        url = self.slack.response_url()
        payload = block_actions_payload(
            [button_action(action_id, value)],
            user_id=user,
            message={"ts": "1700000000.000100", "type": "message", "text": "x"},
            is_ephemeral=ephemeral,
            response_url=url,
        )
        assert self.signed.interaction(payload).status_code == 200
        return url

    def opened_view(self) -> dict[str, Any]:
        self.views_seen += 1
        call = self.slack.wait_for("views.open", self.views_seen)[self.views_seen - 1]
        view = call.args["view"]
        return view if isinstance(view, dict) else json.loads(view)

    def audit(self, action: str = "authorization.refused") -> list[AuditEvent]:
        with transaction(self.container.sessions) as s:
            return list(
                s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id))
            )


def money(v: str | int | None) -> Decimal | None:
    return None if v is None else Decimal(str(v)).quantize(Decimal("0.01"))


def customer(cid: int, name: str, rep: int | None, limit: Any, balance: Any, **extra: Any) -> NsCustomer:
    return NsCustomer(
        internal_id=cid,
        entity_id=f"CUST-{cid}",
        company_name=name,
        name_normalized=name.lower(),
        currency=extra.pop("currency", "USD"),
        terms_id=1,
        sales_rep_id=rep,
        credit_limit=money(limit),
        balance=money(balance),
        unbilled_orders=money(extra.pop("unbilled", 0)),
        overdue_balance=money(extra.pop("overdue", 0)),
        days_overdue=extra.pop("days", 0),
        credit_hold=extra.pop("hold", "AUTO"),
        is_inactive=extra.pop("inactive", False),
        mirrored_at=utcnow(),
        **extra,
    )


# Dana's book: 25 customers. Named ones test the marks; "Filler NN" ones test paging.
NAMED = [
    customer(1, "Zero Limit Owing Co", DANA, 0, 500),
    customer(2, "Overdrawn Industrial", DANA, 50_000, 60_000, overdue=12_000, days=45),
    customer(3, "Nearly Full Supply", DANA, 10_000, 8_500),
    customer(4, "Held Widgets", DANA, 20_000, 2_000, hold="ON"),
    customer(5, "Unlimited Trading", DANA, None, 99_999),
    customer(6, "Credit Balance Ltd", DANA, 10_000, -1_250),
    customer(7, "Acme Industrial Supply", DANA, 100_000, 40_000, unbilled=45_000, overdue=500, days=3),
    customer(8, "Dormant Old Account", DANA, 1_000, 5_000, inactive=True),
]
FILLER = [customer(100 + i, f"Filler {i:02d} Corp", DANA, 100_000, 1_000 * i) for i in range(1, 19)]
OTHERS = [
    customer(201, "Globex Corporation", ELI, 30_000, 29_000),
    customer(202, "Initech Services", ELI, 10_000, 1_000, overdue=900, days=10),
    customer(301, "Fay Fabrication", FAY_REP, 5_000, 100),
]


def seed(container: Container) -> None:
    with transaction(container.sessions) as s:
        s.add(NsTerm(internal_id=1, name="Net 30", days_until_due=30))
        s.add_all(
            [
                NsSalesRep(internal_id=DANA, name="Dana Rep", email="Dana@Sales.example"),
                NsSalesRep(internal_id=ELI, name="Eli Rep", email="eli@sales.example"),
                NsSalesRep(internal_id=FAY_REP, name="Fay Rep", email="fay.netsuite@sales.example"),
                NsSalesRep(
                    internal_id=999, name="Gone Rep", email="outsider@elsewhere.example", is_inactive=True
                ),
            ]
        )
        s.flush()
        for c in [*NAMED, *FILLER, *OTHERS]:
            s.merge(c)
        s.flush()
        s.add(
            NsCustomerAddress(
                customer_id=7,
                address_id=1,
                default_billing=True,
                line1="100 Congress Ave",
                city="Austin",
                region="TX",
                postal_code="78701",
                country="US",
            )
        )
        s.add(NsCustomerContact(customer_id=7, contact_id=1, name="Pat Payables", email="ap@acme.example"))
        # What a sync leaves in the mirror: the Federal ID's digest only, never the number.
        assert container.cipher is not None
        digest = container.cipher.digest("12-3456789")
        s.execute(update(NsCustomer).where(NsCustomer.internal_id == 7).values(tax_number_digest=digest))
        s.add(MirrorCheckpoint(name="customers", watermark=None, updated_at=utcnow()))


@pytest.fixture
def desk(database_url: str, container_factory: Any) -> Iterator[Desk]:
    users = [
        SlackUser(REP, "Dana", "dana@sales.example"),
        SlackUser(REP2, "Eli", "ELI@sales.example"),
        SlackUser(FAY, "Fay", "fay@slack-only.example"),
        SlackUser(MANAGER, "Mia", "mia@credit.example"),
        SlackUser(ANALYST, "Ana", "ana@credit.example"),
        SlackUser(OUTSIDER, "Oli", "outsider@elsewhere.example"),
    ]
    with MockSlackServer(users=users) as slack:
        container = container_factory(
            database_url=database_url,
            slack_bot_token="xoxb-utilization",
            slack_signing_secret=SECRET,
            slack_api_url=slack.url,
            analysts=ANALYST,
            managers=MANAGER,
            analysts_channel="C0CREDITQ1",
            utilization_rep_overrides=f"{FAY}={FAY_REP}",
            utilization_page_size=10,
        )
        seed(container)
        app = create_app(container)
        with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://credit-desk.test") as http:
            yield Desk(slack, container, SignedSlackClient(http, SECRET))


def names(blocks: list[dict[str, Any]]) -> list[str]:
    """Customer names in reply order (each customer section starts with `*Name*`)."""
    out = []
    for b in blocks:
        text = b.get("text", {}).get("text", "") if b["type"] == "section" else ""
        if "\n`" in text:
            out.append(text.split("*")[1])
    return out


def buttons(blocks: list[dict[str, Any]]) -> dict[str, str]:
    found = {}
    for b in blocks:
        for el in b.get("elements", []) if b["type"] == "actions" else [b.get("accessory") or {}]:
            if el.get("type") == "button":
                found[el["action_id"]] = el["value"]
    return found


# --- the figure and the parser (pure) -------------------------------------------------------------


def fig(limit: Any, balance: Any, *, unbilled: Any = 0, hold: str | None = None) -> CustomerFigures:
    return CustomerFigures(
        1, "C1", "X", "USD", money(limit), money(balance), money(unbilled), None, None, hold, None, 1
    )


def test_the_figure_reads_sensibly_at_the_edges() -> None:
    s = standing(fig(None, 5000), includes_orders=False, near_percent=80)
    assert (s.mark, s.percent, s.available) == (Mark.NO_LIMIT, None, None)
    s = standing(fig(10000, -1250), includes_orders=False, near_percent=80)
    assert (s.mark, s.percent, s.available, s.in_credit) == (
        Mark.WITHIN,
        Decimal("0.0"),
        Decimal("11250.00"),
        True,
    )
    s = standing(fig(0, 1), includes_orders=False, near_percent=80)
    assert (s.mark, s.percent) == (Mark.OVER, None)
    assert standing(fig(0, 0), includes_orders=False, near_percent=80).mark == Mark.WITHIN
    assert standing(fig(1000, 800), includes_orders=False, near_percent=80).mark == Mark.NEAR
    assert standing(fig(1000, 799.99), includes_orders=False, near_percent=80).mark == Mark.WITHIN
    assert standing(fig(1000, 1000), includes_orders=False, near_percent=80).mark == Mark.NEAR
    assert standing(fig(1000, 1000.01), includes_orders=False, near_percent=80).mark == Mark.OVER
    with_orders = standing(fig(1000, 500, unbilled=600), includes_orders=True, near_percent=80)
    assert (with_orders.mark, with_orders.percent) == (Mark.OVER, Decimal("110.0"))
    assert standing(fig(1000, 500, unbilled=600), includes_orders=False, near_percent=80).mark == Mark.WITHIN
    held = standing(fig(1000, 10, hold="ON"), includes_orders=False, near_percent=80)
    assert (held.mark, held.level) == (Mark.ON_HOLD, 0)


def test_query_parsing() -> None:
    q = parse_query("  <@U0REPDANA1|dana>  acme   over 85% overdue ")
    assert (q.rep_user_id, q.name, q.over, q.overdue) == ("U0REPDANA1", "acme", 85, True)
    assert parse_query("over 80").over == 80 and parse_query("over 80").name is None
    assert parse_query("help").help
    for bad, says in [
        ("over", "percentage"),
        ("over lots", "percentage"),
        ("over 5000", "0 to 1000"),
        ("@dana", "Slack's list"),
        ("<@U0AAAAAA1> <@U0BBBBBB2>", "one rep"),
    ]:
        with pytest.raises(QueryError, match=says):
            parse_query(bad)
    assert parse_rep_overrides(" U0ABC=12 , W0DEF=7,") == {"U0ABC": 12, "W0DEF": 7}
    for bad in ("U0ABC", "U0ABC=x", "dana=12", "U0ABC=1,U0ABC=2"):
        with pytest.raises(ValueError):
            parse_rep_overrides(bad)


def test_chart_is_a_valid_png() -> None:
    png = chart_png([12, 3, 2, 1, 4], width=120, height=60)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (120, 60)
    idat_len = struct.unpack(">I", png[33:37])[0]
    raw = zlib.decompress(png[41 : 41 + idat_len])
    assert len(raw) == height * (1 + 3 * width)
    assert bytes((207, 34, 46)) in raw  # the red "over" bar is drawn
    with pytest.raises(ValueError):
        chart_png([1, 2])


# --- reps --------------------------------------------------------------------------------------------


def test_rep_sees_own_customers_by_utilization(desk: Desk) -> None:
    body = desk.command(REP)
    blocks = body["blocks"]
    text = json.dumps(blocks)
    assert "*Your customers*" in text and "25 customers in USD" in text  # the inactive one is left out
    assert "NetSuite figures as of" in text and ":warning:" not in text
    assert "Showing 1-10 of 25" in text and "page 1 of 3" in text
    shown = names(blocks)
    assert shown[:5] == [
        "Zero Limit Owing Co",  # anything on a zero limit is over
        "Overdrawn Industrial",  # 120 %
        "Nearly Full Supply",  # 85 %
        "Acme Industrial Supply",  # 40 %: orders do not count by default
        "Filler 18 Corp",  # 18 %
    ]
    assert "Globex Corporation" not in text and "Dormant" not in text
    assert ":red_circle: Over limit" in text and ":large_yellow_circle: Near limit" in text
    assert "Overdue $12,000.00 (45 days)" in text and "Terms Net 30" in text
    assert "Available -$10,000.00" in text
    # Reps may ask for more where it matters: near, over and held customers carry the button.
    assert UtilizationAction.REQUEST_INCREASE in buttons(blocks)
    assert set(buttons(blocks)) == {UtilizationAction.REQUEST_INCREASE, UtilizationAction.NEXT}


def test_paging_next_and_previous(desk: Desk) -> None:
    first = desk.command(REP)
    seen = names(first["blocks"])
    value = buttons(first["blocks"])[UtilizationAction.NEXT]
    url = desk.click(REP, UtilizationAction.NEXT, value)
    (second,) = desk.slack.wait_for_response(url)
    assert second.body["replace_original"] is True
    check_message(second.body["blocks"], second.body["text"])
    page2 = names(second.body["blocks"])
    assert len(page2) == 10 and not set(page2) & set(seen)
    assert "page 2 of 3" in json.dumps(second.body["blocks"])
    url = desk.click(REP, UtilizationAction.NEXT, buttons(second.body["blocks"])[UtilizationAction.NEXT])
    (third,) = desk.slack.wait_for_response(url)
    last = third.body["blocks"]
    page3 = names(last)
    assert len(page3) == 5 and "Unlimited Trading" in page3 and "Showing 21-25 of 25" in json.dumps(last)
    assert UtilizationAction.NEXT not in buttons(last)  # the last page
    assert len(set(seen) | set(page2) | set(page3)) == 25
    url = desk.click(REP, UtilizationAction.PREVIOUS, buttons(last)[UtilizationAction.PREVIOUS])
    (back,) = desk.slack.wait_for_response(url)
    assert names(back.body["blocks"]) == page2
    # A forged page number is clamped to the last page, a forged value explained.
    url = desk.click(REP, UtilizationAction.NEXT, json.dumps({"q": "", "p": 99}))
    (clamped,) = desk.slack.wait_for_response(url)
    assert names(clamped.body["blocks"]) == page3
    url = desk.click(REP, UtilizationAction.NEXT, "not-json")
    assert "no longer works" in desk.slack.wait_for_response(url)[0].body["text"]


def test_filters(desk: Desk) -> None:
    over = names(desk.command(REP, "over 80")["blocks"])
    assert over == ["Zero Limit Owing Co", "Overdrawn Industrial", "Nearly Full Supply"]
    overdue = names(desk.command(REP, "overdue")["blocks"])
    assert overdue == ["Overdrawn Industrial", "Acme Industrial Supply"]
    assert names(desk.command(REP, "acme")["blocks"]) == ["Acme Industrial Supply"]
    assert names(desk.command(REP, "industrial over 100")["blocks"]) == ["Overdrawn Industrial"]
    # Part of a word in the middle of a name finds it (substring within the rep's book) ...
    assert names(desk.command(REP, "ndustri over 100")["blocks"]) == ["Overdrawn Industrial"]
    # ... and a typo still does (the typo-tolerant search when no substring matches).
    assert names(desk.command(REP, "acme industral")["blocks"]) == ["Acme Industrial Supply"]
    # A zero limit with a balance is over every line; nothing else is at 999 %.
    assert names(desk.command(REP, "over 999")["blocks"]) == ["Zero Limit Owing Co"]
    nothing = desk.command(REP, "acme over 90")
    assert "No customers match" in json.dumps(nothing["blocks"])
    assert "(at or over 90 %)" in json.dumps(nothing["blocks"])
    helped = desk.command(REP, "help")
    assert "/utilization over 80" in helped["text"]
    bad = desk.command(REP, "over")
    assert "with a percentage" in bad["text"]


def test_rep_sees_only_own_customers_and_refusals_are_audited(desk: Desk) -> None:
    body = desk.command(REP, f"<@{REP2}|eli>")
    assert "Reps see only their own customers" in body["text"]
    body = desk.command(REP, "globex")
    assert "No customer of yours matches" in body["text"] and "Globex" not in json.dumps(body["blocks"][1:])
    # Naming oneself is fine.
    assert "Overdrawn Industrial" in names(desk.command(REP, f"<@{REP}|dana> over 100")["blocks"])
    refusals = desk.audit()
    assert [e.actor for e in refusals] == [REP, REP]
    assert refusals[0].after is not None and refusals[0].after["attempted"].startswith("/utilization <@")
    assert refusals[0].after["sales_rep_id"] == DANA
    assert "Reps see only their own" in (refusals[0].detail or "")


def test_email_is_cached_and_case_insensitive(desk: Desk) -> None:
    desk.command(REP)
    desk.command(REP, "over 80")
    desk.command(REP2)
    assert [c.args["user"] for c in desk.slack.calls("users.info")] == [REP, REP2]
    assert names(desk.command(REP2)["blocks"])[:1] == [
        "Globex Corporation"
    ]  # ELI@ in Slack, eli@ in NetSuite


def test_override_maps_a_user_whose_emails_differ(desk: Desk) -> None:
    body = desk.command(FAY)
    assert names(body["blocks"]) == ["Fay Fabrication"]
    assert not [c for c in desk.slack.calls("users.info") if c.args.get("user") == FAY]


# --- the credit team ---------------------------------------------------------------------------------


def test_managers_and_analysts_name_a_rep_or_any_customer(desk: Desk) -> None:
    body = desk.command(MANAGER, f"<@{REP}|dana> over 80")
    assert "Customers of Dana Rep" in json.dumps(body["blocks"])
    assert names(body["blocks"]) == ["Zero Limit Owing Co", "Overdrawn Industrial", "Nearly Full Supply"]
    assert UtilizationAction.REQUEST_INCREASE not in buttons(body["blocks"])  # not their customers
    body = desk.command(ANALYST, "globex")
    assert names(body["blocks"]) == ["Globex Corporation"]
    body = desk.command(ANALYST, f"<@{REP2}|eli> overdue")
    assert names(body["blocks"]) == ["Initech Services"]
    body = desk.command(MANAGER)
    assert "Name a rep or a customer" in body["text"]
    body = desk.command(MANAGER, f"<@{OUTSIDER}|oli>")
    assert "not mapped to a NetSuite sales rep" in body["text"]
    assert desk.audit() == []


def test_unmapped_user_is_told_how_to_get_mapped(desk: Desk) -> None:
    body = desk.command(OUTSIDER)
    text = body["text"]
    assert "outsider@elsewhere.example" in text and "does not match an active sales rep" in text
    assert f"`{OUTSIDER}=<your sales rep internal id>`" in text and "UTILIZATION_REP_OVERRIDES" in text
    (refusal,) = desk.audit()
    assert refusal.actor == OUTSIDER and refusal.entity_type == "slack"


# --- App Home ----------------------------------------------------------------------------------------


def test_app_home_shows_reps_their_riskiest_customers_with_a_chart(desk: Desk) -> None:
    for user_id in (REP, MANAGER):
        event = {"type": "app_home_opened", "user": user_id, "tab": "home", "channel": "D0HOME0001"}
        assert desk.signed.event(event).status_code == 200
    desk.slack.wait_for("views.publish", 2)
    home = desk.slack.home_view(REP)
    check_view({k: v for k, v in home.items() if k in ("type", "blocks")})
    text = json.dumps(home)
    assert "Your customers' credit" in text and "Riskiest first" in text
    shown = names(home["blocks"])
    assert shown[0] == "Held Widgets"  # on credit hold comes first, then by utilization
    assert shown[1:3] == ["Zero Limit Owing Co", "Overdrawn Industrial"]
    assert "15 more" in text
    (image,) = [b for b in home["blocks"] if b["type"] == "image"]
    (uploaded,) = desk.slack.files()
    assert image["slack_file"] == {"id": uploaded.id}
    assert uploaded.content is not None and uploaded.content.startswith(b"\x89PNG")
    assert "2 over it" in image["alt_text"]
    manager_home = json.dumps(desk.slack.home_view(MANAGER))
    assert "Your customers' credit" not in manager_home and "Waiting for an analyst" in manager_home
    # The same chart is not uploaded twice.
    assert desk.signed.event({"type": "app_home_opened", "user": REP, "tab": "home"}).status_code == 200
    desk.slack.wait_for("views.publish", 3)
    assert len(desk.slack.files()) == 1


# --- alerts ------------------------------------------------------------------------------------------


def set_balance(desk: Desk, cid: int, balance: int) -> None:
    with transaction(desk.container.sessions) as s:
        s.execute(
            update(NsCustomer)
            .where(NsCustomer.internal_id == cid)
            .values(balance=money(balance), mirrored_at=utcnow())
        )


def dms(desk: Desk, user: str) -> list[Any]:
    """Direct messages Slack accepted (a refused call is recorded too)."""
    return [c for c in desk.slack.calls("chat.postMessage") if c.args.get("channel") == user and c.ok]


def test_alerts_are_sent_once_per_crossing(desk: Desk) -> None:
    c = desk.container
    start = utcnow() - timedelta(seconds=1)
    first = alert_after_refresh(c, start)
    assert first["baseline"] is True and first["alerts_sent"] == 0  # already over on day one: no alert
    assert not desk.slack.calls("chat.postMessage")
    with transaction(c.sessions) as s:
        levels: dict[int, int] = {
            int(r[0]): int(r[1])
            for r in s.execute(select(utilization_alerts.c.customer_id, utilization_alerts.c.level))
        }
    assert levels == {1: 2, 2: 2, 3: 1, 201: 1}

    since = utcnow()
    set_balance(desk, 101, 85_000)  # Filler 01: 1 % -> 85 %, near
    set_balance(desk, 202, 9_000)  # Initech: 10 % -> 90 %, near (Eli)
    report = alert_after_refresh(c, since)
    assert (report["crossings"], report["alerts_sent"], report["reps_told"]) == (2, 2, 2)
    (dana_dm,) = dms(desk, REP)
    blocks = (
        dana_dm.args["blocks"]
        if isinstance(dana_dm.args["blocks"], list)
        else json.loads(dana_dm.args["blocks"])
    )
    check_message(blocks, dana_dm.args["text"])
    assert "Filler 01 Corp" in dana_dm.args["text"] and "near" in dana_dm.args["text"]
    assert json.loads(buttons(blocks)[UtilizationAction.REQUEST_INCREASE]) == {"c": 101}
    assert len(dms(desk, REP2)) == 1

    # The next refresh changes nothing for them: nobody is told again.
    since = utcnow()
    set_balance(desk, 101, 86_000)
    assert alert_after_refresh(c, since)["alerts_sent"] == 0
    # Over the limit is a new crossing; back within and over again is another.
    for balance, told in [(120_000, 1), (10_000, 0), (130_000, 1)]:
        since = utcnow()
        set_balance(desk, 101, balance)
        assert alert_after_refresh(c, since)["alerts_sent"] == told
    assert len(dms(desk, REP)) == 3
    assert "over its credit limit" in dms(desk, REP)[-1].args["text"]


def test_a_failed_alert_is_retried_not_lost_or_doubled(desk: Desk) -> None:
    c = desk.container
    alert_after_refresh(c, utcnow())  # baseline
    since = utcnow()
    set_balance(desk, 102, 95_000)
    desk.slack.fail_next("chat.postMessage", error="ratelimited", status=429)
    report = alert_after_refresh(c, since)
    assert (report["failed"], report["alerts_sent"]) == (1, 0)
    report = alert_after_refresh(c, utcnow())  # nothing changed, but the alert is still due
    assert report["alerts_sent"] == 1
    assert alert_after_refresh(c, utcnow())["alerts_sent"] == 0
    assert len(dms(desk, REP)) == 1


# --- requesting a credit increase --------------------------------------------------------------------


def limit_values(
    limit: str, reason: str | None = "Big season ahead", fid: str = "12-3456789"
) -> dict[str, Any]:
    def v(x: str | None) -> dict[str, Any]:
        return {INPUT_ACTION: {"type": "plain_text_input", "value": x}}

    return {
        UtilizationBlock.LIMIT: v(limit),
        UtilizationBlock.FEDERAL_ID: v(fid),
        UtilizationBlock.CONTACT_NAME: v("Pat Payables"),
        UtilizationBlock.CONTACT_EMAIL: v("ap@acme.example"),
        UtilizationBlock.REASON: v(reason),
    }


def test_request_credit_increase_enters_the_analysts_queue_once(desk: Desk) -> None:
    desk.click(REP, UtilizationAction.REQUEST_INCREASE, json.dumps({"c": 7}), ephemeral=False)
    view = desk.opened_view()
    check_view(view)
    assert view["callback_id"] == INCREASE_CALLBACK
    inputs = {
        b["block_id"]: b["element"].get("initial_value") for b in view["blocks"] if b["type"] == "input"
    }
    # The mirror has NetSuite's Federal ID only as a digest: nothing of it is shown, and it must be typed.
    (federal_id,) = (b for b in view["blocks"] if b.get("block_id") == UtilizationBlock.FEDERAL_ID)
    assert inputs[UtilizationBlock.FEDERAL_ID] is None and federal_id["optional"] is False
    assert "6789" not in json.dumps(view)
    assert inputs[UtilizationBlock.CONTACT_EMAIL] == "ap@acme.example"
    assert inputs[UtilizationBlock.LIMIT] == "125000.00"  # 25 % above the limit, in thousands
    # Bad input is shown in the modal; nothing is stored.
    bad = desk.signed.interaction(view_submission_payload(view, limit_values("90000"), user_id=REP))
    assert bad.json()["response_action"] == "errors"
    assert "more than the current limit" in bad.json()["errors"][UtilizationBlock.LIMIT]
    bad = desk.signed.interaction(view_submission_payload(view, limit_values("150000", fid="1"), user_id=REP))
    assert UtilizationBlock.FEDERAL_ID in bad.json()["errors"]
    bad = desk.signed.interaction(view_submission_payload(view, limit_values("150000", fid=""), user_id=REP))
    assert UtilizationBlock.FEDERAL_ID in bad.json()["errors"]
    submission = view_submission_payload(view, limit_values("150,000"), user_id=REP)
    done = desk.signed.interaction(submission)
    assert done.json()["response_action"] == "update"
    check_view(done.json()["view"])
    again = desk.signed.interaction(submission)  # a retried delivery or a double click
    assert "already with the credit team" in json.dumps(again.json()["view"])
    with transaction(desk.container.sessions) as s:
        (app,) = s.scalars(select(CreditApplication)).all()
        assert (app.status, app.source, app.requested_credit_limit) == (
            "submitted",
            "credit_increase",
            Decimal("150000.00"),
        )
        assert (app.business_legal_name, app.billing_city, app.applicant_slack_user_id) == (
            "Acme Industrial Supply",
            "Austin",
            REP,
        )
        assert app.applicant_name == "Dana Rep" and app.requested_terms == "Net 30"
        assert desk.container.cipher is not None
        assert desk.container.cipher.reveal(app.federal_id_ciphertext) == "12-3456789"  # as typed
    assert f"#{app.id}" in json.dumps(done.json()["view"])
    (requested,) = desk.audit("utilization.increase_requested")
    assert requested.detail == "Big season ahead" and requested.before is not None
    assert requested.before["credit_limit"] == "100000.00"


def test_only_the_rep_or_the_credit_team_may_request(desk: Desk) -> None:
    desk.click(REP2, UtilizationAction.REQUEST_INCREASE, json.dumps({"c": 7}), ephemeral=False)
    view = desk.opened_view()
    check_view(view)
    assert "Only the customer's sales rep or the credit team" in json.dumps(view)
    (refusal,) = desk.audit()
    assert refusal.actor == REP2
    # A forged submission for someone else's customer is refused the same way.
    forged = {"type": "modal", "callback_id": INCREASE_CALLBACK, "private_metadata": '{"c":7}', "blocks": []}
    r = desk.signed.interaction(view_submission_payload(forged, limit_values("150000"), user_id=REP2))
    assert r.json()["response_action"] == "update" and "Only the customer's" in json.dumps(r.json())
    # An analyst may open it for any customer.
    desk.click(ANALYST, UtilizationAction.REQUEST_INCREASE, json.dumps({"c": 7}), ephemeral=False)
    assert desk.opened_view()["callback_id"] == INCREASE_CALLBACK
    with transaction(desk.container.sessions) as s:
        assert s.scalars(select(CreditApplication)).all() == []
