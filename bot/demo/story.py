"""The demo's walk: one credit application from intake to a NetSuite sync, through the real HTTP paths.

Every step is done the way Slack and the website would do it: the application is POSTed to the intake API
with its bearer token; clicks, modal submissions, options loads, slash commands and Home openings are signed
Slack payloads posted to ``/slack/events``; buttons are read from the messages as Slack holds them (the mock
Slack server keeps every posted message, view and Home tab), never made up. After each action the story waits
(bounded by ``DemoOptions.step_timeout``) for what Slack should then show, and stops with
:class:`DemoFailed` naming the step and what did not happen.

What the story saw is kept as a :class:`Transcript` (steps of narration, checks and Slack surfaces), printed
as it goes by a :class:`Reporter` and written as HTML by :func:`transcript_html`.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, Protocol, TypeVar

import httpx
from rich.console import Console
from rich.text import Text
from sqlalchemy import func, select

from blocks.ids import ActionId, BlockId, CallbackId
from bot.demo import render
from bot.demo.environment import (
    ANALYST,
    ANALYSTS_CHANNEL_ID,
    APPROVAL_LIMIT,
    MANAGER,
    MANAGERS_CHANNEL,
    DemoStack,
    Person,
)
from bot.mirror.ingest import run_ingest
from bot.sandbox import DEFAULT_WORKSPACE
from bot.sandbox.signing import (
    block_actions_payload,
    block_suggestion_payload,
    new_trigger_id,
    view_submission_payload,
)
from bot.sandbox.slack_api import PostedMessage, SlackUser
from netsuite.errors import NetSuiteError
from storage.db import transaction
from storage.models import NsCustomer, NsSalesRep

_T = TypeVar("_T")

EntryKind = Literal["action", "info", "check", "skip", "http", "surface"]
SurfaceKind = Literal["message", "reply", "update", "ephemeral", "modal", "home", "options"]

REP_USER_ID = "U0DEMOREP1"
APPROVED_LIMIT = APPROVAL_LIMIT + Decimal("25000")
DEFAULT_NOTE = "Bank letter & 3 trade references checked; exposure <$100k across the group."
UTILIZATION_COMMAND = "/utilization"
_ZIP = re.compile(r"^\d{5}(-\d{4})?$")
_LINK = re.compile(r"<(https?://[^|>]+)\|[^>]*>")
_POLL_SECONDS = 0.05


class DemoFailed(RuntimeError):
    """A step of the demo did not happen; the message names the step and what was expected."""


# --------------------------------------------------------------------------- the transcript


@dataclass(frozen=True)
class Surface:
    """What Slack showed: a message, a thread reply, an updated message, an ephemeral answer, a modal, a
    Home tab or an open drop-down (``options``, an options-load answer)."""

    kind: SurfaceKind
    where: str
    blocks: tuple[Mapping[str, Any], ...] = ()
    text: str = ""
    view: Mapping[str, Any] | None = None
    options: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Entry:
    kind: EntryKind
    text: str = ""
    surface: Surface | None = None


@dataclass
class Step:
    number: int
    title: str
    entries: list[Entry] = field(default_factory=list)
    skipped: bool = False


@dataclass
class Transcript:
    """Everything the story did and saw. ``names`` maps Slack ids to the names shown for them."""

    steps: list[Step] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    completed: bool = False

    def surfaces(self) -> list[Surface]:
        return [e.surface for s in self.steps for e in s.entries if e.surface is not None]


class Reporter(Protocol):
    """Told about each step and entry as it happens (the terminal printer; tests may collect)."""

    def step_started(self, step: Step) -> None: ...

    def entry_added(self, step: Step, entry: Entry, names: Mapping[str, str]) -> None: ...


class TerminalReporter:
    """Prints the story as it goes: step rules, narration, checks, and each Slack surface as a panel."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def step_started(self, step: Step) -> None:
        self.console.print()
        self.console.rule(Text(f"Step {step.number} · {step.title}", style="bold"))

    def entry_added(self, step: Step, entry: Entry, names: Mapping[str, str]) -> None:
        if entry.surface is not None:
            s = entry.surface
            self.console.print(
                render.surface_renderable(
                    kind=s.kind,
                    where=s.where,
                    blocks=s.blocks,
                    text=s.text,
                    view=s.view,
                    options=s.options,
                    names=names,
                )
            )
            return
        style, mark = {
            "action": ("bold", "▶ "),
            "info": ("dim", "  "),
            "check": ("green", "✓ "),
            "skip": ("yellow", "↷ "),
            "http": ("cyan", "⇄ "),
        }[entry.kind]
        self.console.print(Text(mark + entry.text, style=style))


