"""Link to NetSuite Record and sync, end to end through /slack/events against the mock Slack Web API and the
NetSuite emulator, on both databases: link, search, pick, sync, the result in the thread, and the failures."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from rq import SimpleWorker
from sqlalchemy import select

from blocks.ids import ActionId, BlockId, CallbackId
from bot import jobs
from bot.container import Container
from bot.mirror.ingest import IngestParts, run_ingest
from bot.sandbox.signing import (
    SignedSlackClient,
    block_actions_payload,
    block_suggestion_payload,
    button_action,
    new_trigger_id,
    view_submission_payload,
)
from bot.sandbox.slack_api import MockSlackServer, SlackUser
from bot.web import create_app
from netsuite.emulator import EmulatorServer
from storage.db import transaction
from storage.models import NsCustomer, SlackMessage, SyncRequest
from tests.conftest import AUTH, INTAKE_TOKEN, valid_application
from tests.harness import link_values
from tests.slack_checks import check_message, check_view

SECRET = "link-signing-secret"
ANALYST, OUTSIDER = "U0ANALYST1", "U0OUTSIDE1"
CHANNEL = "C0CREDITQ1"


@pytest.fixture(scope="module")
def ns() -> Iterator[EmulatorServer]:
    with EmulatorServer(seed=41, customers=60) as server:
        yield server


@dataclass
class Desk:
    slack: MockSlackServer
    container: Container
    signed: SignedSlackClient
    http: httpx.Client
    ns: EmulatorServer
    views_seen: int = 0

    def run_jobs(self) -> None:
        jobs.bind_container(self.container)
        queues = [jobs.queue(self.container.redis, name) for name in jobs.QUEUE_NAMES]
        SimpleWorker(queues, connection=self.container.redis).work(burst=True)

    def approved(self, reference: str, **body: Any) -> int:
        r = self.http.post("/api/applications", json=valid_application(reference, **body), headers=AUTH)
        assert r.status_code == 201, r.text
        app_id = int(r.json()["id"])
        self.run_jobs()
        assert self.container.decisions is not None and self.container.roles is not None
        decided = self.container.decisions.approve(
            app_id, self.container.roles.actor(ANALYST), terms="Net 30", credit_limit="40000"
        )
        assert self.container.notifier is not None
        # Delivered as the deciding process would: an undelivered decision holds back later thread lines.
        assert self.container.notifier.deliver(app_id, decided.owed) == 1
        return app_id

    def thread(self, app_id: int) -> tuple[str, str]:
        with transaction(self.container.sessions, readonly=True) as s:
            m = s.scalar(select(SlackMessage).where(SlackMessage.application_id == app_id))
            assert m is not None and m.ts is not None
            return m.channel, m.ts

    def click(self, user: str, action_id: str, value: str, *, app_id: int | None = None) -> httpx.Response:
        kwargs: dict[str, Any] = {"trigger_id": new_trigger_id(), "response_url": self.slack.response_url()}
        if app_id is not None:
            channel, ts = self.thread(app_id)
            kwargs |= {"channel_id": channel, "message": {"ts": ts, "type": "message", "text": "x"}}
        else:
            kwargs["view"] = {"id": "V0HOMEVIEW", "type": "home", "blocks": [], "state": {"values": {}}}
        return self.signed.interaction(
            block_actions_payload([button_action(action_id, value)], user_id=user, **kwargs)
        )

    def opened_view(self) -> dict[str, Any]:
        self.views_seen += 1
        call = self.slack.wait_for("views.open", self.views_seen)[self.views_seen - 1]
        view = call.args["view"]
        return view if isinstance(view, dict) else json.loads(view)

    def thread_texts(self, app_id: int) -> list[str]:
        _, ts = self.thread(app_id)
        out = []
        for c in self.slack.calls("chat.postMessage"):
            if c.args.get("thread_ts") == ts:
                blocks = c.args.get("blocks")
                out.append(
                    c.args.get("text", "") + (blocks if isinstance(blocks, str) else json.dumps(blocks or []))
                )
        return out

    def wait_thread(self, app_id: int, fragment: str, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [t for t in self.thread_texts(app_id) if fragment in t]
            if found:
                return found[-1]
            time.sleep(0.05)
        raise AssertionError(f"no thread message with {fragment!r}: {self.thread_texts(app_id)}")


@pytest.fixture
def desk(database_url: str, container_factory: Any, ns: EmulatorServer) -> Iterator[Desk]:
    ns.faults.clear()
    users = [
        SlackUser(ANALYST, "Ana", "ana@credit.example"),
        SlackUser(OUTSIDER, "Oli", "oli@credit.example"),
    ]
    with MockSlackServer(users=users) as slack:
        container = container_factory(
            database_url=database_url,
            intake_api_token=INTAKE_TOKEN,
            slack_bot_token="xoxb-link",
            slack_signing_secret=SECRET,
            slack_api_url=slack.url,
            analysts=ANALYST,
            analysts_channel=CHANNEL,
            netsuite_account_id="1234567_SB1",
            netsuite_base_url=ns.url,
            netsuite_auth_mode="tba",
            netsuite_tba_consumer_key="ck",
            netsuite_tba_consumer_secret="cs",
            netsuite_tba_token_id="tk",
            netsuite_tba_token_secret="ts",
            netsuite_max_attempts=1,
            netsuite_contact_role_id="2",
            netsuite_subsidiary_id="1",
            sync_max_attempts=2,
            sync_retry_base_seconds=0.01,
            sync_retry_max_seconds=0.02,
        )
        assert container.netsuite is not None
        run_ingest(IngestParts(container.sessions, container.netsuite), full=True)
        app = create_app(container)
        with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://credit-desk.test") as http:
            yield Desk(slack, container, SignedSlackClient(http, SECRET), http, ns)
    ns.faults.clear()


def a_customer(desk: Desk) -> NsCustomer:
    with transaction(desk.container.sessions, readonly=True) as s:
        for c in s.scalars(select(NsCustomer).order_by(NsCustomer.internal_id)):
            if c.company_name and not c.is_inactive and len(c.addresses) >= 1 and c.email_domain:
                return c
    raise AssertionError("no suitable mirrored customer")


def ref(app_id: int) -> str:
    return json.dumps({"a": app_id}, separators=(",", ":"))


def pick_values(view: dict[str, Any], fields: list[str] | None = None) -> dict[str, Any]:
    """Tick `fields`, or keep the modal's initial ticks."""
    element = next(b["element"] for b in view["blocks"] if b.get("block_id") == BlockId.SYNC_FIELDS)
    chosen = fields if fields is not None else [o["value"] for o in element.get("initial_options", [])]
    return {
        BlockId.SYNC_FIELDS: {
            ActionId.SYNC_FIELDS: {"type": "checkboxes", "selected_options": [{"value": v} for v in chosen]}
        }
    }


