"""Approve and reject through /slack/events with signed payloads, against the mock Slack Web API, on both
databases: the analyst path, the manager path, refusals, races, bad input, App Home and /credit."""

from __future__ import annotations

import json
import threading
import time
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
from bot.sandbox.signing import (
    SignedSlackClient,
    block_actions_payload,
    button_action,
    new_trigger_id,
    view_submission_payload,
)
from bot.sandbox.slack_api import MockSlackServer, SlackUser
from bot.web import create_app
from storage.db import transaction
from storage.models import AuditEvent, CreditApplication, Decision, SlackMessage
from tests.conftest import AUTH, INTAKE_TOKEN, valid_application
from tests.slack_checks import check_message, check_view

SECRET = "approvals-signing-secret"
ANALYST, ANALYST2, GROUP_ANALYST = "U0ANALYST1", "U0ANALYST2", "U0GROUPAN1"
MANAGER, MANAGER2, OUTSIDER = "U0MANAGER1", "U0MANAGER2", "U0OUTSIDE1"
ANALYSTS_CHANNEL, MANAGERS_CHANNEL = "C0CREDITQ1", "C0MANAGERS"


@dataclass
class Desk:
    slack: MockSlackServer
    container: Container
    http: httpx.Client
    signed: SignedSlackClient
    views_seen: int = 0

    def submit(self, **overrides: Any) -> int:
        body = valid_application(reference=overrides.pop("reference", "nuvo-1"), **overrides)
        r = self.http.post("/api/applications", json=body, headers=AUTH)
        assert r.status_code == 201, r.text
        self.run_jobs()
        return int(r.json()["id"])

    def run_jobs(self) -> None:
        jobs.bind_container(self.container)
        SimpleWorker([jobs.queue(self.container.redis)], connection=self.container.redis).work(burst=True)

    def app_message(self, app_id: int) -> tuple[str, str]:
        with transaction(self.container.sessions) as s:
            row = s.scalar(
                select(SlackMessage).where(
                    SlackMessage.application_id == app_id, SlackMessage.purpose == "application"
                )
            )
            assert row is not None and row.ts is not None
            return row.channel, row.ts

    def click(self, user: str, action_id: str, app_id: int, *, from_message: bool = True) -> httpx.Response:
        value = json.dumps({"a": app_id}, separators=(",", ":"))
        kwargs: dict[str, Any] = {"trigger_id": new_trigger_id()}
        if from_message:  # the analysts' channel message
            channel, ts = self.app_message(app_id)
            kwargs |= {
                "channel_id": channel,
                "message": {"ts": ts, "type": "message", "text": "x"},
                "response_url": self.slack.response_url(),
            }
        else:  # App Home: no response_url there
            kwargs["view"] = {"id": "V0HOMEVIEW", "type": "home", "blocks": [], "state": {"values": {}}}
        payload = block_actions_payload([button_action(action_id, value)], user_id=user, **kwargs)
        return self.signed.interaction(payload)

    def opened_view(self) -> dict[str, Any]:
        """The next modal opened since the last call (listeners run after their ack, so wait for it)."""
        self.views_seen += 1
        call = self.slack.wait_for("views.open", self.views_seen)[self.views_seen - 1]
        view = call.args["view"]
        return view if isinstance(view, dict) else json.loads(view)

    def submit_view(self, user: str, view: dict[str, Any], values: dict[str, Any]) -> httpx.Response:
        payload = view_submission_payload(view, values, user_id=user)
        return self.signed.interaction(payload)

    def wait_posted(self, count: int, timeout: float = 10.0) -> None:
        """Wait until `count` Slack messages are recorded as posted (listeners finish after their ack)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with transaction(self.container.sessions) as s:
                rows = list(s.scalars(select(SlackMessage)))
            if sum(1 for r in rows if r.ts is not None) >= count and all(r.ts for r in rows):
                return
            time.sleep(0.02)
        raise AssertionError(f"fewer than {count} Slack messages recorded as posted")

    def status(self, app_id: int) -> str:
        with transaction(self.container.sessions) as s:
            row = s.get(CreditApplication, app_id)
            assert row is not None
            return row.status

    def ephemeral_texts(self) -> list[str]:
        return [p.body.get("text", "") for p in self.slack.responses()]


@pytest.fixture
def desk(database_url: str, container_factory: Any) -> Iterator[Desk]:
    users = [
        SlackUser(u, name, f"{name.lower()}@credit.example")
        for u, name in [
            (ANALYST, "Ana"),
            (ANALYST2, "Ben"),
            (GROUP_ANALYST, "Gus"),
            (MANAGER, "Mia"),
            (MANAGER2, "Max"),
            (OUTSIDER, "Oli"),
        ]
    ]
    with MockSlackServer(users=users, usergroups={"S0ANALYSTS": [GROUP_ANALYST]}) as slack:
        container = container_factory(
            database_url=database_url,
            intake_api_token=INTAKE_TOKEN,
            slack_bot_token="xoxb-approvals",
            slack_signing_secret=SECRET,
            slack_api_url=slack.url,
            analysts=f"{ANALYST},{ANALYST2},S0ANALYSTS",
            managers=f"{MANAGER},{MANAGER2}",
            admins="U0ADMIN001",
            analysts_channel=ANALYSTS_CHANNEL,
            managers_channel=MANAGERS_CHANNEL,
            analyst_approval_limit="50000",
        )
        app = create_app(container)
        with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://credit-desk.test") as http:
            yield Desk(slack, container, http, SignedSlackClient(http, SECRET))


def approve_values(terms: str = "Net 30", limit: str = "25000", note: str | None = None) -> dict[str, Any]:
    return {
        BlockId.TERMS: {ActionId.TERMS: {"type": "static_select", "selected_option": {"value": terms}}},
        BlockId.CREDIT_LIMIT: {ActionId.CREDIT_LIMIT: {"type": "plain_text_input", "value": limit}},
        BlockId.NOTE: {ActionId.NOTE: {"type": "plain_text_input", "value": note}},
    }


def reason_values(reason: str) -> dict[str, Any]:
    return {BlockId.REASON: {ActionId.REASON: {"type": "plain_text_input", "value": reason}}}


def blocks_of(call: Any) -> list[dict[str, Any]]:
    blocks = call.args["blocks"]
    return blocks if isinstance(blocks, list) else json.loads(blocks)


def action_ids(blocks: list[dict[str, Any]]) -> list[str]:
    return [e.get("action_id") for b in blocks if b["type"] == "actions" for e in b["elements"]]


def audit(desk: Desk, app_id: int) -> list[AuditEvent]:
    with transaction(desk.container.sessions) as s:
        return list(
            s.scalars(select(AuditEvent).where(AuditEvent.entity_id == str(app_id)).order_by(AuditEvent.id))
        )


# --- announcing ------------------------------------------------------------------------------------


def test_new_application_is_announced_once(desk: Desk) -> None:
    app_id = desk.submit()
    (post,) = desk.slack.calls("chat.postMessage")
    assert post.args["channel"] == ANALYSTS_CHANNEL
    blocks = blocks_of(post)
    check_message(blocks, post.args["text"])
    rendered = json.dumps(blocks)
    assert "**-***6789" in rendered and "3456789" not in rendered.replace("**-***6789", "")
    assert action_ids(blocks) == [ActionId.APPROVE, ActionId.REJECT, ActionId.DETAILS]
    # Retried job, and the periodic repair pass: still one message.
    jobs.bind_container(desk.container)
    assert desk.container.notifier is not None
    assert desk.container.notifier.announce(app_id) is False
    assert desk.container.notifier.announce_missing(older_than=timedelta(0)) == 0
    assert len(desk.slack.calls("chat.postMessage")) == 1


def test_lost_announcement_is_repaired(desk: Desk) -> None:
    desk.slack.fail_next("chat.postMessage", error="internal_error", status=500)
    app_id = desk.submit()
    with transaction(desk.container.sessions) as s:
        row = s.scalar(select(SlackMessage).where(SlackMessage.application_id == app_id))
        assert row is not None and row.ts is None  # the claim is given back after the failure
    assert desk.container.notifier is not None
    assert desk.container.notifier.announce_missing(older_than=timedelta(0)) == 1
    assert desk.app_message(app_id)[0] == ANALYSTS_CHANNEL


# --- analyst approves within the band --------------------------------------------------------------


def test_analyst_approves_within_band(desk: Desk) -> None:
    app_id = desk.submit()
    channel, ts = desk.app_message(app_id)
    r = desk.click(ANALYST, ActionId.APPROVE, app_id)
    assert r.status_code == 200
    view = desk.opened_view()
    check_view(view)
    assert view["callback_id"] == CallbackId.APPROVE
    options = [o["value"] for o in view["blocks"][2]["element"]["options"]]
    assert "Net 30" in options
    r = desk.submit_view(ANALYST, view, approve_values("Net 30", "25,000", "good references"))
    assert r.status_code == 200 and r.text == ""
    update_call = desk.slack.wait_for("chat.update")[-1]
    assert (update_call.args["channel"], update_call.args["ts"]) == (channel, ts)
    blocks = blocks_of(update_call)
    check_message(blocks)
    assert action_ids(blocks) == [ActionId.LINK, ActionId.DETAILS]  # decided: link to NetSuite next
    assert "Approved" in json.dumps(blocks)
    thread = [c for c in desk.slack.wait_for("chat.postMessage", 2) if c.args.get("thread_ts") == ts]
    assert thread and f"<@{ANALYST}> approved" in thread[0].args["text"]
    assert desk.status(app_id) == "approved"
    events = [e for e in audit(desk, app_id) if e.action == "application.approve"]
    assert len(events) == 1
    assert events[0].actor == ANALYST
    assert events[0].before == {"status": "submitted", "approved_terms": None, "approved_credit_limit": None}
    assert events[0].after == {
        "status": "approved",
        "approved_terms": "Net 30",
        "approved_credit_limit": "25000.00",
    }


def test_bad_modal_input_shows_inline_errors_and_changes_nothing(desk: Desk) -> None:
    app_id = desk.submit()
    desk.click(ANALYST, ActionId.APPROVE, app_id)
    view = desk.opened_view()
    for limit, fragment in [("abc", "Enter an amount"), ("0", "more than zero"), ("10.001", "two decimal")]:
        r = desk.submit_view(ANALYST, view, approve_values(limit=limit))
        assert r.status_code == 200
        assert r.json()["response_action"] == "errors"
        assert fragment in r.json()["errors"][BlockId.CREDIT_LIMIT]
    r = desk.submit_view(ANALYST, view, approve_values(terms="Net 999"))
    assert BlockId.TERMS in r.json()["errors"]
    desk.click(ANALYST, ActionId.REJECT, app_id)
    reject_view = desk.opened_view()
    check_view(reject_view)
    r = desk.submit_view(ANALYST, reject_view, reason_values("   "))
    assert r.json() == {"response_action": "errors", "errors": {BlockId.REASON: "Please give a reason."}}
    assert desk.status(app_id) == "submitted"
    assert not desk.slack.calls("chat.update")


def test_analyst_rejects_with_reason(desk: Desk) -> None:
    app_id = desk.submit()
    desk.click(ANALYST, ActionId.REJECT, app_id)
    r = desk.submit_view(ANALYST, desk.opened_view(), reason_values("Trade references did not check out"))
    assert r.status_code == 200
    blocks = blocks_of(desk.slack.wait_for("chat.update")[-1])
    assert "Rejected" in json.dumps(blocks) and "Trade references" in json.dumps(blocks)
    assert desk.status(app_id) == "rejected"
    (event,) = [e for e in audit(desk, app_id) if e.action == "application.reject"]
    assert event.detail == "Trade references did not check out"


# --- the manager path ------------------------------------------------------------------------------


def test_above_band_needs_a_manager(desk: Desk) -> None:
    app_id = desk.submit()
    desk.click(ANALYST, ActionId.APPROVE, app_id)
    desk.submit_view(ANALYST, desk.opened_view(), approve_values("Net 45", "75000", "strong financials"))
    # The analysts' message says it waits for a manager; managers are asked in their channel and by DM.
    desk.slack.wait_for("chat.postMessage", 4)  # announcement, thread line, managers' channel, 2 DMs
    posts = desk.slack.wait_for("chat.postMessage", 5)
    targets = {c.args["channel"] for c in posts if not c.args.get("thread_ts")}
    assert {ANALYSTS_CHANNEL, MANAGERS_CHANNEL, MANAGER, MANAGER2} <= targets
    manager_post = next(c for c in posts if c.args["channel"] == MANAGER)
    blocks = blocks_of(manager_post)
    check_message(blocks)
    assert action_ids(blocks) == [
        ActionId.MANAGER_CONFIRM,
        ActionId.REJECT.replace("reject", "manager_reject"),
        ActionId.DETAILS,
    ]
    assert "recommends" in json.dumps(blocks) and "75,000.00" in json.dumps(blocks)
    assert desk.status(app_id) == "awaiting_manager"
    # An analyst cannot finish it, and a second analyst's approve is no longer offered.
    desk.click(ANALYST2, ActionId.MANAGER_CONFIRM, app_id)
    desk.slack.wait_for_response()
    assert any("Only a credit manager" in t for t in desk.ephemeral_texts())
    assert desk.status(app_id) == "awaiting_manager"
    # The manager confirms: every message is updated, and the thread says so.
    before = len(desk.slack.calls("chat.update"))
    r = desk.click(MANAGER, ActionId.MANAGER_CONFIRM, app_id, from_message=False)
    assert r.status_code == 200
    updates = desk.slack.wait_for("chat.update", before + 4)[before:]
    assert len({(u.args["channel"], u.args["ts"]) for u in updates}) == 4
    for u in updates:
        assert ActionId.MANAGER_CONFIRM not in action_ids(blocks_of(u))
    assert desk.status(app_id) == "approved"
    with transaction(desk.container.sessions) as s:
        kinds = [d.kind for d in s.scalars(select(Decision).where(Decision.application_id == app_id))]
        row = s.get(CreditApplication, app_id)
        assert row is not None
        assert (row.approved_terms, str(row.approved_credit_limit)) == ("Net 45", "75000.00")
    assert kinds == ["recommend", "confirm"]


def test_manager_rejects_a_recommendation(desk: Desk) -> None:
    app_id = desk.submit()
    desk.click(ANALYST, ActionId.APPROVE, app_id)
    desk.submit_view(ANALYST, desk.opened_view(), approve_values("Net 30", "90000"))
    desk.slack.wait_for("chat.postMessage", 5)
    desk.click(MANAGER2, ActionId.MANAGER_REJECT, app_id, from_message=False)
    view = desk.opened_view()
    check_view(view)
    assert json.loads(view["private_metadata"])["m"] is True
    desk.submit_view(MANAGER2, view, reason_values("Exposure too high this quarter"))
    assert desk.status(app_id) == "rejected"


def test_manager_reminders_are_sent_once_per_period(desk: Desk) -> None:
    app_id = desk.submit()
    desk.click(ANALYST, ActionId.APPROVE, app_id)
    desk.submit_view(ANALYST, desk.opened_view(), approve_values("Net 30", "90000"))
    desk.wait_posted(4)  # analysts' channel, managers' channel, two DMs
    notifier = desk.container.notifier
    assert notifier is not None
    assert notifier.remind_managers() == 0  # not due yet
    with transaction(desk.container.sessions) as s:
        for m in s.scalars(select(SlackMessage)):
            assert m.posted_at is not None
            m.posted_at -= timedelta(hours=5)
    reminded = notifier.remind_managers()
    assert reminded == 3  # the managers' channel and two DMs
    reminders = [c for c in desk.slack.calls("chat.postMessage") if "Reminder" in c.args.get("text", "")]
    assert len(reminders) == 3 and all(c.args.get("thread_ts") for c in reminders)
    assert notifier.remind_managers() == 0  # reminded just now


# --- exactly one decision ----------------------------------------------------------------------------


def test_racing_decisions_give_exactly_one(desk: Desk) -> None:
    app_id = desk.submit()
    desk.click(ANALYST, ActionId.APPROVE, app_id)
    approve_view = desk.opened_view()
    desk.click(ANALYST2, ActionId.REJECT, app_id)
    reject_view = desk.opened_view()
    barrier = threading.Barrier(4)
    answers: list[httpx.Response] = []

    def go(user: str, view: dict[str, Any], values: dict[str, Any]) -> None:
        barrier.wait()
        answers.append(desk.submit_view(user, view, values))

    threads = [
        threading.Thread(target=go, args=(ANALYST, approve_view, approve_values())),
        threading.Thread(target=go, args=(ANALYST, approve_view, approve_values())),  # double click
        threading.Thread(target=go, args=(ANALYST2, reject_view, reason_values("no"))),
        threading.Thread(target=go, args=(MANAGER, approve_view, approve_values(limit="30000"))),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert all(a.status_code == 200 for a in answers)
    closed = [a for a in answers if a.text == ""]
    notices = [a.json() for a in answers if a.text]
    assert len(closed) == 1 and len(notices) == 3
    assert all("already" in json.dumps(n["view"]) for n in notices)
    with transaction(desk.container.sessions) as s:
        decisions = list(s.scalars(select(Decision).where(Decision.application_id == app_id)))
    assert len(decisions) == 1
    decided = [
        e
        for e in audit(desk, app_id)
        if e.action.startswith("application.") and e.action != "application.submitted"
    ]
    assert len(decided) == 1


# --- refusals and bad input ---------------------------------------------------------------------------


def test_outsider_is_refused_with_an_explanation_and_audited(desk: Desk) -> None:
    app_id = desk.submit()
    for action in (ActionId.APPROVE, ActionId.REJECT, ActionId.DETAILS):
        r = desk.click(OUTSIDER, action, app_id)
        assert r.status_code == 200
    desk.slack.wait_for_response(count=3)
    texts = desk.ephemeral_texts()
    assert sum("Only a credit analyst or manager" in t for t in texts) == 2
    assert any("Only the credit team" in t for t in texts)
    assert not desk.slack.calls("views.open")
    refusals = [e for e in audit(desk, app_id) if e.action == "authorization.refused"]
    assert [e.actor for e in refusals] == [OUTSIDER] * 3
    assert desk.status(app_id) == "submitted"


def test_user_group_members_hold_the_role(desk: Desk) -> None:
    app_id = desk.submit()
    desk.click(GROUP_ANALYST, ActionId.APPROVE, app_id)
    desk.submit_view(GROUP_ANALYST, desk.opened_view(), approve_values())
    assert desk.status(app_id) == "approved"


def test_submitter_cannot_approve_own_application(desk: Desk) -> None:
    app_id = desk.submit(applicant={"name": "Ana", "slack_user_id": ANALYST})
    desk.click(ANALYST, ActionId.APPROVE, app_id)
    r = desk.submit_view(ANALYST, desk.opened_view(), approve_values())
    assert r.json()["response_action"] == "update"
    assert "someone else" in json.dumps(r.json()["view"])
    assert desk.status(app_id) == "submitted"
    assert [e.detail for e in audit(desk, app_id) if e.action == "authorization.refused"]


def test_malformed_payloads_never_crash(desk: Desk) -> None:
    app_id = desk.submit()
    channel, ts = desk.app_message(app_id)
    message = {"ts": ts, "type": "message", "text": "x"}
    bad = block_actions_payload(
        [button_action(ActionId.APPROVE, "not-json")],
        user_id=ANALYST,
        response_url=desk.slack.response_url(),
        channel_id=channel,
        message=message,
    )
    assert desk.signed.interaction(bad).status_code == 200
    desk.slack.wait_for_response()
    assert "no longer works" in desk.ephemeral_texts()[-1]
    bad_meta = {"type": "modal", "callback_id": CallbackId.APPROVE, "private_metadata": "{}", "blocks": []}
    r = desk.submit_view(ANALYST, bad_meta, approve_values())
    assert r.json()["response_action"] == "update"
    unknown = block_actions_payload([button_action("no.such.action", "x")], user_id=ANALYST, message=message)
    assert desk.signed.interaction(unknown).status_code in (200, 404)
    garbage = desk.http.post(
        "/slack/events",
        content=b"payload=%7Bnot-json",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert garbage.status_code == 401  # unsigned
    signed_garbage = desk.signed.post(
        b"payload=%7Bnot-json", content_type="application/x-www-form-urlencoded"
    )
    assert signed_garbage.status_code == 400
    assert desk.status(app_id) == "submitted"
    assert desk.http.get("/healthz").status_code == 200


# --- App Home and /credit ----------------------------------------------------------------------------


def test_app_home_shows_each_role_its_queue(desk: Desk) -> None:
    first = desk.submit(reference="nuvo-1")
    second = desk.submit(reference="nuvo-2", business_name="Globex Corporation")
    desk.click(ANALYST, ActionId.APPROVE, second)
    desk.submit_view(ANALYST, desk.opened_view(), approve_values(limit="80000"))
    for user_id in (ANALYST, MANAGER, OUTSIDER):
        event = {
            "type": "app_home_opened",
            "user": user_id,
            "tab": "home",
            "channel": "D0HOME0001",
            "event_ts": "1.2",
        }
        assert desk.signed.event(event).status_code == 200
    desk.slack.wait_for("views.publish", 3)
    analyst_home = desk.slack.home_view(ANALYST)
    manager_home = desk.slack.home_view(MANAGER)
    outsider_home = desk.slack.home_view(OUTSIDER)
    for view in (analyst_home, manager_home, outsider_home):
        check_view({k: v for k, v in view.items() if k in ("type", "blocks")})
    assert f"#{first} " in json.dumps(analyst_home) and "Waiting for an analyst (1)" in json.dumps(
        analyst_home
    )
    assert ActionId.MANAGER_CONFIRM in json.dumps(manager_home)
    assert ActionId.MANAGER_CONFIRM not in json.dumps(analyst_home)
    assert "no Credit Desk role" in json.dumps(outsider_home)


def test_credit_command(desk: Desk) -> None:
    app_id = desk.submit()
    for text, expect in [
        ("help", "/credit pending"),
        ("", "/credit pending"),
        ("pending", "Waiting for an analyst (1)"),
        (f"show {app_id}", "Credit application: Acme Industrial Supply LLC"),
        ("show acme", "Credit application: Acme"),
        ("show nothing-like-this", "No application matches"),
        ("frobnicate", "I don't know"),
    ]:
        r = desk.signed.command("/credit", text, ANALYST, response_url=desk.slack.response_url())
        assert r.status_code == 200, text
        body = r.json()
        assert body.get("response_type") == "ephemeral"
        assert expect in json.dumps(body), (text, body)
        if body.get("blocks"):
            check_message(body["blocks"], body.get("text"))
    r = desk.signed.command("/credit", "pending", OUTSIDER, response_url=desk.slack.response_url())
    assert "for the credit team" in r.json()["text"]
    with transaction(desk.container.sessions) as s:
        refused = s.scalars(select(AuditEvent).where(AuditEvent.action == "authorization.refused")).all()
    assert [e.actor for e in refused] == [OUTSIDER]


def test_details_modal_holds_the_whole_profile_within_limits(desk: Desk) -> None:
    many = [
        {
            "label": f"Dock {i}",
            "line1": f"{i} Harbor Way",
            "city": "Oakland",
            "state": "CA",
            "postal_code": "94607",
        }
        for i in range(50)
    ]
    app_id = desk.submit(shipping_locations=many)
    announced = blocks_of(desk.slack.calls("chat.postMessage")[0])
    check_message(announced)
    assert "and 47 more" in json.dumps(announced)
    assert desk.click(ANALYST, ActionId.DETAILS, app_id).status_code == 200
    view = desk.opened_view()
    check_view(view)
    text = json.dumps(view)
    assert "Dock 0" in text and "Dock 49" in text and "**-***6789" in text
