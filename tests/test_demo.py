"""`credit-desk demo` and `credit-desk dev`: the story end to end over real loopback HTTP, its failure report,
the HTML transcript, the Block Kit renderers, and the settings and Slack checks of `dev`."""

from __future__ import annotations

import ast
import re
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import typer
from pydantic import SecretStr
from sqlalchemy import create_engine, func, select, text
from typer.testing import CliRunner

from blocks import applications as app_blocks
from blocks import queue as queue_blocks
from bot.cli_demo import demo, dev
from bot.demo import render
from bot.demo.environment import (
    DEV_DATABASE_URL,
    DemoOptions,
    DemoStack,
    SlackConnectionError,
    check_slack_connection,
    emulator_settings,
    missing_dev_settings,
)
from bot.demo.story import (
    APPROVED_LIMIT,
    DemoFailed,
    DemoStory,
    Entry,
    Step,
    Transcript,
    transcript_html,
)
from bot.sandbox.slack_api import MockSlackServer
from storage.db import transaction
from storage.models import CreditApplication, NsCustomer
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[1]
HOSTILE_NOTE = '<script>alert("x")</script> & <b>bold</b> checked'
STEP_TITLES = [
    "Credit Desk mirrors NetSuite",
    "An application arrives through the intake API",
    "Ana, an analyst, approves above her band",
    "Mia, a manager, confirms",
    "Ana links the application to the NetSuite customer",
    "Ana ticks the fields and syncs",
    "A sales rep runs /utilization",
]


@dataclass
class Collector:
    """A reporter that keeps what the story reported, in order."""

    started: list[int] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)

    def step_started(self, step: Step) -> None:
        self.started.append(step.number)

    def entry_added(self, step: Step, entry: Entry, names: Mapping[str, str]) -> None:
        self.entries.append(entry)


