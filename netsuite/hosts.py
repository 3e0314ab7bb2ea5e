"""Where NetSuite lives for an account: REST host, OAuth realm and the service paths.

NetSuite spells one account id two ways, and getting either wrong fails authentication:

* the **host label** is lower-case with ``-`` (``1234567_SB1`` -> ``1234567-sb1.suitetalk.api.netsuite.com``);
* the **realm** (TBA ``Authorization`` header) keeps the upper-case ``_`` form (``1234567_SB1``);
  a lower-case ``sb`` realm is answered with "Invalid login attempt" (netsuite.md §1.1, §6.6).

Oracle asks integrators to treat the service URL as configuration, so a base-URL override (a proxy,
or the local emulator on ``http://127.0.0.1:PORT``) replaces only the scheme/host part; the service
paths below never change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

RECORD_PATH = "/services/rest/record/v1"
SUITEQL_PATH = "/services/rest/query/v1/suiteql"
TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"  # noqa: S105 (a path, not a secret)
GOVERNANCE_PATH = "/services/rest/system/v1/governanceLimits"

_ACCOUNT_ID = re.compile(r"^[A-Za-z0-9]+(?:[_-][A-Za-z0-9]+)*$")
_RECORD_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")


def validate_account_id(account_id: str) -> str:
    """Return the account id stripped, or raise ValueError when it cannot be a NetSuite account id."""
    value = account_id.strip()
    if not _ACCOUNT_ID.fullmatch(value):
        raise ValueError(f"not a NetSuite account id: {account_id!r} (expected e.g. 1234567 or 1234567_SB1)")
    return value


def host_label(account_id: str) -> str:
    """The account's label in host names: lower-case, ``_`` -> ``-`` (``1234567_SB1`` -> ``1234567-sb1``)."""
    return validate_account_id(account_id).lower().replace("_", "-")


def realm(account_id: str) -> str:
    """The OAuth 1.0a realm: upper-case, ``-`` -> ``_`` (``1234567-sb1`` -> ``1234567_SB1``)."""
    return validate_account_id(account_id).upper().replace("-", "_")


def account_base_url(account_id: str) -> str:
    """The account's REST host, ``https://<label>.suitetalk.api.netsuite.com``."""
    return f"https://{host_label(account_id)}.suitetalk.api.netsuite.com"


def normalise_base_url(base_url: str) -> str:
    """Check an override such as ``http://127.0.0.1:8080`` and drop any trailing ``/``.

    A path prefix is kept (a proxy may mount NetSuite under one); queries and fragments are refused
    because the service paths are appended to this string.
    """
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"NetSuite base URL must be http(s)://host[:port]: {base_url!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"NetSuite base URL must not carry a query or fragment: {base_url!r}")
    return base_url.strip().rstrip("/")


@dataclass(frozen=True)
class NetSuiteHosts:
    """The URLs of one account; build with :func:`hosts_for`."""

    base_url: str
    realm: str

    @property
    def token_url(self) -> str:
        """OAuth 2.0 token endpoint (also the JWT assertion's ``aud``)."""
        return self.base_url + TOKEN_PATH

    @property
    def suiteql_url(self) -> str:
        return self.base_url + SUITEQL_PATH

    @property
    def governance_url(self) -> str:
        return self.base_url + GOVERNANCE_PATH

    def record_url(self, record_type: str, *segments: str) -> str:
        """``<base>/services/rest/record/v1/<recordType>[/<segment>...]``, each segment escaped.

        Segments are ids (``647``, ``eid:nuvo-1``) or sub-paths (``!attach``, ``contact``); the
        characters NetSuite uses in them (``:`` and ``!``) are left as they are.
        """
        if not _RECORD_TYPE.fullmatch(record_type):
            raise ValueError(f"not a record type: {record_type!r}")
        tail = "".join("/" + quote(segment, safe=":!") for segment in segments)
        return f"{self.base_url}{RECORD_PATH}/{record_type}{tail}"


def hosts_for(account_id: str, base_url: str | None = None) -> NetSuiteHosts:
    """URLs for ``account_id``; ``base_url`` (the emulator, a proxy) replaces the account host."""
    base = normalise_base_url(base_url) if base_url else account_base_url(account_id)
    return NetSuiteHosts(base_url=base, realm=realm(account_id))
