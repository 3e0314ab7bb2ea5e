"""Slack listeners. Each surface has a module with `register(app, container)`; `register_all` wires them.

Handlers parse, authorize, `ack()` within Slack's 3 s and call a service: no business rules, no SQL, no HTTP.
The listeners themselves arrive with the approvals work; the foundation wires Bolt and its error handling.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog
from slack_bolt import App
from slack_sdk.errors import SlackApiError

if TYPE_CHECKING:
    from bot.container import Container

log = structlog.get_logger(__name__)


def register_all(app: App, container: Container) -> None:
    from handlers import applications, commands, home, netsuite_link, utilization

    if container.decisions is not None and container.applications is not None:
        applications.register(app, container)
        commands.register(app, container)
        home.register(app, container)
        if container.sync is not None and container.suggester is not None:
            netsuite_link.register(app, container)
    if container.utilization is not None:
        utilization.register(app, container)

    @app.error
    def _log_errors(error: Exception, body: dict[str, Any]) -> None:
        # A malformed or unexpected payload must never take a worker down: log it and move on.
        # A Slack API refusal (429, expired trigger) says all in its repr; rendering its traceback on a
        # listener thread only costs CPU (with the console renderer, rich tracebacks took seconds of GIL
        # during a 429 storm and held other listeners past their 3 s to ack).
        log.error(
            "slack.listener_error",
            error=repr(error),
            payload_type=body.get("type"),
            exc_info=None if isinstance(error, SlackApiError) else error,
        )
