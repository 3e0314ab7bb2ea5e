"""Loopback stand-ins for Slack, shared by the test suite and the ``credit-desk demo`` command.

Two halves must agree on who "the workspace" is: the request signer
(:mod:`bot.sandbox.signing`) builds payloads that claim to come from a team, an app and a
channel, and the mock Web API (:mod:`bot.sandbox.slack_api`) answers ``auth.test`` for the
same team and bot. :class:`SandboxWorkspace` is that single source of identity, so a payload
built by one half is recognised by the other without every caller repeating IDs.

Nothing here talks to slack.com; every server started by the sandbox binds to 127.0.0.1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["DEFAULT_WORKSPACE", "SandboxWorkspace"]

_ID_PATTERN = re.compile(r"^[A-Z][A-Z0-9]+$")


@dataclass(frozen=True)
class SandboxWorkspace:
    """The identity of the pretend Slack workspace and of our app installed in it.

    ``channel_id``/``channel_name`` name the team's credit channel: slash-command bodies
    default to it and the mock server knows it as a real channel.
    ``verification_token`` fills the legacy ``token`` field Slack still puts in payloads.
    """

    team_id: str = "T0CREDITDK"
    team_domain: str = "credit-desk-sandbox"
    team_name: str = "Credit Desk Sandbox"
    api_app_id: str = "A0CREDITDK"
    bot_user_id: str = "U0CREDITBT"
    bot_id: str = "B0CREDITDK"
    bot_name: str = "credit-desk"
    installer_user_id: str = "U0INSTALLR"
    channel_id: str = "C0CREDITQ1"
    channel_name: str = "credit-desk"
    # Not a secret: the legacy, deprecated payload field, fixed for the sandbox.
    verification_token: str = "sandbox-verification-token"  # noqa: S105

    def __post_init__(self) -> None:
        expected_prefixes = {
            "team_id": "T",
            "api_app_id": "A",
            "bot_user_id": "U",
            "bot_id": "B",
            "installer_user_id": "U",
            "channel_id": "C",
        }
        for field_name, prefix in expected_prefixes.items():
            value = getattr(self, field_name)
            if not _ID_PATTERN.match(value) or not value.startswith(prefix):
                raise ValueError(f"{field_name}={value!r} is not a Slack-style ID starting with {prefix!r}")
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", self.team_domain):
            raise ValueError(f"team_domain={self.team_domain!r} is not a valid Slack subdomain")

    @property
    def url(self) -> str:
        """The workspace URL as ``auth.test`` reports it."""
        return f"https://{self.team_domain}.slack.com/"


DEFAULT_WORKSPACE = SandboxWorkspace()