def transcript_html(transcript: Transcript, *, strict: bool = False) -> str:
    """The whole story as one HTML page with every Slack surface rendered (all text escaped)."""
    e = render.escape_html
    sections = []
    for step in transcript.steps:
        parts = [f'<section class="step{" skipped" if step.skipped else ""}" id="step-{step.number}">']
        parts.append(f"<h2>{step.number}. {e(step.title)}</h2>")
        for entry in step.entries:
            if entry.surface is not None:
                s = entry.surface
                parts.append(
                    render.surface_html(
                        kind=s.kind,
                        where=s.where,
                        blocks=s.blocks,
                        text=s.text,
                        view=s.view,
                        options=s.options,
                        names=transcript.names,
                        strict=strict,
                    )
                )
            elif entry.kind == "http":
                parts.append(f'<div class="http">{e(entry.text)}</div>')
            else:
                parts.append(f'<p class="{entry.kind}">{e(entry.text)}</p>')
        parts.append("</section>")
        sections.append("".join(parts))
    outcome = "The story ran to the end." if transcript.completed else "The story stopped early."
    return render.page_html(
        "Credit Desk demo",
        "One credit application from intake to NetSuite, as Slack showed it to each person. "
        "Slack was a local stand-in and NetSuite the emulator; every request went over HTTP.",
        sections,
        outcome,
    )


# --------------------------------------------------------------------------- the walk


@dataclass(frozen=True)
class _Customer:
    internal_id: int
    company_name: str
    email_domain: str
    line1: str
    city: str
    state: str
    postal_code: str


