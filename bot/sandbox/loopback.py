"""Serve a WSGI app on a loopback port from a background thread (the Slack stand-in, the demo web app)."""

from __future__ import annotations

import threading
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server


class QuietRequestHandler(WSGIRequestHandler):
    """Werkzeug's handler without the per-request access log line (errors still log)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


def serve_in_thread(
    app: Any, host: str, port: int, *, name: str, poll_interval: float = 0.5
) -> tuple[BaseWSGIServer, threading.Thread]:
    """Bind `host:port` (0: a free port), serve `app` threaded from a daemon thread, return both."""
    server = make_server(host, port, app, threaded=True, request_handler=QuietRequestHandler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": poll_interval}, name=name, daemon=True
    )
    thread.start()
    return server, thread


def stop_serving(server: BaseWSGIServer, thread: threading.Thread | None, timeout: float = 5.0) -> None:
    """Stop serving, release the port and wait for the serving thread."""
    server.shutdown()
    server.server_close()
    if thread is not None:
        thread.join(timeout=timeout)