def test_link_existing_customer_and_sync_chosen_fields(desk: Desk) -> None:
    customer = a_customer(desk)
    app_id = desk.approved(
        "link-1",
        business_name=customer.company_name,
        statements_contact={"name": "Pat Payables", "email": f"ap@{customer.email_domain}"},
    )
    # The decided message offers the link; the modal opens at once, suggestions follow by views.update.
    assert desk.click(ANALYST, ActionId.LINK, ref(app_id), app_id=app_id).status_code == 200
    first = desk.opened_view()
    check_view(first)
    update = desk.slack.wait_for("views.update")[-1]
    updated = (
        update.args["view"] if isinstance(update.args["view"], dict) else json.loads(update.args["view"])
    )
    check_view(updated)
    assert "Suggested matches" in json.dumps(updated) and customer.company_name in json.dumps(updated)
    # Options load: suggestions first with a confidence; a typed query searches the mirror.
    view_ctx = {**first, "id": "V0LINK0001", "private_metadata": first["private_metadata"]}
    empty = desk.signed.interaction(
        block_suggestion_payload(
            ActionId.LINK_CUSTOMER, "", block_id=BlockId.LINK_CUSTOMER, user_id=ANALYST, view=view_ctx
        )
    ).json()
    suggested = empty["option_groups"][0]
    assert suggested["label"]["text"] == "Suggested"
    assert suggested["options"][0]["value"] == str(customer.internal_id)
    assert "% match" in suggested["options"][0]["text"]["text"]
    typed = desk.signed.interaction(
        block_suggestion_payload(
            ActionId.LINK_CUSTOMER,
            customer.company_name[:8],
            block_id=BlockId.LINK_CUSTOMER,
            user_id=ANALYST,
            view=view_ctx,
        )
    ).json()
    options = [o for g in typed.get("option_groups", []) for o in g["options"]] + typed.get("options", [])
    assert 0 < len(options) <= 100 and all(len(o["text"]["text"]) <= 75 for o in options)
    # Submit "existing" without a customer: an inline error, nothing linked.
    r = desk.signed.interaction(view_submission_payload(first, link_values("existing"), user_id=ANALYST))
    assert r.json()["errors"] == {BlockId.LINK_CUSTOMER: "Choose the NetSuite customer."}
    # Pick the customer: the pick modal replaces the link modal.
    r = desk.signed.interaction(
        view_submission_payload(first, link_values("existing", customer.internal_id), user_id=ANALYST)
    )
    body = r.json()
    assert body["response_action"] == "update"
    pick = body["view"]
    check_view(pick)
    assert pick["callback_id"] == CallbackId.PICK
    assert "In NetSuite" in json.dumps(pick) and "as of" in json.dumps(pick)
    # Sync two fields.
    r = desk.signed.interaction(
        view_submission_payload(
            {**pick, "id": "V0PICK0001"}, pick_values(pick, ["credit_terms", "company_name"]), user_id=ANALYST
        )
    )
    assert r.status_code == 200 and r.text == ""
    desk.wait_thread(app_id, "asked to sync")
    desk.run_jobs()
    result = desk.wait_thread(app_id, "Synced")
    assert "NetSuite record" in result
    record = desk.ns.state.get_customer(customer.internal_id)
    assert record is not None
    assert float(record.credit_limit) == 40000.0
    with transaction(desk.container.sessions, readonly=True) as s:
        (row,) = s.scalars(select(SyncRequest)).all()
        assert row.status == "succeeded"
        assert set(row.fields) == {"company_name", "credit_terms"}
    for call in desk.slack.calls("chat.postMessage"):
        if call.args.get("blocks"):
            blocks = call.args["blocks"]
            check_message(blocks if isinstance(blocks, list) else json.loads(blocks))