class StrictHtml(HTMLParser):
    """Fails on a closing tag that does not match the open one, and records what is left open."""

    VOID = {"br", "hr", "img", "input", "meta", "link"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, (
            f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
        )
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_html(document: str) -> StrictHtml:
    assert document.startswith("<!DOCTYPE html>")
    parser = StrictHtml()
    parser.feed(document)
    parser.close()
    assert parser.stack == [], f"unclosed tags: {parser.stack}"
    return parser


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[DemoStack]:
    with DemoStack(DemoOptions(workdir=tmp_path / "demo", customers=120, step_timeout=20.0)) as running:
        yield running


def test_demo_story_runs_end_to_end_and_the_transcript_renders_it(stack: DemoStack) -> None:
    collector = Collector()
    story = DemoStory(stack, collector, note=HOSTILE_NOTE)
    transcript = story.run()
    assert transcript.completed
    assert [s.title for s in transcript.steps] == STEP_TITLES
    assert collector.started == [1, 2, 3, 4, 5, 6, 7]
    assert len(collector.entries) == sum(len(s.entries) for s in transcript.steps)
    exchanges = [e.text for e in transcript.steps[1].entries if e.kind == "http"]
    assert exchanges[:2] == ["GET /healthz → 200", "POST /api/applications → 201 /api/applications/1"]

    # What the story reports happened, did happen: in the database, in NetSuite, and in Slack.
    with transaction(stack.container.sessions, readonly=True) as s:
        (application,) = s.scalars(select(CreditApplication)).all()
        assert application.status == "approved"
        assert application.approved_credit_limit == APPROVED_LIMIT
    assert _linked_customer_holds_limit(stack)
    assert stack.slack.calls("views.open") and stack.slack.calls("views.publish")
    assert all(call.ok for call in stack.slack.calls()), [c.method for c in stack.slack.calls() if not c.ok]

    # Every surface of the story renders strictly in the terminal and in HTML.
    kinds = {s.kind for s in transcript.surfaces()}
    assert {"message", "update", "reply", "modal", "home", "options"} <= kinds
    for surface in transcript.surfaces():
        panel = render.surface_renderable(
            kind=surface.kind,
            where=surface.where,
            blocks=surface.blocks,
            text=surface.text,
            view=surface.view,
            options=surface.options,
            names=transcript.names,
            strict=True,
        )
        assert panel is not None
        if surface.blocks:
            assert render.blocks_text(surface.blocks, transcript.names, strict=True).strip()
    utilization = transcript.steps[-1]
    if utilization.skipped:
        assert [e.kind for e in utilization.entries][-1] == "skip"
    else:
        assert any(e.surface and e.surface.kind == "ephemeral" for e in utilization.entries)

    document = transcript_html(transcript, strict=True)
    parsed = parse_html(document)
    plain = "".join(parsed.text)
    for title in STEP_TITLES:
        assert title in plain
    # The analyst's note is shown, escaped, never as markup.
    assert "<script>" not in document and "<b>bold</b>" not in document
    assert (
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt; checked" in document
    )
    assert HOSTILE_NOTE in plain
    assert "&amp;amp;" not in document  # Slack's escapes are undone once, not shown
    classes = " ".join(attrs.get("class") or "" for _, attrs in parsed.tags)
    for rendered in (
        "surface modal",
        "surface home",
        "block header",
        "block context",
        "block actions",
        "block input",
        "fields",
        "btn btn-primary",
        "btn btn-danger",
        "dropdown",
        "modal-footer",
    ):
        assert rendered in classes, rendered
    tags = {tag for tag, _ in parsed.tags}
    assert {"select", "textarea", "blockquote", "strong", "a"} <= tags
    assert {"radio", "checkbox"} <= {attrs.get("type") for tag, attrs in parsed.tags if tag == "input"}

    # Surfaces the story does not reach, built from the story's real objects, render strictly too.
    assert stack.container.decisions is not None and stack.container.sync is not None
    state = stack.container.decisions.get(application.id)
    extra: list[list[dict[str, Any]]] = [
        app_blocks.reject_modal(state.application)["blocks"],
        app_blocks.details_modal(state.application, state.decisions)["blocks"],
        app_blocks.notice_modal("Credit Desk", "Nothing to do")["blocks"],
        queue_blocks.help_message(),
        queue_blocks.matches_message("acme", [state.application]),
        queue_blocks.pending_message(
            submitted=[state.application], submitted_total=1, awaiting=[], awaiting_total=0, is_manager=True
        ),
    ]
    from blocks.sync import syncs_message

    extra.append(syncs_message(stack.container.sync.pending_and_failed(50)))
    for blocks in extra:
        if blocks:
            assert render.blocks_text(blocks, strict=True).strip()
            parse_html(render.page_html("t", "l", [render.blocks_html(blocks, strict=True)]))


def _linked_customer_holds_limit(stack: DemoStack) -> bool:
    with transaction(stack.container.sessions, readonly=True) as s:
        from storage.models import NetSuiteLink

        link = s.scalars(select(NetSuiteLink)).one()
        customer_id = link.customer_internal_id
    assert customer_id is not None
    record = stack.emulator.state.get_customer(customer_id)
    return (
        record is not None
        and record.credit_limit is not None
        and Decimal(record.credit_limit) == APPROVED_LIMIT
    )


def test_a_step_that_does_not_happen_stops_the_demo_with_a_clear_message(stack: DemoStack) -> None:
    # The /utilization guard relies on Bolt answering an unregistered command with 404.
    assert stack.signed.command("/no-such-command", "", "U0DEMOANA1").status_code == 404
    stack.emulator.faults.fail(400, times=1000, method="PATCH")  # NetSuite refuses every update
    story = DemoStory(stack, Collector())
    with pytest.raises(DemoFailed) as failed:
        story.run()
    message = str(failed.value)
    assert message.startswith("step 6 (Ana ticks the fields and syncs): the sync did not succeed")
    assert story.transcript.completed is False
    document = transcript_html(story.transcript)
    parse_html(document)
    assert "The story stopped early." in document and "failed" in document


# --------------------------------------------------------------------------- the renderers


def test_mrkdwn_is_parsed_as_slack_shows_it() -> None:
    names = {"U0ANA": "Ana", "C0Q": "credit-desk"}
    (line,) = render.parse_mrkdwn(
        "*Bold* _it_ ~gone~ `a_b*c` <@U0ANA> in <#C0Q> <https://x.example/?a=1&amp;b=2|A &amp; B> "
        "<!date^1700000000^{date}|2023-11-14> &lt;tag&gt; credit_limit :white_check_mark:",
        names,
    )
    spans = {s.text: s for s in line.spans}
    assert spans["Bold"].bold and spans["it"].italic and spans["gone"].strike
    assert spans["a_b*c"].code and not spans["a_b*c"].bold
    assert spans["@Ana"].token and spans["#credit-desk"].token
    assert spans["A & B"].url == "https://x.example/?a=1&b=2"
    assert "2023-11-14" in spans
    assert line.text.endswith(" <tag> credit_limit ✅")
    assert not any(s.italic for s in line.spans if "credit" in s.text)
    quoted = render.parse_mrkdwn("said:\n> I <3 &amp; you")
    assert [ln.quote for ln in quoted] == [False, True] and quoted[1].text == "I <3 & you"
    html_out = render.mrkdwn_html('*a* &lt;script&gt; <https://e.example/"x|go>')
    link = '<a href="https://e.example/&quot;x" rel="noopener noreferrer">go</a>'
    assert html_out == f"<strong>a</strong> &lt;script&gt; {link}"


def test_unknown_block_types_are_refused_when_strict_and_visible_otherwise() -> None:
    odd = [{"type": "rich_text", "elements": []}]
    with pytest.raises(render.UnsupportedBlock, match="rich_text"):
        render.blocks_text(odd, strict=True)
    with pytest.raises(render.UnsupportedBlock, match="datetimepicker"):
        render.blocks_html([{"type": "actions", "elements": [{"type": "datetimepicker"}]}], strict=True)
    assert "rich_text" in render.blocks_text(odd)
    assert 'class="block unsupported"' in render.blocks_html(odd)


def test_every_block_and_element_type_the_product_builds_is_rendered() -> None:
    """Every `"type": "..."` the product writes into Block Kit is one the renderers know."""
    known = (
        render.KNOWN_BLOCK_TYPES
        | render.KNOWN_ELEMENT_TYPES
        | render.KNOWN_TEXT_TYPES
        | render.KNOWN_VIEW_TYPES
    )
    sources = [*sorted((ROOT / "blocks").glob("*.py")), *sorted((ROOT / "handlers").glob("*.py"))]
    sources.append(ROOT / "bot" / "notifications.py")
    found: set[str] = set()
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if (
                        isinstance(key, ast.Constant)
                        and key.value == "type"
                        and isinstance(value, ast.Constant)
                        and isinstance(value.value, str)
                    ):
                        found.add(value.value)
    assert {"section", "actions", "input", "modal"} <= found  # the scan sees the builders
    assert found <= known, found - known


def test_terminal_text_shows_fields_inputs_and_choices() -> None:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Title <x>"}},
        {
            "type": "section",
            "fields": [{"type": "mrkdwn", "text": "*A*\n1"}, {"type": "mrkdwn", "text": "*B*\n2"}],
        },
        {
            "type": "input",
            "label": {"type": "plain_text", "text": "Pick"},
            "optional": True,
            "element": {
                "type": "checkboxes",
                "options": [
                    {"text": {"type": "plain_text", "text": "One"}, "value": "1"},
                    {"text": {"type": "plain_text", "text": "Two"}, "value": "2"},
                ],
                "initial_options": [{"text": {"type": "plain_text", "text": "Two"}, "value": "2"}],
            },
        },
        {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Go"}}]},
        {"type": "image", "image_url": "https://e.example/i.png", "alt_text": "chart"},
        {"type": "divider"},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "by <@U1>"}]},
    ]
    out = render.blocks_text(blocks, {"U1": "Ana"}, strict=True)
    assert "Title <x>" in out
    assert re.search(r"A\s+B", out) and re.search(r"1\s+2", out)
    assert "Pick (optional)" in out and "[ ] One" in out and "[x] Two" in out
    assert "[ Go ]" in out and "[image — chart]" in out and "by @Ana" in out


