"""`credit-desk serve`: the WSGI app under gunicorn (gthread workers).

On embedded defaults (no REDIS_URL) there is exactly one worker process, and it also runs the job worker in
a thread, because fakeredis lives inside one process. With real Redis there are several web workers and the
jobs run in `credit-desk worker` processes.

Metrics: `PROMETHEUS_MULTIPROC_DIR` is set (and wiped) before any worker starts, so that a scrape of any
worker adds up every worker's samples; a dead worker's live gauges are dropped in `child_exit`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger as GunicornLogger

from bot.settings import Settings


def prepare_metrics_dir(settings: Settings) -> Path:
    path = (
        settings.prometheus_multiproc_dir
        or Path(tempfile.gettempdir()) / f"credit-desk-metrics-{os.getpid()}"
    )
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    return path


def _child_exit(_server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


class JsonGunicornLogger(GunicornLogger):  # type: ignore[misc]
    """gunicorn's own messages (boot, worker exits) through our JSON log handler, like everything else."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        import logging

        root_handlers = logging.getLogger().handlers
        for log in (self.error_log, self.access_log):
            log.handlers[:] = list(root_handlers)
            log.propagate = False


class CreditDeskServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        self.cfg.set("child_exit", _child_exit)
        self.cfg.set("logger_class", JsonGunicornLogger)

    def load(self) -> Any:
        # Runs in each worker process after the fork: every process builds its own dependencies.
        from bot.container import build_container
        from bot.observability import configure_logging
        from bot.web import create_app

        configure_logging(self.settings.log_level, self.settings.log_format)
        container = build_container(self.settings, migrate_now=False)
        if self.settings.run_embedded_worker:
            from bot.worker import EmbeddedWorker

            container.extras["embedded_worker"] = EmbeddedWorker(container).start()
        return create_app(container)


def serve(settings: Settings, *, host: str | None = None, port: int | None = None) -> None:
    prepare_metrics_dir(settings)  # first: prometheus_client reads the variable when it is imported
    from bot.observability import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    if settings.should_auto_migrate:
        # Migrate once here, before the workers start, so that they don't queue on the lock.
        from storage import migrate
        from storage.db import make_engine

        engine = make_engine(settings.database_dsn)
        migrate.upgrade(engine)
        engine.dispose()
    options = {
        "bind": f"{host or settings.host}:{port or settings.port}",
        "workers": settings.effective_web_workers,
        "worker_class": "gthread",
        "threads": settings.web_threads,
        "timeout": 60,
        "graceful_timeout": 20,
        "accesslog": None,
        "loglevel": settings.log_level.lower(),
    }
    CreditDeskServer(settings, options).run()
