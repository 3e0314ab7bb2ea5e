"""Who may do what: roles from settings (Slack user ids and user groups), and the approval bands.

Group membership is read from Slack through a resolver that caches it (see `bot.slack_directory`); this module
only combines the answers, so it stays free of Slack payloads and HTTP.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal


class Role(enum.StrEnum):
    ANALYST = "analyst"
    MANAGER = "manager"
    ADMIN = "admin"


@dataclass(frozen=True)
class Actor:
    """A person acting in Slack, with the roles they hold right now."""

    user_id: str
    roles: frozenset[Role] = frozenset()

    def has(self, *roles: Role) -> bool:
        return any(r in self.roles for r in roles)

    @property
    def can_decide(self) -> bool:
        return self.has(Role.ANALYST, Role.MANAGER)


GroupMembers = Callable[[str], frozenset[str]]


def _no_groups(_group_id: str) -> frozenset[str]:
    return frozenset()


class RoleDirectory:
    """Maps a Slack user to roles. Entries starting with `S` are user groups, the rest user ids."""

    def __init__(
        self, assignments: Mapping[Role, Iterable[str]], group_members: GroupMembers = _no_groups
    ) -> None:
        self._users: dict[Role, frozenset[str]] = {}
        self._groups: dict[Role, frozenset[str]] = {}
        for role, ids in assignments.items():
            ids = frozenset(ids)
            self._groups[role] = frozenset(i for i in ids if i.startswith("S"))
            self._users[role] = ids - self._groups[role]
        self._group_members = group_members

    def actor(self, user_id: str) -> Actor:
        roles = set()
        for role in Role:
            if user_id in self._users.get(role, ()):
                roles.add(role)
                continue
            if any(user_id in self._group_members(g) for g in self._groups.get(role, ())):
                roles.add(role)
        return Actor(user_id, frozenset(roles))

    def user_ids(self, role: Role) -> frozenset[str]:
        """Everyone holding `role`, groups expanded (for notifications)."""
        members = set(self._users.get(role, ()))
        for group in self._groups.get(role, ()):
            members |= self._group_members(group)
        return frozenset(members)


@dataclass(frozen=True)
class ApprovalPolicy:
    """Up to `analyst_limit` an analyst approves alone; above it a manager must confirm."""

    analyst_limit: Decimal

    def needs_manager(self, credit_limit: Decimal) -> bool:
        return credit_limit > self.analyst_limit