# --------------------------------------------------------------------------- the commands


def cli() -> typer.Typer:
    """The two commands as `bot.cli` registers them."""
    app = typer.Typer()
    app.command("demo")(demo)
    app.command("dev")(dev)
    return app


def test_demo_command_runs_and_writes_the_transcript(tmp_path: Path) -> None:
    out = tmp_path / "transcript.html"
    result = CliRunner().invoke(
        cli(),
        ["demo", "--out", str(out), "--customers", "60", "--dir", str(tmp_path / "d")],
        env={"COLUMNS": "100"},
    )
    assert result.exit_code == 0, result.output
    assert "The demo ran to the end." in result.output
    assert "Step 7 · A sales rep runs /utilization" in result.output
    parse_html(out.read_text(encoding="utf-8"))
    assert (tmp_path / "d" / "credit-desk-demo.db").exists()


def test_dev_names_every_missing_setting() -> None:
    result = CliRunner().invoke(cli(), ["dev"], env={"SLACK_BOT_TOKEN": "xoxb-only"})
    assert result.exit_code == 2
    assert "SLACK_APP_TOKEN: an app-level token" in result.output
    assert "SLACK_SIGNING_SECRET: the signing secret" in result.output
    assert "SLACK_BOT_TOKEN:" not in result.output
    settings = make_settings(slack_app_token="xapp-1", slack_bot_token="xoxb-1", slack_signing_secret="s")
    assert missing_dev_settings(settings) == []


