"""Slack user-group membership, cached in Redis (roles may name user groups instead of people)."""

from __future__ import annotations

import json

import redis
import structlog
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

log = structlog.get_logger(__name__)


class SlackGroupMembers:
    """Callable: user group id → member user ids. Cached for `ttl_seconds`; a failed lookup counts as empty
    for a short while (refusing is the safe side) and is logged."""

    def __init__(self, client: WebClient, redis_client: redis.Redis, *, ttl_seconds: int = 300) -> None:
        self.client = client
        self.redis = redis_client
        self.ttl = ttl_seconds

    def __call__(self, group_id: str) -> frozenset[str]:
        key = f"credit-desk:usergroup:{group_id}"
        cached = self.redis.get(key)
        if cached is not None:
            return frozenset(json.loads(cached))
        try:
            users = list(self.client.usergroups_users_list(usergroup=group_id).get("users") or [])
            ttl = self.ttl
        except SlackApiError as exc:
            log.warning(
                "slack.usergroup_lookup_failed", usergroup=group_id, error=str(exc.response.get("error"))
            )
            users, ttl = [], 30
        self.redis.set(key, json.dumps(users), ex=ttl)
        return frozenset(users)
