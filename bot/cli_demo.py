"""`credit-desk demo` and `credit-desk dev`: plain functions with Typer annotations, registered by `bot.cli`.

`demo` needs nothing but this package: it starts everything on loopback, walks the story and writes an HTML
transcript. `dev` runs the bot in a real Slack workspace over Socket Mode with the NetSuite emulator standing
in for NetSuite. `bot.cli` is imported inside the functions (it imports this module to register them).
"""

from __future__ import annotations

import shutil
import signal
import tempfile
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape


def demo(
    out: Annotated[Path, typer.Option("--out", help="Where to write the HTML transcript.")] = Path(
        "credit-desk-demo.html"
    ),
    keep_running: Annotated[
        bool,
        typer.Option("--keep-running", help="Keep the servers up after the story (Ctrl-C stops them)."),
    ] = False,
    customers: Annotated[
        int, typer.Option(min=10, max=100_000, help="Customers in the NetSuite emulator.")
    ] = 300,
    workdir: Annotated[
        Path | None,
        typer.Option("--dir", help="Keep the demo database here (default: a temporary directory, removed)."),
    ] = None,
    timeout: Annotated[float, typer.Option(min=1, max=600, help="Seconds to wait for each step.")] = 20.0,
) -> None:
    """Run the whole story on this machine (no Slack or NetSuite account): an application arrives, is
    approved above the band, confirmed by a manager, linked to a NetSuite customer and synced; a rep runs
    /utilization. Prints what Slack shows and writes an HTML transcript."""
    from bot.demo.environment import DemoOptions, DemoStack
    from bot.demo.story import DemoFailed, DemoStory, TerminalReporter, transcript_html
    from bot.observability import configure_logging

    console = Console()
    err = Console(stderr=True)
    configure_logging("WARNING", "console")
    temporary = workdir is None
    directory = Path(tempfile.mkdtemp(prefix="credit-desk-demo-")) if workdir is None else workdir
    failure: DemoFailed | None = None
    try:
        options = DemoOptions(workdir=directory, customers=customers, step_timeout=timeout)
        console.print(
            f"Starting Credit Desk, the NetSuite emulator ({customers} customers) and a local Slack…"
        )
        with DemoStack(options) as stack:
            console.print(f"Web app on {stack.web_url}, NetSuite emulator on {stack.emulator.url}.")
            story = DemoStory(stack, TerminalReporter(console))
            try:
                story.run()
            except DemoFailed as exc:
                failure = exc
            out.write_text(transcript_html(story.transcript), encoding="utf-8")
            console.print()
            console.print(f"Transcript written to [bold]{escape(str(out.resolve()))}[/bold].")
            if failure is None:
                console.print("[green]The demo ran to the end.[/green]")
            if keep_running and failure is None:
                _wait_for_interrupt(console, stack.web_url, stack.emulator.url, stack.slack.url, directory)
    finally:
        if temporary:
            shutil.rmtree(directory, ignore_errors=True)
    if failure is not None:
        err.print(f"[red]The demo stopped:[/red] {escape(str(failure))}")
        raise typer.Exit(1)


def _wait_for_interrupt(console: Console, web: str, emulator: str, slack: str, directory: Path) -> None:
    """Block until Ctrl-C or SIGTERM, then return so that everything is stopped and cleaned up."""
    console.print(
        f"Still running: the web app on {web}, the NetSuite emulator on {emulator}, "
        f"the local Slack API on {slack}; the database is in {escape(str(directory))}. Ctrl-C stops them."
    )
    stop = threading.Event()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda _sig, _frame: stop.set())
    try:
        stop.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    console.print("Stopping.")


def dev(
    customers: Annotated[
        int, typer.Option(min=10, max=100_000, help="Customers in the NetSuite emulator.")
    ] = 300,
    seed: Annotated[int, typer.Option(help="Seed of the emulator's account (same seed, same data).")] = 1,
) -> None:
    """Run the bot in your own Slack workspace over Socket Mode, with the NetSuite emulator standing in for
    NetSuite (needs SLACK_APP_TOKEN, SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET). Blocks until stopped."""
    from bot.cli import _container, err_console, load_settings
    from bot.demo.environment import (
        SlackConnectionError,
        check_slack_connection,
        emulator_settings,
        missing_dev_settings,
    )

    settings = load_settings()
    missing = missing_dev_settings(settings)
    if missing:
        err_console.print("[red]`credit-desk dev` needs these settings (environment or .env):[/red]")
        for line in missing:
            err_console.print(f"  {line}", markup=False, highlight=False)
        err_console.print(
            "Create the Slack app from app.yaml with socket_mode_enabled: true; "
            "to try Credit Desk without Slack, run `credit-desk demo`."
        )
        raise typer.Exit(2)
    if settings.netsuite_account_id is not None:
        err_console.print(
            "[yellow]NETSUITE_* settings are ignored: `credit-desk dev` uses the NetSuite emulator.[/yellow]"
        )
    from bot.mirror.ingest import run_ingest
    from netsuite.emulator import EmulatorServer

    with EmulatorServer(seed=seed, customers=customers) as emulator:
        dev_settings = emulator_settings(settings, emulator.url)
        container = _container(dev_settings)
        worker = None
        try:
            if container.bolt is None:  # unreachable after the checks above, but say so rather than assert
                err_console.print(
                    "[red]Slack is not configured: set SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN.[/red]"
                )
                raise typer.Exit(2)
            report = run_ingest(container, full=True)
            err_console.print(
                f"NetSuite emulator on {emulator.url}: {report.customers_read} customers mirrored "
                f"into {escape(dev_settings.database_dsn if dev_settings.is_sqlite else 'the database')}."
            )
            try:
                workspace = check_slack_connection(dev_settings)
            except SlackConnectionError as exc:
                err_console.print(f"[red]{escape(str(exc))}[/red]")
                raise typer.Exit(2) from exc
            if dev_settings.run_embedded_worker:
                from bot.worker import EmbeddedWorker

                worker = EmbeddedWorker(container).start()
            err_console.print(f"Connecting to {escape(workspace)} over Socket Mode. Ctrl-C stops.")
            from bot.slack_app import run_socket_mode

            token = dev_settings.slack_app_token
            assert token is not None
            try:
                run_socket_mode(container.bolt, token.get_secret_value())
            except ValueError as exc:
                err_console.print(f"[red]{escape(str(exc))}[/red]")
                raise typer.Exit(2) from exc
            except KeyboardInterrupt:
                err_console.print("Stopping.")
        finally:
            if worker is not None:
                worker.stop()
            container.close()