def test_dev_mirrors_the_emulator_builds_the_app_and_explains_why_it_cannot_connect(tmp_path: Path) -> None:
    with MockSlackServer() as slack:
        env = {
            "SLACK_APP_TOKEN": "xapp-1-A0TEST-123-abc",
            "SLACK_BOT_TOKEN": "xoxb-dev-test",
            "SLACK_SIGNING_SECRET": "dev-secret",
            "SLACK_API_URL": slack.url,
            "NETSUITE_ACCOUNT_ID": "7654321",
            "LOG_LEVEL": "WARNING",
            "COLUMNS": "250",
        }
        result = CliRunner().invoke(cli(), ["dev", "--customers", "40"], env=env)
        assert result.exit_code == 2, result.output
        assert "NETSUITE_* settings are ignored" in result.output
        assert "40 customers mirrored" in result.output
        assert "does not offer Socket Mode (apps.connections.open: unknown_method)" in result.output
        assert "credit-desk demo" in result.output
        (auth,) = slack.calls("auth.test")
        assert auth.token == "xoxb-dev-test"
        (connect,) = slack.calls("apps.connections.open")
        assert connect.token == "xapp-1-A0TEST-123-abc"
    database = Path.cwd() / DEV_DATABASE_URL.removeprefix("sqlite:///")
    engine = create_engine(f"sqlite:///{database}")
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(NsCustomer)).scalar_one() == 40
        assert conn.execute(text("SELECT COUNT(*) FROM ns_sales_reps")).scalar_one() > 0
    engine.dispose()


def test_slack_checks_name_the_setting_at_fault() -> None:
    with MockSlackServer(valid_tokens={"xoxb-good"}) as slack:
        base = {"slack_signing_secret": "s", "slack_api_url": slack.url}
        bad_bot = make_settings(slack_bot_token="xoxb-bad", slack_app_token="xapp-1", **base)
        with pytest.raises(
            SlackConnectionError, match=r"refused SLACK_BOT_TOKEN \(auth.test at .*invalid_auth\)"
        ):
            check_slack_connection(bad_bot)
        not_app_level = make_settings(slack_bot_token="xoxb-good", slack_app_token="xoxb-good", **base)
        with pytest.raises(SlackConnectionError, match="SLACK_APP_TOKEN must be an app-level token"):
            check_slack_connection(not_app_level)
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/api/"
    unreachable = make_settings(
        slack_bot_token="xoxb-1", slack_app_token="xapp-1", slack_signing_secret="s", slack_api_url=closed
    )
    with pytest.raises(SlackConnectionError, match="cannot reach the Slack API"):
        check_slack_connection(unreachable)


def test_emulator_settings_point_netsuite_at_the_emulator_and_keep_a_chosen_database() -> None:
    default = emulator_settings(make_settings(netsuite_account_id="999"), "http://127.0.0.1:9")
    assert default.netsuite_base_url == "http://127.0.0.1:9"
    assert default.netsuite_account_id != "999"
    assert default.database_dsn == DEV_DATABASE_URL
    assert default.netsuite_record_url_template.startswith("http://127.0.0.1:9/")
    chosen = emulator_settings(
        make_settings(database_url=SecretStr("sqlite:///mine.db")), "http://127.0.0.1:9"
    )
    assert chosen.database_dsn == "sqlite:///mine.db"


def test_transcript_of_nothing_is_still_a_valid_page() -> None:
    parse_html(transcript_html(Transcript()))
