"""The `credit-desk` command line (Typer + rich).

Imports of heavy modules happen inside the commands: `serve` must set up multi-process metrics before anything
imports prometheus_client, and `config` should answer even when a dependency is misconfigured.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bot.settings import Settings, describe, features

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Credit Desk: credit onboarding in Slack.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
apps_app = typer.Typer(no_args_is_help=True, help="Credit applications.")
app.add_typer(db_app, name="db")
app.add_typer(apps_app, name="applications")

console = Console()
err_console = Console(stderr=True)


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        err_console.print("[red]Configuration error:[/red]")
        for e in exc.errors(include_url=False):
            name = ".".join(str(p) for p in e["loc"]).upper()
            err_console.print(f"  {name}: {e['msg']}", markup=False)
        raise typer.Exit(2) from exc


def _container(settings: Settings, *, migrate_now: bool | None = None):  # type: ignore[no-untyped-def]
    from bot.container import build_container
    from bot.observability import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    return build_container(settings, migrate_now=migrate_now)


@app.command()
def config() -> None:
    """Print the effective settings (secrets masked) and which features are off, and why."""
    settings = load_settings()
    table = Table(title="Credit Desk settings", show_lines=False)
    table.add_column("Setting", style="bold")
    table.add_column("Value")
    table.add_column("Meaning", style="dim")
    for name, value, meaning in describe(settings):
        table.add_row(name, value, meaning)
    console.print(table)
    mode = (
        "embedded defaults (SQLite file, in-process Redis stand-in, web and worker in one process)"
        if settings.embedded and settings.is_sqlite
        else "embedded Redis stand-in (one process)"
        if settings.embedded
        else "production (external Redis; run `credit-desk worker` processes beside `serve`)"
    )
    console.print(f"Mode: {mode}")
    feats = Table(title="Features")
    feats.add_column("Feature")
    feats.add_column("State")
    for f in features(settings):
        feats.add_row(f.name, "[green]on[/green]" if f.enabled else f"[yellow]off[/yellow]: {f.why_off}")
    console.print(feats)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default PORT).")] = None,
) -> None:
    """Run the web app under gunicorn (and, on embedded defaults, a job worker in the same process)."""
    from bot.serve import serve as run

    settings = load_settings()
    run(settings, host=host, port=port)


@app.command()
def worker(
    burst: Annotated[bool, typer.Option(help="Run queued jobs, then exit.")] = False,
    threads: Annotated[
        int | None, typer.Option(min=1, max=64, help="Jobs at once (default WORKER_THREADS).")
    ] = None,
) -> None:
    """Run an RQ worker for background jobs (needs REDIS_URL: fakeredis lives inside `serve`)."""
    settings = load_settings()
    if settings.uses_fakeredis:
        err_console.print(
            "[red]REDIS_URL is unset:[/red] the in-process Redis stand-in is private to `credit-desk serve`, "
            "which already runs a worker thread. Set REDIS_URL to run separate workers."
        )
        raise typer.Exit(2)
    from bot.worker import run_worker

    run_worker(_container(settings), burst=burst, threads=threads or settings.worker_threads)


@app.command()
def socket() -> None:
    """Serve Slack over Socket Mode (no public URL; needs SLACK_APP_TOKEN). Blocks until stopped."""
    settings = load_settings()
    if settings.slack_app_token is None:
        err_console.print(
            "[red]SLACK_APP_TOKEN is unset:[/red] make an app-level token with connections:write."
        )
        raise typer.Exit(2)
    container = _container(settings)
    try:
        if container.bolt is None:
            err_console.print(
                "[red]Slack is not configured:[/red] set SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN."
            )
            raise typer.Exit(2)
        worker = None
        if settings.run_embedded_worker:  # fakeredis lives in this process: run the jobs here too
            from bot.worker import EmbeddedWorker

            worker = EmbeddedWorker(container).start()
        from bot.slack_app import run_socket_mode

        try:
            run_socket_mode(container.bolt, settings.slack_app_token.get_secret_value())
        except ValueError as exc:
            err_console.print(f"[red]{escape(str(exc))}[/red]")
            raise typer.Exit(2) from exc
        finally:
            if worker is not None:
                worker.stop()
    finally:
        container.close()


@app.command()
def keygen() -> None:
    """Print a new key for FEDERAL_ID_KEY."""
    from bot.federal_id import generate_key

    typer.echo(generate_key())


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply migrations. Safe when several processes run it at once."""
    from storage import migrate
    from storage.db import make_engine

    settings = load_settings()
    engine = make_engine(settings.database_dsn)
    try:
        migrate.upgrade(engine, revision)
        console.print(f"Database at revision [bold]{migrate.current_revision(engine)}[/bold].")
    finally:
        engine.dispose()


