"""Serving the emulator: a background server for tests and benchmarks, a blocking one for the CLI.

Both use werkzeug's threaded WSGI server on a loopback address, so requests really overlap and the
concurrency cap, latency and dropped connections behave like the network does.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from netsuite.emulator.app import EmulatorApp, EmulatorConfig
from netsuite.emulator.auth import AuthConfig, TokenIssuer
from netsuite.emulator.faults import Faults, RequestLog, Stats
from netsuite.emulator.state import EmulatorState

_log = logging.getLogger(__name__)


class _QuietHandler(WSGIRequestHandler):
    """Access lines go to this module's logger at DEBUG (the request log has the detail)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        _log.debug("%s %s -> %s", self.command, self.path, code)


class EmulatorServer:
    """A NetSuite emulator on ``127.0.0.1`` and a free port, served from a background thread.

    >>> with EmulatorServer(seed=7, customers=500) as ns:
    ...     httpx.post(f"{ns.url}/services/rest/query/v1/suiteql", ...)

    ``state`` lets tests read and change records "in NetSuite" meanwhile; ``faults`` injects
    failures; ``stats`` counts traffic (``stats.snapshot().max_in_flight``); ``log`` keeps the
    requests. ``auth`` is an :class:`AuthConfig` (default: off).
    """

    def __init__(
        self,
        *,
        seed: int = 1,
        customers: int = 200,
        latency_ms: float = 0.0,
        jitter_ms: float = 0.0,
        concurrency_cap: int | None = None,
        auth: AuthConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        **options: Any,
    ) -> None:
        self.config = EmulatorConfig(
            seed=seed,
            customers=customers,
            latency_ms=latency_ms,
            jitter_ms=jitter_ms,
            concurrency_cap=concurrency_cap,
            auth=auth or AuthConfig.off(),
            **options,
        )
        self.app = EmulatorApp(self.config)
        self._host = host
        self._port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> EmulatorServer:
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        self.app.stopping.clear()
        server = make_server(self._host, self._port, self.app, threaded=True, request_handler=_QuietHandler)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name=f"netsuite-emulator:{server.port}", daemon=True
        )
        self._thread.start()
        _log.info("NetSuite emulator listening on %s", self.url)
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self.app.stopping.set()  # wakes requests sleeping in latency or delay faults
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- what tests use ------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not running")
        return int(self._server.port)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` — the value for ``NETSUITE_BASE_URL``."""
        return f"http://{self._host}:{self.port}"

    @property
    def state(self) -> EmulatorState:
        return self.app.state

    @property
    def faults(self) -> Faults:
        return self.app.faults

    @property
    def stats(self) -> Stats:
        return self.app.stats

    @property
    def log(self) -> RequestLog:
        return self.app.log

    @property
    def tokens(self) -> TokenIssuer:
        return self.app.tokens


def run(
    port: int,
    seed: int,
    customers: int,
    host: str = "127.0.0.1",
    **options: Any,
) -> None:
    """Serve an emulator in the foreground until interrupted (``credit-desk netsuite-emulator``).

    ``options`` are :class:`EmulatorConfig` fields (``latency_ms``, ``concurrency_cap``, ``auth``,
    ...). Binding anything but a loopback address exposes a fake NetSuite without real
    authentication unless ``auth`` is configured — the caller decides.
    """
    config = EmulatorConfig(seed=seed, customers=customers, **options)
    app = EmulatorApp(config)
    server = make_server(host, port, app, threaded=True, request_handler=_QuietHandler)
    _log.info(
        "NetSuite emulator: http://%s:%s (seed %s, %s customers, auth %s)",
        host,
        server.port,
        seed,
        customers,
        "on" if config.auth.enabled else "off",
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        app.stopping.set()
        server.server_close()