def test_new_customer_that_looks_like_a_duplicate_is_questioned(desk: Desk) -> None:
    customer = a_customer(desk)
    app_id = desk.approved("link-2", business_name=customer.company_name)
    desk.click(ANALYST, ActionId.LINK, ref(app_id), app_id=app_id)
    view = desk.opened_view()
    r = desk.signed.interaction(view_submission_payload(view, link_values("new"), user_id=ANALYST))
    message = r.json()["errors"][BlockId.LINK_MODE]
    assert "looks like" in message and "same name" in message
    with transaction(desk.container.sessions, readonly=True) as s:
        from storage.models import NetSuiteLink

        assert s.scalars(select(NetSuiteLink)).all() == []  # nothing written
    r = desk.signed.interaction(
        view_submission_payload(view, link_values("new", confirm_new=True), user_id=ANALYST)
    )
    pick = r.json()["view"]
    check_view(pick)
    element = next(b["element"] for b in pick["blocks"] if b.get("block_id") == BlockId.SYNC_FIELDS)
    # A new customer: every row with a value is ticked.
    assert {o["value"] for o in element["initial_options"]} == {o["value"] for o in element["options"]}
    assert len(element["options"]) <= 10


def test_failed_sync_shows_netsuite_error_and_retries(desk: Desk) -> None:
    customer = a_customer(desk)
    # A name NetSuite does not have yet (the emulator is shared by both database runs), so a PATCH is needed.
    app_id = desk.approved("link-3", business_name=f"Different Name {uuid.uuid4().hex[:6]} Co")
    assert desk.container.sync is not None and desk.container.roles is not None
    actor = desk.container.roles.actor(ANALYST)
    desk.container.sync.link(app_id, actor, "existing", customer.internal_id)
    comparison = desk.container.sync.comparison(app_id)
    desk.ns.faults.fail(400, times=5, method="PATCH")
    requested = desk.container.sync.request(
        app_id, actor, ["company_name"], comparison.seen_values(["company_name"])
    )
    assert desk.container.notifier is not None and requested.owed is not None
    desk.container.notifier.deliver(app_id, requested.owed)  # as the requesting process does
    desk.run_jobs()
    failure = desk.wait_thread(app_id, "failed")
    assert ActionId.SYNC_RETRY in failure
    # /credit syncs lists it with Retry and Cancel.
    listing = desk.signed.command("/credit", "syncs", ANALYST, response_url=desk.slack.response_url()).json()
    check_message(listing["blocks"])
    assert ActionId.SYNC_RETRY in json.dumps(listing) and ActionId.SYNC_CANCEL in json.dumps(listing)
    with transaction(desk.container.sessions, readonly=True) as s:
        sync_id = s.scalars(select(SyncRequest.id)).one()
    desk.ns.faults.clear()
    assert (
        desk.click(ANALYST, ActionId.SYNC_RETRY, json.dumps({"s": sync_id}), app_id=app_id).status_code == 200
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        desk.run_jobs()
        with transaction(desk.container.sessions, readonly=True) as s:
            row = s.get(SyncRequest, sync_id)
            assert row is not None
            if row.status == "succeeded":
                break
        time.sleep(0.05)
    assert row.status == "succeeded"
    desk.wait_thread(app_id, "Synced")


def test_outsider_cannot_link(desk: Desk) -> None:
    app_id = desk.approved("link-4")
    desk.click(OUTSIDER, ActionId.LINK, ref(app_id), app_id=app_id)
    desk.slack.wait_for_response()
    assert any("Only a credit analyst or manager" in p.body.get("text", "") for p in desk.slack.responses())
    assert not desk.slack.calls("views.open")


def test_pick_modal_bad_input_writes_nothing(desk: Desk) -> None:
    customer = a_customer(desk)
    app_id = desk.approved("link-5", business_name=f"Other Name {uuid.uuid4().hex[:6]} Co")
    desk.click(ANALYST, ActionId.LINK, ref(app_id), app_id=app_id)
    view = desk.opened_view()
    r = desk.signed.interaction(
        view_submission_payload(view, link_values("existing", customer.internal_id), user_id=ANALYST)
    )
    pick = {**r.json()["view"], "id": "V0PICK0002"}
    # Nothing ticked: an inline error on the checkboxes.
    none = desk.signed.interaction(view_submission_payload(pick, pick_values(pick, []), user_id=ANALYST))
    assert none.json()["response_action"] == "errors"
    assert "Tick at least one field" in none.json()["errors"][BlockId.SYNC_FIELDS]
    # A field name we never offered: refused by name.
    bogus = desk.signed.interaction(
        view_submission_payload(pick, pick_values(pick, ["limit_x"]), user_id=ANALYST)
    )
    assert "unknown sync field" in bogus.json()["errors"][BlockId.SYNC_FIELDS]
    # Metadata we did not write (tampered or stale): the form says so.
    tampered = desk.signed.interaction(
        view_submission_payload(
            {**pick, "private_metadata": '{"a": "x"}'}, pick_values(pick), user_id=ANALYST
        )
    )
    assert tampered.json()["response_action"] == "update"
    assert "out of date" in json.dumps(tampered.json()["view"])
    with transaction(desk.container.sessions, readonly=True) as s:
        assert s.scalars(select(SyncRequest)).all() == []


def test_sync_lines_are_owed_and_delivered_once_if_the_requester_dies(desk: Desk) -> None:
    """The "asked to sync" line is an outbox row written with the request (as the outcome's line is with the
    outcome): a process that dies after the commit loses nothing, and a redelivery posts nothing twice."""
    customer = a_customer(desk)
    app_id = desk.approved("link-owed")
    assert desk.container.sync is not None and desk.container.roles is not None
    notifier = desk.container.notifier
    assert notifier is not None
    actor = desk.container.roles.actor(ANALYST)
    desk.container.sync.link(app_id, actor, "existing", customer.internal_id)
    comparison = desk.container.sync.comparison(app_id)
    requested = desk.container.sync.request(
        app_id, actor, ["credit_terms"], comparison.seen_values(["credit_terms"]), now=False
    )
    assert requested.owed is not None  # and the requesting process dies here: nothing posted
    assert [t for t in desk.thread_texts(app_id) if "asked to sync" in t] == []
    assert notifier.deliver_due() == 0  # its lease still runs
    later = notifier.clock() + timedelta(seconds=desk.container.settings.outbox_lease_seconds + 1)
    notifier.clock = lambda: later
    assert notifier.deliver_due() == 1
    assert len([t for t in desk.thread_texts(app_id) if "asked to sync" in t]) == 1
    assert notifier.deliver_due() == 0 and notifier.deliver(app_id) == 0
    assert len([t for t in desk.thread_texts(app_id) if "asked to sync" in t]) == 1
