"""App Home: analysts see the queue of pending applications, managers what awaits them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_bolt import App
from slack_sdk import WebClient

from blocks.queue import MAX_ITEMS_HOME, home_view
from blocks.utilization import add_home_section
from bot.applications.schemas import QueueItem
from bot.decisions.policy import Role
from handlers.utilization import home_blocks

if TYPE_CHECKING:
    from bot.container import Container


def register(app: App, container: Container) -> None:
    applications = container.applications
    roles = container.roles
    assert applications is not None and roles is not None

    @app.event("app_home_opened")
    def home_opened(event: dict[str, Any], client: WebClient) -> None:
        if event.get("tab") not in (None, "home"):
            return
        actor = roles.actor(event["user"])
        is_analyst, is_manager = actor.has(Role.ANALYST, Role.ADMIN), actor.has(Role.MANAGER)
        submitted: list[QueueItem] = []
        awaiting: list[QueueItem] = []
        submitted_total = awaiting_total = 0
        if is_analyst or is_manager:
            queues = applications.queues(("submitted", "awaiting_manager"), MAX_ITEMS_HOME)
            (submitted, submitted_total), (awaiting, awaiting_total) = (
                queues["submitted"],
                queues["awaiting_manager"],
            )
        rep_blocks = home_blocks(container, event["user"], client)  # reps' dashboard (empty for others)
        view = home_view(
            is_analyst=is_analyst,
            is_manager=is_manager,
            is_rep=bool(rep_blocks),
            submitted=submitted,
            submitted_total=submitted_total,
            awaiting=awaiting,
            awaiting_total=awaiting_total,
        )
        view = add_home_section(view, rep_blocks)
        client.views_publish(user_id=event["user"], view=view)
