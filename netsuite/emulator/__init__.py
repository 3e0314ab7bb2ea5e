"""A local stand-in for NetSuite's REST record service, SuiteQL and OAuth endpoints.

NetSuite cannot be reached from development machines or CI, so tests, benchmarks and a new user's
first run talk to this emulator instead. It speaks the real wire format described in
``netsuite.md``: the same paths, status codes, headers, error bodies, paging rules, sublist
semantics and authentication checks; seed data is deterministic and lazily derived, so a
1,000,000-customer account starts instantly.

Entry points:

* :class:`EmulatorServer` — context manager serving on ``127.0.0.1:<free port>`` in a thread;
* :func:`run` — blocking server for ``credit-desk netsuite-emulator``;
* :class:`EmulatorApp` — the WSGI application, to mount elsewhere;
* :class:`EmulatorState` — the account's data, to inspect or change "in NetSuite" from tests.
"""

from netsuite.emulator.app import EmulatorApp, EmulatorConfig
from netsuite.emulator.auth import AuthConfig, TbaCredentials
from netsuite.emulator.faults import FaultRule, Faults, LogEntry, RequestLog, Stats
from netsuite.emulator.server import EmulatorServer, run
from netsuite.emulator.state import EmulatorState

__all__ = [
    "AuthConfig",
    "EmulatorApp",
    "EmulatorConfig",
    "EmulatorServer",
    "EmulatorState",
    "FaultRule",
    "Faults",
    "LogEntry",
    "RequestLog",
    "Stats",
    "TbaCredentials",
    "run",
]