class DemoStory:
    """Walks the story on a running :class:`DemoStack`. ``run()`` returns the transcript or raises
    :class:`DemoFailed` (the transcript so far stays in ``transcript``)."""

    def __init__(
        self, stack: DemoStack, reporter: Reporter | None = None, *, note: str = DEFAULT_NOTE
    ) -> None:
        self.stack = stack
        self.reporter = reporter
        self.note = note
        self.timeout = stack.options.step_timeout
        names = {p.user_id: p.name for p in (ANALYST, MANAGER)}
        names |= {
            ANALYSTS_CHANNEL_ID: DEFAULT_WORKSPACE.channel_name,
            MANAGERS_CHANNEL.id: MANAGERS_CHANNEL.name,
        }
        self.transcript = Transcript(names=names)
        self._step: Step | None = None
        self._views_opened = 0
        self._customer: _Customer | None = None
        self._app_id = 0
        self._ts = ""
        self._response_urls: list[str] = []
        self._pick_view: dict[str, Any] = {}
        self._dms: dict[str, str] = {}

    # --- narration ------------------------------------------------------------------------------

    def _begin(self, title: str) -> Step:
        step = Step(len(self.transcript.steps) + 1, title)
        self.transcript.steps.append(step)
        self._step = step
        if self.reporter is not None:
            self.reporter.step_started(step)
        return step

    def _add(self, entry: Entry) -> None:
        assert self._step is not None
        self._step.entries.append(entry)
        if self.reporter is not None:
            self.reporter.entry_added(self._step, entry, self.transcript.names)

    def _say(self, kind: EntryKind, text: str) -> None:
        self._add(Entry(kind, text))

    def _show(self, surface: Surface) -> None:
        self._add(Entry("surface", surface=surface))

    def _fail(self, what: str) -> DemoFailed:
        step = self._step
        where = f"step {step.number} ({step.title})" if step else "start-up"
        told = [p.body.get("text", "") for p in self.stack.slack.responses() if p.url in self._response_urls]
        extra = f" Slack last told the user: {told[-1]!r}." if told else ""
        return DemoFailed(f"{where}: {what}.{extra}")

    # --- waiting and reading Slack --------------------------------------------------------------

    def _wait(self, probe: Callable[[], _T | None], what: str) -> _T:
        """Poll ``probe`` until it returns something, for at most the step timeout."""
        deadline = time.monotonic() + self.timeout
        while True:
            found = probe()
            if found is not None:
                return found
            if time.monotonic() >= deadline:
                raise self._fail(f"{what} did not happen within {self.timeout:g}s")
            time.sleep(_POLL_SECONDS)

    def _where(self, channel: str) -> str:
        if channel in self._dms:
            return (
                f"DM from Credit Desk to {self.transcript.names.get(self._dms[channel], self._dms[channel])}"
            )
        return "#" + self.transcript.names.get(channel, channel)

    def _dm(self, person: Person) -> str:
        """The app's DM channel with ``person`` (as Slack resolves a post to their user id)."""
        channel = self.stack.slack.dm_channel(person.user_id)
        self._dms[channel] = person.user_id
        return channel

    def _message_surface(
        self, message: PostedMessage, kind: SurfaceKind, where: str | None = None
    ) -> Surface:
        place = where or self._where(message.channel)
        if kind == "reply":
            place = f"{place}, in the thread"
        elif kind == "update":
            place = f"{place}, the message updated"
        return Surface(kind, place, tuple(message.blocks or ()), message.text)

    def _analysts_message(self) -> PostedMessage:
        return self.stack.slack.message(ANALYSTS_CHANNEL_ID, self._ts)

    def _thread_reply(self, fragment: str, after: int = 0) -> PostedMessage | None:
        replies = [
            m
            for m in self.stack.slack.messages(ANALYSTS_CHANNEL_ID)
            if m.thread_ts == self._ts and m.ts != self._ts
        ]
        for m in replies[after:]:
            if fragment in m.text or fragment in json.dumps(m.blocks or []):
                return m
        return None

    def _replies(self) -> int:
        return sum(1 for m in self.stack.slack.messages(ANALYSTS_CHANNEL_ID) if m.thread_ts == self._ts)

    def _next_view(self) -> dict[str, Any]:
        """The modal the app opened after the last click (Slack's stored copy, with its id and hash)."""
        self._views_opened += 1
        try:
            call = self.stack.slack.wait_for("views.open", self._views_opened, self.timeout)[
                self._views_opened - 1
            ]
        except TimeoutError as exc:
            raise self._fail("no modal opened") from exc
        if not call.ok:
            raise self._fail(f"Slack refused the modal ({call.error})")
        return self.stack.slack.view(str(call.response["view"]["id"]))

    @staticmethod
    def _button(blocks: Sequence[Mapping[str, Any]], action_id: str) -> tuple[str, dict[str, Any]] | None:
        for block in blocks:
            for element in block.get("elements") or []:
                if element.get("type") == "button" and element.get("action_id") == action_id:
                    return str(block.get("block_id") or "actions"), dict(element)
        return None

    def _click(self, person: Person, message: PostedMessage, action_id: str) -> None:
        """``person`` clicks the button ``action_id`` on ``message`` as Slack holds it now."""
        found = self._button(message.blocks or [], action_id)
        if found is None:
            raise self._fail(f"the message in {self._where(message.channel)} has no {action_id} button")
        block_id, button = found
        response_url = self.stack.slack.response_url()
        self._response_urls.append(response_url)
        payload = block_actions_payload(
            [{**button, "block_id": block_id}],
            user_id=person.user_id,
            user_name=person.name.lower(),
            channel_id=message.channel,
            message=message.to_dict(),
            response_url=response_url,
            trigger_id=new_trigger_id(),
        )
        self._expect_ok(self.stack.signed.interaction(payload), f"{person.name}'s click")

    def _submit(self, person: Person, view: Mapping[str, Any], values: Mapping[str, Any]) -> httpx.Response:
        payload = view_submission_payload(view, values, user_id=person.user_id, user_name=person.name.lower())
        return self._expect_ok(self.stack.signed.interaction(payload), f"{person.name}'s submission")

    def _expect_ok(self, response: httpx.Response, what: str) -> httpx.Response:
        if response.status_code != 200:
            raise self._fail(
                f"the app answered {what} with HTTP {response.status_code}: {response.text[:300]}"
            )
        return response

    # --- the story --------------------------------------------------------------------------------

    def run(self) -> Transcript:
        self._mirror()
        self._application_arrives()
        self._analyst_approves()
        self._manager_confirms()
        customer_id = self._analyst_links()
        self._analyst_syncs(customer_id)
        self._rep_checks_utilization()
        self.transcript.completed = True
        return self.transcript

    def _mirror(self) -> None:
        self._begin("Credit Desk mirrors NetSuite")
        ns = self.stack.emulator
        self._say(
            "action", f"Credit Desk reads the customers of the NetSuite emulator ({ns.url}) into its mirror."
        )
        try:
            report = run_ingest(self.stack.container, full=True)
        except NetSuiteError as exc:
            raise self._fail(f"reading NetSuite failed: {exc}") from exc
        self._say("info", report.summary())
        if report.customers_read == 0:
            raise self._fail("the mirror read no customers")
        self._customer = self._pick_customer()
        c = self._customer
        self._say(
            "check",
            f"{report.customers_read} customers mirrored, among them {c.company_name} ({c.internal_id}).",
        )

    def _pick_customer(self) -> _Customer:
        """An active mirrored customer with a US billing address: the business that will apply."""
        with transaction(self.stack.container.sessions, readonly=True) as s:
            rows = s.scalars(
                select(NsCustomer)
                .where(NsCustomer.is_inactive.is_(False), NsCustomer.email_domain.is_not(None))
                .order_by(NsCustomer.internal_id)
                .limit(200)
            )
            for c in rows:
                for a in c.addresses:
                    if (
                        c.company_name
                        and a.country == "US"
                        and a.line1
                        and a.city
                        and a.region
                        and _ZIP.match(a.postal_code or "")
                    ):
                        return _Customer(
                            c.internal_id,
                            c.company_name,
                            str(c.email_domain),
                            a.line1,
                            a.city,
                            a.region,
                            str(a.postal_code),
                        )
        raise self._fail("the mirror holds no active customer with a US address to apply as")

    def _application_arrives(self) -> None:
        self._begin("An application arrives through the intake API")
        c = self._customer
        assert c is not None
        federal_id = f"27-{c.internal_id % 10**7:07d}"  # the mirror has no Federal ID in clear to reuse
        short = c.company_name.split()[0]
        body = {
            "reference": f"demo-{c.internal_id}",
            "business_name": c.company_name,
            "dba": f"{short} Supply & Co",
            "federal_id": federal_id,
            "billing_address": {
                "line1": c.line1,
                "city": c.city,
                "state": c.state,
                "postal_code": c.postal_code,
            },
            "statements_contact": {
                "name": "Pat Payables",
                "email": f"ap@{c.email_domain}",
                "phone": "512-555-0134",
            },
            "requested_terms": "Net 30",
            "requested_credit_limit": {"amount": f"{APPROVED_LIMIT:.2f}", "currency": "USD"},
            "shipping_locations": [
                {
                    "label": "Main warehouse",
                    "line1": c.line1,
                    "city": c.city,
                    "state": c.state,
                    "postal_code": c.postal_code,
                }
            ],
            "applicant": {"name": "Jo Owner", "email": f"jo@{c.email_domain}"},
        }
        self._say(
            "action", f"The website's credit form sends {c.company_name}'s application to the intake API."
        )
        health = self.stack.http.get("/healthz")
        self._say("http", f"GET /healthz → {health.status_code}")
        if health.status_code != 200:
            raise self._fail(f"the web app is not healthy: /healthz answered {health.status_code}")
        token = self.stack.settings.intake_api_token
        assert token is not None
        r = self.stack.http.post(
            "/api/applications", json=body, headers={"Authorization": f"Bearer {token.get_secret_value()}"}
        )
        self._say(
            "http", f"POST /api/applications → {r.status_code} {r.headers.get('Location', '')}".rstrip()
        )
        if r.status_code != 201:
            raise self._fail(f"the intake API answered {r.status_code}: {r.text[:300]}")
        self._app_id = int(r.json()["id"])
        self.transcript.names[ANALYSTS_CHANNEL_ID] = DEFAULT_WORKSPACE.channel_name

        def announced() -> PostedMessage | None:
            for m in self.stack.slack.messages(ANALYSTS_CHANNEL_ID):
                if m.thread_ts is None and f"#{self._app_id} " in m.text:
                    return m
            return None

        message = self._wait(announced, f"the announcement of application #{self._app_id} in #credit-desk")
        self._ts = message.ts
        self._show(self._message_surface(message, "message"))
        if self._button(message.blocks or [], ActionId.APPROVE) is None:
            raise self._fail("the announcement offers no Approve button")
        self._say(
            "check",
            f"Application #{self._app_id} is announced to the analysts with Approve, Reject and Details.",
        )

    def _analyst_approves(self) -> None:
        self._begin(f"{ANALYST.name}, an analyst, approves above her band")
        self._say("action", f"{ANALYST.name} clicks Approve on the message in #credit-desk.")
        self._click(ANALYST, self._analysts_message(), ActionId.APPROVE)
        view = self._next_view()
        self._show(Surface("modal", f"Modal for {ANALYST.name}", tuple(view["blocks"]), view=view))
        if view.get("callback_id") != CallbackId.APPROVE:
            raise self._fail(f"the modal is {view.get('callback_id')!r}, not the approval form")
        terms = _chosen_terms(view)
        self._say(
            "action",
            f"{ANALYST.name} chooses {terms}, sets the limit to ${APPROVED_LIMIT:,.2f} (above the "
            f"${APPROVAL_LIMIT:,.2f} an analyst approves alone), adds a note and presses Approve.",
        )
        values: dict[str, Any] = {
            BlockId.TERMS: {ActionId.TERMS: {"type": "static_select", "selected_option": {"value": terms}}},
            BlockId.CREDIT_LIMIT: {
                ActionId.CREDIT_LIMIT: {"type": "plain_text_input", "value": str(APPROVED_LIMIT)}
            },
            BlockId.NOTE: {ActionId.NOTE: {"type": "plain_text_input", "value": self.note}},
        }
        r = self._submit(ANALYST, view, values)
        if r.text:
            raise self._fail(f"the approval form was not accepted: {r.text[:300]}")
        self._say("check", "The modal closed: the approval was accepted.")
        updated = self._wait(
            lambda: (
                m if "Waiting for a manager" in json.dumps((m := self._analysts_message()).blocks) else None
            ),
            "the analysts' message changing to 'Waiting for a manager'",
        )
        self._show(self._message_surface(updated, "update"))
        reply = self._wait(
            lambda: self._thread_reply("recommended approval"), "the recommendation in the thread"
        )
        self._show(self._message_surface(reply, "reply"))
        channel_ask = self._wait(
            lambda: next(iter(self.stack.slack.messages(MANAGERS_CHANNEL.id)), None),
            "the request in #credit-managers",
        )
        self._show(self._message_surface(channel_ask, "message"))
        dm = self._dm(MANAGER)
        ask = self._wait(
            lambda: next(iter(self.stack.slack.messages(dm)), None), f"the DM asking {MANAGER.name}"
        )
        self._show(self._message_surface(ask, "message"))
        self._say(
            "check",
            f"The approval waits for a manager; {MANAGER.name} was asked by DM and in #credit-managers.",
        )

    def _manager_confirms(self) -> None:
        self._begin(f"{MANAGER.name}, a manager, confirms")
        self._say("action", f"{MANAGER.name} opens Credit Desk's Home tab.")
        before = len(self.stack.slack.calls("views.publish"))
        event = {
            "type": "app_home_opened",
            "user": MANAGER.user_id,
            "tab": "home",
            "channel": "D0HOME0001",
            "event_ts": f"{time.time():.6f}",
        }
        self._expect_ok(self.stack.signed.event(event), "the app_home_opened event")
        try:
            self.stack.slack.wait_for("views.publish", before + 1, self.timeout)
        except TimeoutError as exc:
            raise self._fail("the Home tab was not published") from exc
        home = self.stack.slack.home_view(MANAGER.user_id)
        self._show(
            Surface(
                "home", f"Credit Desk's Home tab, as {MANAGER.name} sees it", tuple(home["blocks"]), view=home
            )
        )
        if f"#{self._app_id}" not in json.dumps(home["blocks"]):
            raise self._fail(f"{MANAGER.name}'s Home tab does not list application #{self._app_id}")
        self._say("check", f"{MANAGER.name}'s Home tab lists the application waiting for her.")
        dm = self._dm(MANAGER)
        ask = self.stack.slack.messages(dm)[0]
        self._say("action", f"{MANAGER.name} clicks Approve in the DM.")
        self._click(MANAGER, ask, ActionId.MANAGER_CONFIRM)
        updated = self._wait(
            lambda: m if self._button((m := self._analysts_message()).blocks or [], ActionId.LINK) else None,
            "the analysts' message changing to Approved",
        )
        self._show(self._message_surface(updated, "update"))
        reply = self._wait(lambda: self._thread_reply("confirmed approval"), "the confirmation in the thread")
        self._show(self._message_surface(reply, "reply"))
        dm_now = self.stack.slack.message(dm, ask.ts)
        self._show(self._message_surface(dm_now, "update"))
        self._say("check", "The application is approved; the message now offers Link to NetSuite Record.")

    def _analyst_links(self) -> int:
        self._begin(f"{ANALYST.name} links the application to the NetSuite customer")
        c = self._customer
        assert c is not None
        self._say("action", f"{ANALYST.name} clicks Link to NetSuite Record.")
        updates_before = len(self.stack.slack.calls("views.update"))
        self._click(ANALYST, self._analysts_message(), ActionId.LINK)
        view = self._next_view()
        view_id = str(view["id"])
        try:
            self.stack.slack.wait_for("views.update", updates_before + 1, self.timeout)
        except TimeoutError as exc:
            raise self._fail("the link modal never showed suggested matches") from exc
        view = self.stack.slack.view(view_id)
        self._show(Surface("modal", f"Modal for {ANALYST.name}", tuple(view["blocks"]), view=view))
        if "Suggested matches" not in json.dumps(view["blocks"]):
            raise self._fail("the link modal shows no suggested matches")
        self._say("check", "The modal suggests matching NetSuite customers.")

        def options_for(query: str) -> dict[str, Any]:
            payload = block_suggestion_payload(
                ActionId.LINK_CUSTOMER,
                query,
                block_id=BlockId.LINK_CUSTOMER,
                user_id=ANALYST.user_id,
                view=view,
            )
            r = self._expect_ok(self.stack.signed.interaction(payload), "the options load")
            answer = r.json()
            if not isinstance(answer, dict):
                raise self._fail(f"the options load answered {r.text[:200]}")
            return answer

        self._say("action", f"{ANALYST.name} opens the Existing customer menu.")
        suggested = options_for("")
        self._show(Surface("options", "Existing customer ▾ (before typing)", options=suggested))
        if str(c.internal_id) not in _option_values(suggested):
            raise self._fail(f"{c.company_name} ({c.internal_id}) is not among the suggestions")
        query = c.company_name.split()[0] if len(c.company_name.split()[0]) >= 4 else c.company_name[:8]
        self._say("action", f"{ANALYST.name} types “{query}”: the menu searches the mirror.")
        found = options_for(query)
        self._show(Surface("options", f"Existing customer ▾ “{query}”", options=found))
        if str(c.internal_id) not in _option_values(found):
            raise self._fail(f"searching “{query}” did not find {c.company_name} ({c.internal_id})")
        self._say("check", f"The search finds {c.company_name}.")
        self._say("action", f"{ANALYST.name} picks {c.company_name} ({c.internal_id}) and presses Next.")
        values: dict[str, Any] = {
            BlockId.LINK_MODE: {
                ActionId.LINK_MODE: {"type": "radio_buttons", "selected_option": {"value": "existing"}}
            },
            BlockId.LINK_CUSTOMER: {
                ActionId.LINK_CUSTOMER: {
                    "type": "external_select",
                    "selected_option": {"value": str(c.internal_id)},
                }
            },
            BlockId.LINK_CONFIRM_NEW: {
                ActionId.LINK_CONFIRM_NEW: {"type": "checkboxes", "selected_options": []}
            },
        }
        answer = self._submit(ANALYST, view, values).json()
        if (
            answer.get("response_action") != "update"
            or answer.get("view", {}).get("callback_id") != CallbackId.PICK
        ):
            raise self._fail(f"the link was not accepted: {json.dumps(answer)[:300]}")
        self._pick_view = {**answer["view"], "id": view_id}
        self._show(
            Surface(
                "modal", f"Modal for {ANALYST.name}", tuple(answer["view"]["blocks"]), view=answer["view"]
            )
        )
        self._say("check", "Linked: the modal compares our values with NetSuite's.")
        return c.internal_id

    def _analyst_syncs(self, customer_id: int) -> None:
        self._begin(f"{ANALYST.name} ticks the fields and syncs")
        pick = self._pick_view
        element = next(
            (b["element"] for b in pick["blocks"] if b.get("block_id") == BlockId.SYNC_FIELDS), None
        )
        if element is None:
            raise self._fail("the sync modal offers no fields to write")
        labels = {str(o["value"]): render.plain_text(o["text"]) for o in element["options"]}
        ticked = [str(o["value"]) for o in element.get("initial_options", [])]
        if "credit_terms" in labels and "credit_terms" not in ticked:
            ticked.append("credit_terms")
        if not ticked:
            ticked = list(labels)
        self._say("action", f"{ANALYST.name} ticks {', '.join(labels[v] for v in ticked)} and presses Sync.")
        replies = self._replies()
        values: dict[str, Any] = {
            BlockId.SYNC_FIELDS: {
                ActionId.SYNC_FIELDS: {
                    "type": "checkboxes",
                    "selected_options": [{"value": v} for v in ticked],
                }
            }
        }
        r = self._submit(ANALYST, pick, values)
        if r.text:
            raise self._fail(f"the sync was not accepted: {r.text[:300]}")
        asked = self._wait(
            lambda: self._thread_reply("asked to sync", replies), "the sync request in the thread"
        )
        self._show(self._message_surface(asked, "reply"))
        self._say("info", "The worker writes to the NetSuite emulator…")
        outcome = self._wait(
            lambda: (
                self._thread_reply("Synced", replies)
                or self._thread_reply("failed", replies)
                or self._thread_reply("changed since", replies)
            ),
            "the sync result in the thread",
        )
        self._show(self._message_surface(outcome, "reply"))
        if "Synced" not in outcome.text + json.dumps(outcome.blocks or []):
            raise self._fail(f"the sync did not succeed: {outcome.text}")
        record = self.stack.emulator.state.get_customer(customer_id)
        if record is None:
            raise self._fail(f"customer {customer_id} is gone from the emulator")
        if "credit_terms" in ticked:
            if record.credit_limit is None or Decimal(record.credit_limit) != APPROVED_LIMIT:
                raise self._fail(f"NetSuite's credit limit is {record.credit_limit}, not {APPROVED_LIMIT}")
            self._say(
                "check",
                f"NetSuite now holds a credit limit of ${APPROVED_LIMIT:,.2f} for {record.company_name}.",
            )
        link = _LINK.search(json.dumps(outcome.blocks or [], ensure_ascii=False))
        if link is None:
            raise self._fail("the sync result has no link to the NetSuite record")
        url = link.group(1)
        got = httpx.get(url, timeout=10.0)
        self._say("http", f"GET {url} → {got.status_code}")
        if got.status_code != 200 or got.json().get("id") not in (customer_id, str(customer_id)):
            raise self._fail(f"the record link {url} does not open customer {customer_id}")
        self._say("check", "The thread links to the record, and the link opens it in the emulator.")

    def _rep_checks_utilization(self) -> None:
        step = self._begin("A sales rep runs /utilization")
        rep = self._pick_rep()
        if rep is None:
            raise self._fail("the mirror holds no active sales rep with an email and customers")
        rep_person, customer_names = rep
        self.stack.slack.add_user(SlackUser(rep_person.user_id, rep_person.name, rep_person.email))
        self.transcript.names[rep_person.user_id] = rep_person.name
        self._say(
            "action",
            f"{rep_person.name}, a sales rep (Slack email {rep_person.email}, as in NetSuite), types "
            f"{UTILIZATION_COMMAND} in #credit-desk.",
        )
        response_url = self.stack.slack.response_url()
        self._response_urls.append(response_url)
        r = self.stack.signed.command(
            UTILIZATION_COMMAND,
            "",
            rep_person.user_id,
            user_name=rep_person.name.lower(),
            response_url=response_url,
        )
        if r.status_code == 404:
            step.skipped = True
            self._say(
                "skip", f"{UTILIZATION_COMMAND} is not registered in this build of Credit Desk: step skipped."
            )
            return
        self._expect_ok(r, f"{UTILIZATION_COMMAND}")
        body: Mapping[str, Any] | None = r.json() if r.content else None
        if not body or not (body.get("blocks") or body.get("text")):
            try:
                body = self.stack.slack.wait_for_response(response_url, 1, self.timeout)[0].body
            except TimeoutError as exc:
                raise self._fail(f"{UTILIZATION_COMMAND} answered nothing") from exc
        self._show(
            Surface(
                "ephemeral",
                f"#credit-desk, only visible to {rep_person.name}",
                tuple(body.get("blocks") or ()),
                str(body.get("text") or ""),
            )
        )
        shown = json.dumps(body, ensure_ascii=False)
        if not any(name in shown or render.slack_escape(name) in shown for name in customer_names):
            raise self._fail(f"the {UTILIZATION_COMMAND} answer names none of {rep_person.name}'s customers")
        self._say("check", f"{rep_person.name} sees the credit standing of their own customers.")

    def _pick_rep(self) -> tuple[Person, list[str]] | None:
        with transaction(self.stack.container.sessions, readonly=True) as s:
            counts = (
                select(NsCustomer.sales_rep_id, func.count().label("n"))
                .where(NsCustomer.sales_rep_id.is_not(None), NsCustomer.is_inactive.is_(False))
                .group_by(NsCustomer.sales_rep_id)
                .subquery()
            )
            row = s.execute(
                select(NsSalesRep)
                .join(counts, counts.c.sales_rep_id == NsSalesRep.internal_id)
                .where(NsSalesRep.is_inactive.is_(False), NsSalesRep.email.is_not(None))
                .order_by(counts.c.n.desc(), NsSalesRep.internal_id)
                .limit(1)
            ).scalar_one_or_none()
            if row is None or not row.email:
                return None
            names = list(
                s.scalars(
                    select(NsCustomer.company_name).where(
                        NsCustomer.sales_rep_id == row.internal_id, NsCustomer.company_name.is_not(None)
                    )
                )
            )
            return Person(REP_USER_ID, row.name, row.email, "sales rep"), [n for n in names if n]


def _chosen_terms(view: Mapping[str, Any]) -> str:
    """What the terms menu starts on (the requested terms), else Net 30, else its first option."""
    for block in view.get("blocks", []):
        if block.get("block_id") == BlockId.TERMS:
            element = block["element"]
            if element.get("initial_option"):
                return str(element["initial_option"]["value"])
            values = [str(o["value"]) for o in element.get("options", [])]
            if values:
                return "Net 30" if "Net 30" in values else values[0]
    return "Net 30"


def _option_values(answer: Mapping[str, Any]) -> set[str]:
    found = [o for g in answer.get("option_groups") or [] for o in g.get("options") or []]
    found += list(answer.get("options") or [])
    return {str(o.get("value")) for o in found}