@db_app.command("current")
def db_current() -> None:
    """Show the schema revision and whether it is at head."""
    from storage import migrate
    from storage.db import make_engine

    engine = make_engine(load_settings().database_dsn)
    try:
        current, head = migrate.current_revision(engine), migrate.head_revision()
        state = "at head" if current == head else f"behind (head is {head})"
        console.print(f"Revision {current or '(none)'}: {state}.")
        if current != head:
            raise typer.Exit(1)
    finally:
        engine.dispose()


@apps_app.command("import")
def applications_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    fmt: Annotated[str | None, typer.Option("--format", help="jsonl or csv (default: by suffix).")] = None,
) -> None:
    """Import applications from JSON lines or CSV; repeats are known by reference, bad lines listed."""
    from bot.applications.importer import detect_format, import_records, read_records

    settings = load_settings()
    try:
        chosen = fmt or detect_format(file)
        text = file.read_text(encoding="utf-8-sig")
    except (ValueError, UnicodeDecodeError) as exc:
        err_console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from exc
    container = _container(settings)
    if container.applications is None:
        err_console.print("[red]The Federal ID key is missing: set FEDERAL_ID_KEY.[/red]")
        raise typer.Exit(2)
    counts: dict[str, int] = {"created": 0, "repeat": 0, "invalid": 0, "conflict": 0}
    try:
        for outcome in import_records(
            container.applications, read_records(text, chosen), actor=f"cli:import:{file.name}"
        ):
            counts[outcome.status] += 1
            if outcome.errors:
                ref = f" ({outcome.reference})" if outcome.reference else ""
                err_console.print(f"[yellow]line {outcome.line}{escape(ref)}: {outcome.status}[/yellow]")
                for message in outcome.errors:
                    err_console.print(f"    {message}", markup=False, highlight=False)
    except ValueError as exc:
        err_console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from exc
    finally:
        container.close()
    console.print(
        f"{counts['created']} created, {counts['repeat']} already present, "
        f"{counts['invalid']} invalid, {counts['conflict']} conflicting."
    )
    if counts["invalid"] or counts["conflict"]:
        raise typer.Exit(1)


@apps_app.command("show")
def applications_show(application_id: int) -> None:
    """Print one application as JSON (Federal ID masked)."""
    container = _container(load_settings())
    try:
        if container.applications is None:
            err_console.print("[red]The Federal ID key is missing: set FEDERAL_ID_KEY.[/red]")
            raise typer.Exit(2)
        found = container.applications.get(application_id)
    finally:
        container.close()
    if found is None:
        err_console.print(f"No application {application_id}.")
        raise typer.Exit(1)
    typer.echo(json.dumps(found.model_dump(mode="json"), indent=2))


def _register_more_commands() -> None:
    from bot.cli_demo import demo, dev
    from bot.cli_netsuite import ingest, netsuite_emulator

    app.command("ingest")(ingest)
    app.command("netsuite-emulator")(netsuite_emulator)
    app.command("demo")(demo)
    app.command("dev")(dev)


_register_more_commands()


def main() -> None:
    app()
