"""NetSuite commands of the `credit-desk` CLI: `ingest` and `netsuite-emulator`.

Plain functions with Typer annotations; `bot.cli` registers them (`app.command("ingest")(ingest)`).
`bot.cli` is imported inside the functions, because `bot.cli` imports this module to register them.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from netsuite.emulator import AuthConfig

EMULATOR_ACCOUNT_ID = "1234567_SB1"
EMULATOR_KEY_FILE = "netsuite-emulator-oauth2.pem"


def ingest(
    full: Annotated[
        bool, typer.Option("--full", help="Re-read every customer (and drop those NetSuite no longer has).")
    ] = False,
) -> None:
    """Bring the customer mirror up to date with NetSuite (incremental unless --full; resumes an
    interrupted run)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    from bot.cli import _container, console, err_console, load_settings
    from bot.mirror.ingest import IngestProgress, NetSuiteNotConfigured
    from bot.mirror.jobs import run_exclusive
    from netsuite.errors import NetSuiteError

    settings = load_settings()
    container = _container(settings)
    try:
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[changed]} changed"),
            TimeElapsedColumn(),
            console=err_console,
            transient=False,
        ) as bar:
            tasks: dict[str, TaskID] = {}

            def show(event: IngestProgress) -> None:
                if event.stage not in tasks:
                    tasks[event.stage] = bar.add_task(event.stage, total=event.total, changed=0)
                bar.update(tasks[event.stage], completed=event.done, total=event.total, changed=event.changed)

            report = run_exclusive(container, full=full, progress=show)
    except NetSuiteNotConfigured as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    except ValueError as exc:  # settings that cannot make a NetSuite connection
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    except NetSuiteError as exc:
        err_console.print(f"[red]NetSuite failed:[/red] {exc}")
        err_console.print("What was read so far is kept; run `credit-desk ingest` again to resume.")
        raise typer.Exit(1) from exc
    finally:
        container.close()
    if report is None:
        err_console.print("[yellow]Another ingest is running; try again when it has finished.[/yellow]")
        raise typer.Exit(1)
    console.print(report.summary())


def netsuite_emulator(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port on 127.0.0.1.")] = 8089,
    seed: Annotated[int, typer.Option(help="Seed of the generated account (same seed, same data).")] = 1,
    customers: Annotated[int, typer.Option(min=0, help="Customers in the generated account.")] = 1000,
    latency_ms: Annotated[float, typer.Option(min=0, help="Added to every request.")] = 0.0,
    concurrency_cap: Annotated[
        int | None, typer.Option(min=1, help="Requests in flight before 429s (default: no cap).")
    ] = None,
    auth: Annotated[str, typer.Option(help="off, tba or oauth2.")] = "off",
) -> None:
    """Serve a local NetSuite emulator on 127.0.0.1 and print the settings that point Credit Desk at it."""
    from netsuite.emulator import AuthConfig, TbaCredentials, run

    if auth not in ("off", "tba", "oauth2"):
        raise typer.BadParameter("must be off, tba or oauth2", param_hint="--auth")
    env = {
        "NETSUITE_ACCOUNT_ID": EMULATOR_ACCOUNT_ID,
        "NETSUITE_BASE_URL": f"http://127.0.0.1:{port}",
    }
    if auth == "oauth2":
        auth_config, extra = _oauth2_setup(Path.cwd() / EMULATOR_KEY_FILE)
        env.update(extra)
    else:
        creds = TbaCredentials(*(secrets.token_hex(16) for _ in range(4)))
        auth_config = (
            AuthConfig(account_id=EMULATOR_ACCOUNT_ID, tba=[creds]) if auth == "tba" else AuthConfig.off()
        )
        env.update(
            {
                "NETSUITE_AUTH_MODE": "tba",
                "NETSUITE_TBA_CONSUMER_KEY": creds.consumer_key,
                "NETSUITE_TBA_CONSUMER_SECRET": creds.consumer_secret,
                "NETSUITE_TBA_TOKEN_ID": creds.token_id,
                "NETSUITE_TBA_TOKEN_SECRET": creds.token_secret,
            }
        )
    typer.echo(f"NetSuite emulator: {customers} customers (seed {seed}), auth {auth}. Settings for .env:")
    for name, value in env.items():
        typer.echo(f"{name}={value}")
    typer.echo("Ctrl-C stops it.")
    run(
        port,
        seed,
        customers,
        latency_ms=latency_ms,
        concurrency_cap=concurrency_cap,
        auth=auth_config,
    )


def _oauth2_setup(key_path: Path) -> tuple[AuthConfig, dict[str, str]]:
    """A fresh EC P-256 key pair: the emulator trusts the public half, the private half goes to a
    file readable by this user only (the setting takes the PEM text itself)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from netsuite.emulator import AuthConfig

    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private)
    client_id, certificate_id = f"emulator-{secrets.token_hex(4)}", f"cert-{secrets.token_hex(4)}"
    config = AuthConfig(
        account_id=EMULATOR_ACCOUNT_ID, client_id=client_id, certificates={certificate_id: public}
    )
    return config, {
        "NETSUITE_AUTH_MODE": "oauth2",
        "NETSUITE_OAUTH2_CLIENT_ID": client_id,
        "NETSUITE_OAUTH2_CERTIFICATE_ID": certificate_id,
        "NETSUITE_OAUTH2_ALGORITHM": "ES256",
        "NETSUITE_OAUTH2_PRIVATE_KEY_PEM": f'"$(cat {key_path})"  # or paste the PEM text',
    }
