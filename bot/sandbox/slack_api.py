"""A loopback stand-in for the Slack Web API, for tests and the offline demo.

Usage::

    with MockSlackServer() as slack:
        client = WebClient(token="xoxb-test", base_url=slack.url)
        client.chat_postMessage(channel="C0CREDITQ1", text="hi")
        assert slack.last("chat.postMessage").args["text"] == "hi"

Why a real HTTP server rather than a mocked ``WebClient``: the code under test then runs the
genuine ``slack_sdk`` request path (auth header, form vs JSON bodies, 429 handling and retry
handlers, ``files_upload_v2``'s three-step upload), so what passes here fails for the same
reasons it would fail against Slack. Answers follow Slack's documented shapes and error
codes (HTTP 200 with ``{"ok": false, "error": ...}``, except rate limits, which are HTTP 429
with ``Retry-After``).

The server keeps the Slack-side state the bot depends on: posted messages (so ``chat.update``
of an unknown ``ts`` fails as it would), views with their ``hash`` (so stale updates get
``hash_conflict``), single-use trigger IDs, DM channels, uploaded files and ``response_url``
posts. It binds to 127.0.0.1 only and picks a free port by default.

Simplifications, on purpose: one workspace; any well-formed channel ID is accepted for
posting unless ``strict_channels=True`` (then only registered channels and opened DMs);
channel membership is only checked by ``chat.postEphemeral`` and only for channels
registered with ``members``; ``views.push`` stacks onto the most recently opened modal,
since the mock cannot tell which modal a trigger came from; a modal closed in Slack's UI
stays updatable here; ``response_url`` has no 5-uses/30-minutes limit.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from ipaddress import ip_address
from types import TracebackType
from typing import Any, Self, TypeVar
from wsgiref.types import StartResponse, WSGIEnvironment

from werkzeug.serving import BaseWSGIServer
from werkzeug.wrappers import Request, Response

from bot.sandbox import DEFAULT_WORKSPACE, SandboxWorkspace
from bot.sandbox.loopback import serve_in_thread, stop_serving

__all__ = [
    "MockSlackServer",
    "PostedMessage",
    "RecordedCall",
    "ResponsePost",
    "SlackChannel",
    "SlackUser",
    "UploadedFile",
]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Arguments that carry JSON; form-encoded callers send them as JSON strings.
JSON_ARGS = frozenset({"blocks", "attachments", "view", "files", "metadata"})
MESSAGE_BLOCK_LIMIT = 50
VIEW_BLOCK_LIMIT = 100
PRIVATE_METADATA_LIMIT = 3000
VIEW_STACK_LIMIT = 3
CONVERSATION_USER_LIMIT = 8

_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]+$")
_USER_ID = re.compile(r"^[UW][A-Z0-9]+$")


# --------------------------------------------------------------------------- directory


@dataclass(frozen=True)
class SlackUser:
    """A workspace member as ``users.info`` describes them (email ``None`` for bots)."""

    id: str
    real_name: str
    email: str | None = None
    name: str = ""
    is_bot: bool = False
    deleted: bool = False
    tz: str = "UTC"

    def __post_init__(self) -> None:
        if not _USER_ID.match(self.id):
            raise ValueError(f"user id {self.id!r} must look like a Slack user ID (U.../W...)")
        if self.email is not None and "@" not in self.email:
            raise ValueError(f"email {self.email!r} is not an email address")
        if not self.name:
            handle = self.email.split("@", 1)[0] if self.email else self.id.lower()
            object.__setattr__(self, "name", handle)

    def to_api(self, team_id: str) -> dict[str, Any]:
        """The ``user`` object of ``users.info`` / ``users.lookupByEmail``."""
        profile: dict[str, Any] = {
            "real_name": self.real_name,
            "real_name_normalized": self.real_name,
            "display_name": self.name,
            "display_name_normalized": self.name,
            "team": team_id,
        }
        if self.email is not None:
            profile["email"] = self.email
        return {
            "id": self.id,
            "team_id": team_id,
            "name": self.name,
            "real_name": self.real_name,
            "deleted": self.deleted,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "is_admin": False,
            "tz": self.tz,
            "profile": profile,
        }


@dataclass(frozen=True)
class SlackChannel:
    """A public or private channel. Empty ``members`` means "membership not modelled"."""

    id: str
    name: str
    is_private: bool = False
    members: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _CHANNEL_ID.match(self.id) or self.id.startswith("D"):
            raise ValueError(f"channel id {self.id!r} must look like C... or G...")
        if not self.name or self.name.startswith("#"):
            raise ValueError(f"channel name {self.name!r} must be given without '#'")


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class RecordedCall:
    """One request to ``/api/<method>`` and what the mock answered.

    ``args`` merges query string and body, with JSON-carrying arguments (``blocks``,
    ``view``, ``files``...) decoded whichever way they were sent; ``raw_args`` is as sent.
    ``headers`` has lower-case names.
    """

    method: str
    args: dict[str, Any]
    raw_args: dict[str, Any]
    headers: dict[str, str]
    token: str | None
    http_method: str
    status: int
    response: dict[str, Any]
    at: datetime

    @property
    def ok(self) -> bool:
        """Whether the mock answered ``ok: true``."""
        return self.response.get("ok") is True

    @property
    def error(self) -> str | None:
        """The Slack error code, or ``None`` on success."""
        error = self.response.get("error")
        return error if isinstance(error, str) else None


@dataclass(frozen=True)
class ResponsePost:
    """One POST to a ``response_url`` minted by :meth:`MockSlackServer.response_url`."""

    url: str
    body: dict[str, Any]
    headers: dict[str, str]
    at: datetime


@dataclass(frozen=True)
class PostedMessage:
    """A message as it currently stands in a channel (after any ``chat.update``)."""

    channel: str
    ts: str
    text: str
    user: str
    bot_id: str | None
    app_id: str
    team: str
    blocks: list[dict[str, Any]] | None = None
    attachments: list[dict[str, Any]] | None = None
    thread_ts: str | None = None
    metadata: dict[str, Any] | None = None
    edited: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The ``message`` object Slack echoes back and puts in block_actions payloads."""
        out: dict[str, Any] = {
            "type": "message",
            "user": self.user,
            "app_id": self.app_id,
            "text": self.text,
            "ts": self.ts,
            "team": self.team,
        }
        if self.bot_id is not None:
            out["bot_id"] = self.bot_id
        optional = {
            "blocks": self.blocks,
            "attachments": self.attachments,
            "thread_ts": self.thread_ts,
            "metadata": self.metadata,
        }
        out.update({k: copy.deepcopy(v) for k, v in optional.items() if v is not None})
        if self.edited:
            out["edited"] = {"user": self.user, "ts": self.ts}
        return out


@dataclass(frozen=True)
class UploadedFile:
    """A file that went through ``files.getUploadURLExternal`` (and maybe the rest)."""

    id: str
    filename: str
    length: int
    content: bytes | None
    title: str | None
    channel_id: str | None
    initial_comment: str | None
    completed: bool


@dataclass
class _FileState:
    id: str
    filename: str
    length: int
    content: bytes | None = None
    title: str | None = None
    channel_id: str | None = None
    initial_comment: str | None = None
    completed: bool = False

    def snapshot(self) -> UploadedFile:
        return UploadedFile(
            id=self.id,
            filename=self.filename,
            length=self.length,
            content=self.content,
            title=self.title,
            channel_id=self.channel_id,
            initial_comment=self.initial_comment,
            completed=self.completed,
        )


@dataclass
class _Failure:
    error: str
    status: int
    retry_after: int
    remaining: int


@dataclass(frozen=True)
class _Incoming:
    args: dict[str, Any]
    token: str
    is_bot: bool


class _ApiError(Exception):
    """A Slack-style error answer: ``{"ok": false, "error": code}`` plus optional detail."""

    def __init__(self, code: str, detail: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.detail = detail

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": False, "error": self.code}
        if self.detail:
            out["response_metadata"] = {"messages": [f"[ERROR] {self.detail}"]}
        return out


# --------------------------------------------------------------------------- argument helpers


def _opt_str(args: Mapping[str, Any], name: str) -> str | None:
    value = args.get(name)
    if value is None or value == "":
        return None
    return str(value)


def _required(args: Mapping[str, Any], name: str, error: str = "invalid_arguments") -> str:
    value = _opt_str(args, name)
    if value is None:
        raise _ApiError(error, f"missing required field: {name}")
    return value


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return None
    return credentials.strip()


def _decode_json_args(raw: Mapping[str, Any]) -> dict[str, Any]:
    decoded = dict(raw)
    for name in JSON_ARGS & decoded.keys():
        value = decoded[name]
        if isinstance(value, str):
            # Undecodable values stay strings; the method then answers invalid_*_format.
            with contextlib.suppress(ValueError):
                decoded[name] = json.loads(value)
    return decoded


def _parse_request_args(request: Request) -> dict[str, Any]:
    """Merge query string and body the way Slack accepts them (form, multipart or JSON)."""
    args: dict[str, Any] = dict(request.args.items())
    if request.method != "POST":
        return args
    if request.mimetype == "application/json":
        raw = request.get_data(cache=True)
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError as err:
                raise _ApiError("invalid_json", f"body is not JSON: {err}") from err
            if not isinstance(body, dict):
                raise _ApiError("invalid_json", "the JSON body must be an object")
            args.update(body)
        return args
    args.update(request.form.items())
    for name, storage in request.files.items():
        args[name] = storage.read()
    return args


def _json_response(
    body: Mapping[str, Any], status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    response = Response(json.dumps(body), status=status, content_type="application/json; charset=utf-8")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _check_blocks(value: Any, limit: int, error: str, format_error: str) -> None:
    """Validate a ``blocks`` argument enough to catch the mistakes Slack rejects outright."""
    if value is None:
        return
    if isinstance(value, str):
        raise _ApiError(format_error, "blocks is not valid JSON")
    if not isinstance(value, list):
        raise _ApiError(error, "blocks must be an array")
    if len(value) > limit:
        raise _ApiError(error, f"must be no more than {limit} items [json-pointer:/blocks]")
    for index, block in enumerate(value):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise _ApiError(error, f"block {index} needs a string 'type' [json-pointer:/blocks/{index}]")


def _utcnow() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------- server


class MockSlackServer:
    """A threaded loopback HTTP server answering Slack Web API methods.

    ``url`` ends with ``/api/`` because ``slack_sdk`` appends the method name to
    ``base_url``. Valid tokens default to anything starting ``xoxb-`` (bot) or ``xoxp-``
    (user); pass ``valid_tokens`` to make every other token ``invalid_auth``.
    """

    def __init__(
        self,
        *,
        workspace: SandboxWorkspace = DEFAULT_WORKSPACE,
        users: Iterable[SlackUser] = (),
        channels: Iterable[SlackChannel] = (),
        usergroups: Mapping[str, Sequence[str]] | None = None,
        valid_tokens: Collection[str] | None = None,
        strict_channels: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if not ip_address(host).is_loopback:
            raise ValueError(f"the mock Slack server binds to loopback only, not {host!r}")
        if valid_tokens is not None and not valid_tokens:
            raise ValueError("valid_tokens must name at least one token (or be None)")
        self.workspace = workspace
        self._host = host
        self._port = port
        self._valid_tokens = frozenset(valid_tokens) if valid_tokens is not None else None
        self._strict_channels = strict_channels

        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

        self._calls: list[RecordedCall] = []
        self._responses: list[ResponsePost] = []
        self._failures: dict[str, deque[_Failure]] = {}
        self._rate_limits: dict[str, tuple[float, int]] = {}  # method -> (monotonic end, Retry-After)
        self._counters: dict[str, int] = {}
        self._last_ts_us = 0

        self._users: dict[str, SlackUser] = {}
        self._channels: dict[str, SlackChannel] = {}
        self._usergroups: dict[str, tuple[str, ...]] = {}
        self._dms: dict[str, str] = {}  # user id -> D... id
        self._mpims: dict[frozenset[str], str] = {}
        self._messages: dict[tuple[str, str], PostedMessage] = {}
        self._views: dict[str, dict[str, Any]] = {}
        self._view_stacks: dict[str, list[str]] = {}  # root view id -> stack of ids
        self._current_root: str | None = None
        self._home_views: dict[str, str] = {}  # user id -> view id
        self._external_ids: dict[str, str] = {}
        self._used_triggers: set[str] = set()
        self._files: dict[str, _FileState] = {}
        self._hooks: set[str] = set()

        bot_user = SlackUser(
            id=workspace.bot_user_id, real_name=workspace.bot_name, name=workspace.bot_name, is_bot=True
        )
        self.add_user(bot_user)
        self.add_channel(SlackChannel(id=workspace.channel_id, name=workspace.channel_name))
        for user in users:
            self.add_user(user)
        for channel in channels:
            self.add_channel(channel)
        for group_id, members in (usergroups or {}).items():
            self.add_usergroup(group_id, members)

        self._handlers: dict[str, Callable[[_Incoming], dict[str, Any]]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.delete": self._chat_delete,
            "chat.getPermalink": self._chat_get_permalink,
            "views.open": self._views_open,
            "views.push": self._views_push,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "users.info": self._users_info,
            "users.lookupByEmail": self._users_lookup_by_email,
            "conversations.open": self._conversations_open,
            "conversations.info": self._conversations_info,
            "conversations.replies": self._conversations_replies,
            "usergroups.users.list": self._usergroups_users_list,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
        }

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        """Bind and serve in a daemon thread; idempotent."""
        with self._lock:
            if self._server is not None:
                return self
            server, thread = serve_in_thread(
                self._wsgi, self._host, self._port, name="mock-slack", poll_interval=0.05
            )
            self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        """Stop serving and release the port; idempotent."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        stop_serving(server, thread)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:<port>`` of the running server."""
        server = self._server
        if server is None:
            raise RuntimeError("MockSlackServer is not running; use start() or a with block")
        return f"http://{self._host}:{server.server_port}"

    @property
    def url(self) -> str:
        """Base URL for ``WebClient(base_url=...)``; ends with ``/api/``."""
        return f"{self.root_url}/api/"

    # ------------------------------------------------------------------ directory

    def add_user(self, user: SlackUser) -> None:
        """Add or replace a workspace member."""
        with self._lock:
            self._users[user.id] = user

    def add_channel(self, channel: SlackChannel) -> None:
        """Add or replace a channel."""
        with self._lock:
            self._channels[channel.id] = channel

    def add_usergroup(self, usergroup_id: str, user_ids: Sequence[str]) -> None:
        """Define a user group (``S...``) and its members."""
        if not usergroup_id.startswith("S"):
            raise ValueError(f"usergroup id {usergroup_id!r} must start with 'S'")
        with self._lock:
            self._usergroups[usergroup_id] = tuple(user_ids)

    def dm_channel(self, user_id: str) -> str:
        """The app's DM channel with ``user_id`` (opened if needed), as conversations.open gives."""
        with self._lock:
            if user_id not in self._users:
                raise KeyError(f"unknown user {user_id!r}; add_user() first")
            return self._open_dm(user_id)[0]

    # ------------------------------------------------------------------ recorded calls

    def calls(self, method: str | None = None) -> list[RecordedCall]:
        """Every recorded Web API call, oldest first, optionally only for ``method``."""
        with self._lock:
            return [c for c in self._calls if method is None or c.method == method]

    def last(self, method: str) -> RecordedCall:
        """The most recent call of ``method``; ``LookupError`` naming what was called if none."""
        with self._lock:
            for recorded in reversed(self._calls):
                if recorded.method == method:
                    return recorded
            seen = sorted({c.method for c in self._calls})
        raise LookupError(f"no {method} call recorded; methods called: {seen}")

    def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[RecordedCall]:
        """Block until ``count`` calls of ``method`` are recorded, at most ``timeout`` seconds.

        For handlers that call Slack after ``ack()`` on Bolt's worker threads. Raises
        ``TimeoutError`` with what was seen instead.
        """
        return self._wait(lambda: self.calls(method), count, timeout, f"{method} call(s)")

    def reset(self) -> None:
        """Forget recorded calls, response_url posts and pending injected failures.

        Slack-side state (messages, views, files, DMs, the directory) is kept, as it would
        be on Slack between two requests.
        """
        with self._lock:
            self._calls.clear()
            self._responses.clear()
            self._failures.clear()
            self._rate_limits.clear()

    # ------------------------------------------------------------------ error injection

    def fail_next(
        self,
        method: str,
        error: str = "ratelimited",
        *,
        status: int | None = None,
        retry_after: int = 1,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail with ``error``.

        ``status`` defaults to 429 for ``ratelimited`` (sent with a ``Retry-After`` header
        of ``retry_after`` seconds, as Slack does) and 200 for any other error code.
        Failures apply after the token check, like Slack's per-app rate limits.
        """
        if not method or not error:
            raise ValueError("method and error must not be empty")
        if times < 1:
            raise ValueError(f"times must be >= 1, got {times}")
        if retry_after < 0:
            raise ValueError(f"retry_after must be >= 0 seconds, got {retry_after}")
        code = status if status is not None else (429 if error == "ratelimited" else 200)
        if not 200 <= code <= 599:
            raise ValueError(f"status must be an HTTP status code, got {code}")
        with self._lock:
            self._failures.setdefault(method, deque()).append(
                _Failure(error=error, status=code, retry_after=retry_after, remaining=times)
            )

    def rate_limit(self, methods: Iterable[str], seconds: float, *, retry_after: int = 1) -> None:
        """Answer every call of ``methods`` with HTTP 429 ``ratelimited`` and ``Retry-After:
        retry_after`` for the next ``seconds`` (a storm, as when the app exceeds a method's tier
        or posts faster than one message a second in a channel). Calls answered so are recorded
        with ``status=429``; :meth:`rate_limited` counts them. Like Slack, a 429 means nothing
        was done: no message posted or updated, no view opened, the trigger not used up."""
        names = [m for m in methods if m]
        if not names:
            raise ValueError("name at least one method to rate-limit")
        if seconds <= 0:
            raise ValueError(f"seconds must be > 0, got {seconds}")
        if retry_after < 0:
            raise ValueError(f"retry_after must be >= 0 seconds, got {retry_after}")
        until = time.monotonic() + seconds
        with self._lock:
            for name in names:
                self._rate_limits[name] = (until, retry_after)

    def rate_limited(self, method: str | None = None) -> int:
        """How many calls (of ``method``, or of any) were answered with HTTP 429."""
        with self._lock:
            return sum(1 for c in self._calls if c.status == 429 and (method is None or c.method == method))

    # ------------------------------------------------------------------ response_url

    def response_url(self) -> str:
        """Mint a ``response_url`` served by this server, to put into a payload."""
        with self._lock:
            hook_id = self._next_id("H", width=10)
            self._hooks.add(hook_id)
        return f"{self.root_url}/response/{hook_id}"

    def responses(self, url: str | None = None) -> list[ResponsePost]:
        """Bodies posted to minted response URLs, oldest first, optionally for one URL."""
        with self._lock:
            return [r for r in self._responses if url is None or r.url == url]

    def wait_for_response(
        self, url: str | None = None, count: int = 1, timeout: float = 5.0
    ) -> list[ResponsePost]:
        """Like :meth:`wait_for`, for posts to ``response_url`` webhooks."""
        return self._wait(lambda: self.responses(url), count, timeout, "response_url post(s)")

    # ------------------------------------------------------------------ Slack-side state

    def messages(self, channel: str | None = None) -> list[PostedMessage]:
        """Messages currently in ``channel`` (or everywhere), in posting order."""
        with self._lock:
            return [
                copy.deepcopy(m) for m in self._messages.values() if channel is None or m.channel == channel
            ]

    def message(self, channel: str, ts: str) -> PostedMessage:
        """One message as it stands now; ``KeyError`` if it was never posted or was deleted."""
        with self._lock:
            try:
                return copy.deepcopy(self._messages[(channel, ts)])
            except KeyError:
                raise KeyError(f"no message {ts} in {channel}") from None

    def view(self, view_id: str) -> dict[str, Any]:
        """The current state of a view (as views.* returned it, with its latest ``hash``)."""
        with self._lock:
            try:
                return copy.deepcopy(self._views[view_id])
            except KeyError:
                raise KeyError(f"no view {view_id}") from None

    def home_view(self, user_id: str) -> dict[str, Any]:
        """The Home tab last published for ``user_id``."""
        with self._lock:
            try:
                return copy.deepcopy(self._views[self._home_views[user_id]])
            except KeyError:
                raise KeyError(f"no Home tab published for {user_id}") from None

    def files(self) -> list[UploadedFile]:
        """Files whose upload was started, with their bytes once uploaded."""
        with self._lock:
            return [f.snapshot() for f in self._files.values()]

    # ------------------------------------------------------------------ HTTP plumbing

    def _wsgi(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        path = request.path
        if path.startswith("/api/"):
            response = self._handle_api(request, path.removeprefix("/api/"))
        elif path.startswith("/upload/"):
            response = self._handle_upload(request, path.removeprefix("/upload/"))
        elif path.startswith("/response/"):
            response = self._handle_response_url(request, path.removeprefix("/response/"))
        else:
            response = Response("not found", status=404, content_type="text/plain")
        return response(environ, start_response)

    def _handle_api(self, request: Request, method: str) -> Response:
        if request.method not in ("GET", "POST"):
            return Response("method not allowed", status=405, content_type="text/plain")
        headers = {name.lower(): value for name, value in request.headers.items()}
        try:
            raw_args = _parse_request_args(request)
            parse_error: _ApiError | None = None
        except _ApiError as err:
            raw_args, parse_error = {}, err
        args = _decode_json_args(raw_args)
        token = _bearer(headers.get("authorization")) or _opt_str(raw_args, "token")

        status = 200
        extra_headers: dict[str, str] = {}
        with self._lock:
            handler = self._handlers.get(method)
            failure = None
            if handler is None:
                body = _ApiError("unknown_method").body()
            elif token is None:
                body = _ApiError("not_authed").body()
            elif not self._token_is_valid(token):
                body = _ApiError("invalid_auth").body()
            elif parse_error is not None:
                body = parse_error.body()
            elif (retry_after := self._rate_limited_now(method)) is not None:
                body = {"ok": False, "error": "ratelimited"}
                status = 429
                extra_headers["Retry-After"] = str(retry_after)
            elif (failure := self._take_failure(method)) is not None:
                body = {"ok": False, "error": failure.error}
                status = failure.status
                if status == 429:
                    extra_headers["Retry-After"] = str(failure.retry_after)
            else:
                body = self._run_handler(handler, _Incoming(args, token, self._is_bot(token)))
                if body.get("error") == "fatal_error":
                    status = 500
            self._calls.append(
                RecordedCall(
                    method=method,
                    args=args,
                    raw_args=raw_args,
                    headers=headers,
                    token=token,
                    http_method=request.method,
                    status=status,
                    response=copy.deepcopy(body),
                    at=_utcnow(),
                )
            )
            self._changed.notify_all()
        return _json_response(body, status, extra_headers)

    def _run_handler(
        self, handler: Callable[[_Incoming], dict[str, Any]], incoming: _Incoming
    ) -> dict[str, Any]:
        try:
            return {"ok": True, **handler(incoming)}
        except _ApiError as err:
            return err.body()
        except Exception:
            # A bug in the mock must be loud, not a silent success.
            logger.exception("mock Slack handler failed")
            return _ApiError("fatal_error", "the mock Slack server raised; see logs").body()

    def _handle_upload(self, request: Request, file_id: str) -> Response:
        if request.method != "POST":
            return Response("method not allowed", status=405, content_type="text/plain")
        # slack_sdk posts raw bytes, which urllib labels form-urlencoded: never form-parse
        # those, or the body is consumed. Only a real multipart upload carries a "file" part.
        is_multipart = request.mimetype == "multipart/form-data"
        uploaded = request.files.get("file") if is_multipart else None
        content = uploaded.read() if uploaded is not None else request.get_data()
        with self._lock:
            state = self._files.get(file_id)
            if state is None:
                return Response("no such upload", status=404, content_type="text/plain")
            state.content = content
            self._changed.notify_all()
        return Response(f"OK - {len(content)}", status=200, content_type="text/plain")

    def _handle_response_url(self, request: Request, hook_id: str) -> Response:
        if request.method != "POST":
            return Response("method not allowed", status=405, content_type="text/plain")
        with self._lock:
            known = hook_id in self._hooks
        if not known:
            return Response("no_service", status=404, content_type="text/plain")
        try:
            body = json.loads(request.get_data())
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return Response("invalid_payload", status=400, content_type="text/plain")
        post = ResponsePost(
            url=f"{self.root_url}/response/{hook_id}",
            body=body,
            headers={name.lower(): value for name, value in request.headers.items()},
            at=_utcnow(),
        )
        with self._lock:
            self._responses.append(post)
            self._changed.notify_all()
        return _json_response({"ok": True})

    # ------------------------------------------------------------------ internals

    def _wait(self, read: Callable[[], list[_T]], count: int, timeout: float, what: str) -> list[_T]:
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = read()
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = sorted({c.method for c in self._calls})
                    raise TimeoutError(
                        f"waited {timeout}s for {count} {what}, got {len(found)}; methods called: {seen}"
                    )
                self._changed.wait(remaining)

    def _token_is_valid(self, token: str) -> bool:
        if self._valid_tokens is not None:
            return token in self._valid_tokens
        return token.startswith(("xoxb-", "xoxp-"))

    @staticmethod
    def _is_bot(token: str) -> bool:
        return not token.startswith("xoxp-")

    def _rate_limited_now(self, method: str) -> int | None:
        """``Retry-After`` seconds while ``method`` is inside a :meth:`rate_limit` window."""
        window = self._rate_limits.get(method)
        if window is None:
            return None
        until, retry_after = window
        remaining = until - time.monotonic()
        if remaining <= 0:
            del self._rate_limits[method]
            return None
        return retry_after

    def _take_failure(self, method: str) -> _Failure | None:
        queue = self._failures.get(method)
        if not queue:
            return None
        failure = queue[0]
        failure.remaining -= 1
        if failure.remaining == 0:
            queue.popleft()
        return failure

    def _next_number(self, kind: str) -> int:
        number = self._counters.get(kind, 0) + 1
        self._counters[kind] = number
        return number

    def _next_id(self, prefix: str, width: int = 9) -> str:
        """Slack-looking IDs (``V00000000A``): a prefix and an uppercase hex counter."""
        return f"{prefix}{self._next_number(prefix):0{width}X}"

    def _next_ts(self) -> str:
        """A unique, increasing message ts (``seconds.micros``) close to the wall clock."""
        now_us = time.time_ns() // 1000
        self._last_ts_us = max(self._last_ts_us + 100, now_us)
        seconds, micros = divmod(self._last_ts_us, 1_000_000)
        return f"{seconds}.{micros:06d}"

    def _new_hash(self) -> str:
        """A view hash in Slack's ``<seconds>.<token>`` shape, unique per server."""
        return f"{int(time.time())}.{self._next_number('view-hash'):08x}"

    def _open_dm(self, user_id: str) -> tuple[str, bool]:
        existing = self._dms.get(user_id)
        if existing is not None:
            return existing, True
        dm_id = self._next_id("D")
        self._dms[user_id] = dm_id
        return dm_id, False

    def _resolve_channel(self, raw: str | None) -> str:
        """Map a ``channel`` argument to a channel ID, as Slack does for posting methods."""
        if raw is None:
            raise _ApiError("channel_not_found", "missing required field: channel")
        if raw in self._channels or raw in self._dms.values() or raw in self._mpims.values():
            return raw
        by_name = {c.name: c.id for c in self._channels.values()}
        if raw.lstrip("#") in by_name:
            return by_name[raw.lstrip("#")]
        if _USER_ID.match(raw):
            if raw not in self._users:
                raise _ApiError("channel_not_found", f"unknown user {raw}")
            return self._open_dm(raw)[0]
        if _CHANNEL_ID.match(raw) and not self._strict_channels:
            return raw
        raise _ApiError("channel_not_found", f"unknown channel {raw}")

    def _bot_identity(self, incoming: _Incoming) -> tuple[str, str | None]:
        if incoming.is_bot:
            return self.workspace.bot_user_id, self.workspace.bot_id
        return self.workspace.installer_user_id, None

    @staticmethod
    def _check_message_content(args: Mapping[str, Any], *, require: bool) -> None:
        has_text = _opt_str(args, "text") is not None
        has_blocks = bool(args.get("blocks"))
        has_attachments = bool(args.get("attachments"))
        if require and not (has_text or has_blocks or has_attachments):
            raise _ApiError("no_text", "one of text, blocks or attachments is required")
        _check_blocks(args.get("blocks"), MESSAGE_BLOCK_LIMIT, "invalid_blocks", "invalid_blocks_format")
        attachments = args.get("attachments")
        if attachments is not None and not isinstance(attachments, list):
            raise _ApiError("invalid_attachments", "attachments must be an array")

    def _view_from_args(self, args: Mapping[str, Any], allowed_type: str) -> dict[str, Any]:
        view = args.get("view")
        if view is None:
            raise _ApiError("invalid_arguments", "missing required field: view")
        if not isinstance(view, dict):
            raise _ApiError("invalid_arguments", "view must be a JSON object")
        if view.get("type") != allowed_type:
            raise _ApiError(
                "invalid_arguments", f"view.type must be {allowed_type!r}, got {view.get('type')!r}"
            )
        if allowed_type == "modal" and not isinstance(view.get("title"), dict):
            raise _ApiError("invalid_arguments", "a modal needs a plain_text title")
        _check_blocks(view.get("blocks", []), VIEW_BLOCK_LIMIT, "invalid_arguments", "invalid_arguments")
        metadata = view.get("private_metadata", "")
        if not isinstance(metadata, str) or len(metadata) > PRIVATE_METADATA_LIMIT:
            raise _ApiError(
                "invalid_arguments",
                f"private_metadata must be a string of at most {PRIVATE_METADATA_LIMIT} chars",
            )
        return view

    def _claim_external_id(self, view: Mapping[str, Any], view_id: str) -> None:
        external_id = view.get("external_id")
        if not external_id:
            return
        owner = self._external_ids.get(external_id)
        if owner is not None and owner != view_id:
            raise _ApiError("duplicate_external_id", f"external_id {external_id} is in use")
        self._external_ids[external_id] = view_id

    def _consume_trigger(self, args: Mapping[str, Any]) -> None:
        trigger_id = _opt_str(args, "trigger_id") or _opt_str(args, "interactivity_pointer")
        if trigger_id is None:
            raise _ApiError("invalid_arguments", "missing required field: trigger_id")
        if trigger_id in self._used_triggers:
            raise _ApiError("exchanged_trigger_id", "a trigger_id can be used once")
        self._used_triggers.add(trigger_id)

    def _store_view(
        self,
        source: Mapping[str, Any],
        view_id: str,
        *,
        root_view_id: str | None,
        previous_view_id: str | None,
    ) -> dict[str, Any]:
        stored: dict[str, Any] = {
            "id": view_id,
            "team_id": self.workspace.team_id,
            "type": source["type"],
            "blocks": copy.deepcopy(source.get("blocks", [])),
            "private_metadata": source.get("private_metadata", ""),
            "callback_id": source.get("callback_id", ""),
            "external_id": source.get("external_id", ""),
            "state": {"values": {}},
            "hash": self._new_hash(),
            "clear_on_close": bool(source.get("clear_on_close", False)),
            "notify_on_close": bool(source.get("notify_on_close", False)),
            "root_view_id": root_view_id,
            "previous_view_id": previous_view_id,
            "app_id": self.workspace.api_app_id,
            "app_installed_team_id": self.workspace.team_id,
            "bot_id": self.workspace.bot_id,
        }
        for key in ("title", "submit", "close"):
            if key in source:
                stored[key] = copy.deepcopy(source[key])
        self._views[view_id] = stored
        return copy.deepcopy(stored)

    # ------------------------------------------------------------------ methods

    def _auth_test(self, incoming: _Incoming) -> dict[str, Any]:
        user_id, bot_id = self._bot_identity(incoming)
        user = self._users.get(user_id)
        body: dict[str, Any] = {
            "url": self.workspace.url,
            "team": self.workspace.team_name,
            "user": user.name if user else user_id.lower(),
            "team_id": self.workspace.team_id,
            "user_id": user_id,
            "is_enterprise_install": False,
        }
        if bot_id is not None:
            body["bot_id"] = bot_id
        return body

    def _chat_post_message(self, incoming: _Incoming) -> dict[str, Any]:
        args = incoming.args
        channel = self._resolve_channel(_opt_str(args, "channel"))
        self._check_message_content(args, require=True)
        user_id, bot_id = self._bot_identity(incoming)
        message = PostedMessage(
            channel=channel,
            ts=self._next_ts(),
            text=_opt_str(args, "text") or "",
            user=user_id,
            bot_id=bot_id,
            app_id=self.workspace.api_app_id,
            team=self.workspace.team_id,
            blocks=copy.deepcopy(args.get("blocks")),
            attachments=copy.deepcopy(args.get("attachments")),
            thread_ts=_opt_str(args, "thread_ts"),
            metadata=copy.deepcopy(args.get("metadata")),
        )
        self._messages[(channel, message.ts)] = message
        return {"channel": channel, "ts": message.ts, "message": message.to_dict()}

    def _existing_message(self, args: Mapping[str, Any], ts_arg: str) -> PostedMessage:
        channel = self._resolve_channel(_opt_str(args, "channel"))
        ts = _required(args, ts_arg, error="message_not_found")
        message = self._messages.get((channel, ts))
        if message is None:
            raise _ApiError("message_not_found", f"no message {ts} in {channel}")
        return message

    def _chat_update(self, incoming: _Incoming) -> dict[str, Any]:
        args = incoming.args
        current = self._existing_message(args, "ts")
        self._check_message_content(args, require=True)
        changes: dict[str, Any] = {"edited": True}
        if "text" in args:
            changes["text"] = _opt_str(args, "text") or ""
        if "blocks" in args:  # omitted keeps the old blocks, [] removes them
            changes["blocks"] = copy.deepcopy(args["blocks"])
        if "attachments" in args:
            changes["attachments"] = copy.deepcopy(args["attachments"])
        if "metadata" in args:
            changes["metadata"] = copy.deepcopy(args["metadata"])
        updated = replace(current, **changes)
        self._messages[(updated.channel, updated.ts)] = updated
        return {
            "channel": updated.channel,
            "ts": updated.ts,
            "text": updated.text,
            "message": updated.to_dict(),
        }

    def _chat_post_ephemeral(self, incoming: _Incoming) -> dict[str, Any]:
        args = incoming.args
        channel_id = self._resolve_channel(_opt_str(args, "channel"))
        user = _required(args, "user")
        channel = self._channels.get(channel_id)
        if channel is not None and channel.members and user not in channel.members:
            raise _ApiError("user_not_in_channel", f"{user} is not in {channel_id}")
        self._check_message_content(args, require=True)
        return {"message_ts": self._next_ts()}

    def _chat_delete(self, incoming: _Incoming) -> dict[str, Any]:
        message = self._existing_message(incoming.args, "ts")
        del self._messages[(message.channel, message.ts)]
        return {"channel": message.channel, "ts": message.ts}

    def _chat_get_permalink(self, incoming: _Incoming) -> dict[str, Any]:
        message = self._existing_message(incoming.args, "message_ts")
        permalink = f"{self.workspace.url}archives/{message.channel}/p{message.ts.replace('.', '')}"
        if message.thread_ts is not None:
            permalink += f"?thread_ts={message.thread_ts}&cid={message.channel}"
        return {"channel": message.channel, "permalink": permalink}

    def _views_open(self, incoming: _Incoming) -> dict[str, Any]:
        view = self._view_from_args(incoming.args, "modal")
        self._consume_trigger(incoming.args)
        view_id = self._next_id("V")
        self._claim_external_id(view, view_id)
        stored = self._store_view(view, view_id, root_view_id=view_id, previous_view_id=None)
        self._view_stacks[view_id] = [view_id]
        self._current_root = view_id
        return {"view": stored}

    def _views_push(self, incoming: _Incoming) -> dict[str, Any]:
        view = self._view_from_args(incoming.args, "modal")
        self._consume_trigger(incoming.args)
        root = self._current_root
        if root is None:
            raise _ApiError("not_found", "no modal is open to push onto")
        stack = self._view_stacks[root]
        if len(stack) >= VIEW_STACK_LIMIT:
            raise _ApiError("push_limit_reached", f"at most {VIEW_STACK_LIMIT} views per stack")
        view_id = self._next_id("V")
        self._claim_external_id(view, view_id)
        stored = self._store_view(view, view_id, root_view_id=root, previous_view_id=stack[-1])
        stack.append(view_id)
        return {"view": stored}

    def _views_update(self, incoming: _Incoming) -> dict[str, Any]:
        args = incoming.args
        view_id = _opt_str(args, "view_id")
        external_id = _opt_str(args, "external_id")
        if view_id is None and external_id is None:
            raise _ApiError("invalid_arguments", "one of view_id or external_id is required")
        if view_id is None and external_id is not None:
            view_id = self._external_ids.get(external_id)
        current = self._views.get(view_id or "")
        if current is None:
            raise _ApiError("not_found", f"no view {view_id or external_id}")
        view = self._view_from_args(args, current["type"])
        expected_hash = _opt_str(args, "hash")
        if expected_hash is not None and expected_hash != current["hash"]:
            raise _ApiError("hash_conflict", "the view changed since that hash was issued")
        self._claim_external_id(view, current["id"])
        stored = self._store_view(
            view,
            current["id"],
            root_view_id=current["root_view_id"],
            previous_view_id=current["previous_view_id"],
        )
        return {"view": stored}

    def _views_publish(self, incoming: _Incoming) -> dict[str, Any]:
        args = incoming.args
        user_id = _required(args, "user_id")
        if user_id not in self._users:
            raise _ApiError("invalid_arguments", f"unknown user_id {user_id}")
        view = self._view_from_args(args, "home")
        existing_id = self._home_views.get(user_id)
        expected_hash = _opt_str(args, "hash")
        if expected_hash is not None and (
            existing_id is None or self._views[existing_id]["hash"] != expected_hash
        ):
            raise _ApiError("hash_conflict", "the Home tab changed since that hash was issued")
        view_id = existing_id or self._next_id("V")
        self._claim_external_id(view, view_id)
        stored = self._store_view(view, view_id, root_view_id=None, previous_view_id=None)
        self._home_views[user_id] = view_id
        return {"view": stored}

    def _users_info(self, incoming: _Incoming) -> dict[str, Any]:
        user_id = _required(incoming.args, "user", error="user_not_found")
        user = self._users.get(user_id)
        if user is None:
            raise _ApiError("user_not_found", f"no user {user_id}")
        return {"user": user.to_api(self.workspace.team_id)}

    def _users_lookup_by_email(self, incoming: _Incoming) -> dict[str, Any]:
        email = _required(incoming.args, "email", error="users_not_found").casefold()
        for user in self._users.values():
            if user.email is not None and user.email.casefold() == email:
                return {"user": user.to_api(self.workspace.team_id)}
        raise _ApiError("users_not_found", f"no user with email {email}")

    def _conversations_open(self, incoming: _Incoming) -> dict[str, Any]:
        args = incoming.args
        channel = _opt_str(args, "channel")
        if channel is not None:
            if channel not in self._dms.values() and channel not in self._mpims.values():
                raise _ApiError("channel_not_found", f"no DM {channel}")
            return {"channel": {"id": channel}, "no_op": True, "already_open": True}
        raw_users = args.get("users")
        if isinstance(raw_users, list):
            user_ids = [str(u) for u in raw_users if u]
        else:
            user_ids = [u.strip() for u in str(raw_users or "").split(",") if u.strip()]
        if not user_ids:
            raise _ApiError("users_list_not_supplied", "missing required field: users")
        if len(user_ids) > CONVERSATION_USER_LIMIT:
            raise _ApiError("too_many_users", f"at most {CONVERSATION_USER_LIMIT} users")
        unknown = [u for u in user_ids if u not in self._users]
        if unknown:
            raise _ApiError("user_not_found", f"unknown users: {', '.join(unknown)}")
        if len(set(user_ids)) == 1:
            channel_id, existed = self._open_dm(user_ids[0])
        else:
            key = frozenset(user_ids)
            existed = key in self._mpims
            if not existed:
                self._mpims[key] = self._next_id("G")
            channel_id = self._mpims[key]
        body: dict[str, Any] = {"channel": {"id": channel_id}}
        if existed:
            body.update({"no_op": True, "already_open": True})
        return body

    def _conversations_info(self, incoming: _Incoming) -> dict[str, Any]:
        channel_id = _required(incoming.args, "channel", error="channel_not_found")
        channel = self._channels.get(channel_id)
        if channel is not None:
            info: dict[str, Any] = {
                "id": channel.id,
                "name": channel.name,
                "is_channel": not channel.is_private,
                "is_group": False,
                "is_im": False,
                "is_mpim": False,
                "is_private": channel.is_private,
                "is_archived": False,
                "is_member": True,
            }
            if channel.members:
                info["num_members"] = len(channel.members)
            return {"channel": info}
        for user_id, dm_id in self._dms.items():
            if dm_id == channel_id:
                return {"channel": {"id": dm_id, "is_im": True, "user": user_id, "is_open": True}}
        for members, mpim_id in self._mpims.items():
            if mpim_id == channel_id:
                return {
                    "channel": {
                        "id": mpim_id,
                        "is_mpim": True,
                        "is_private": True,
                        "num_members": len(members),
                    }
                }
        raise _ApiError("channel_not_found", f"no channel {channel_id}")

    def _conversations_replies(self, incoming: _Incoming) -> dict[str, Any]:
        """A thread: its parent then its replies, oldest first, ``limit`` a page (cursor = an offset).
        Message metadata only with ``include_all_metadata``, as Slack does."""
        args = incoming.args
        channel = self._resolve_channel(_opt_str(args, "channel"))
        ts = _required(args, "ts", error="thread_not_found")
        parent = self._messages.get((channel, ts))
        if parent is None:
            raise _ApiError("thread_not_found", f"no message {ts} in {channel}")
        replies = sorted(
            (m for (c, _), m in self._messages.items() if c == channel and m.thread_ts == ts and m.ts != ts),
            key=lambda m: float(m.ts),
        )
        thread = [parent, *replies]
        try:
            limit = max(1, min(1000, int(_opt_str(args, "limit") or "1000")))
            offset = int(_opt_str(args, "cursor") or "0")
        except ValueError:
            raise _ApiError("invalid_arguments", "limit and cursor must be integers") from None
        with_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        page = []
        for m in thread[offset : offset + limit]:
            message = m.to_dict()
            if not with_metadata:
                message.pop("metadata", None)
            if m.ts == ts and len(thread) > 1:
                message["reply_count"] = len(thread) - 1
            page.append(message)
        more = offset + limit < len(thread)
        return {
            "messages": page,
            "has_more": more,
            "response_metadata": {"next_cursor": str(offset + limit) if more else ""},
        }

    def _usergroups_users_list(self, incoming: _Incoming) -> dict[str, Any]:
        group_id = _required(incoming.args, "usergroup")
        members = self._usergroups.get(group_id)
        if members is None:
            raise _ApiError("no_such_subteam", f"no usergroup {group_id}")
        return {"users": list(members)}

    def _files_get_upload_url(self, incoming: _Incoming) -> dict[str, Any]:
        args = incoming.args
        filename = _required(args, "filename")
        raw_length = _required(args, "length")
        try:
            length = int(raw_length)
        except ValueError:
            raise _ApiError("invalid_arguments", f"length must be an integer: {raw_length}") from None
        if length <= 0:
            raise _ApiError("missing_argument", "length must be greater than 0")
        file_id = self._next_id("F")
        self._files[file_id] = _FileState(id=file_id, filename=filename, length=length)
        return {"upload_url": f"{self.root_url}/upload/{file_id}", "file_id": file_id}

    def _files_complete_upload(self, incoming: _Incoming) -> dict[str, Any]:
        args = incoming.args
        requested = args.get("files")
        if not isinstance(requested, list) or not requested:
            raise _ApiError("invalid_arguments", "files must be a JSON array of {id, title}")
        states: list[tuple[_FileState, str | None]] = []
        for item in requested:
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                raise _ApiError("invalid_arguments", "each file needs an 'id'")
            state = self._files.get(item["id"])
            if state is None or state.content is None:
                raise _ApiError("file_not_found", f"{item['id']} was not uploaded")
            title = item.get("title")
            states.append((state, title if isinstance(title, str) else None))
        channel_arg = _opt_str(args, "channel_id")
        channel_id = self._resolve_channel(channel_arg) if channel_arg is not None else None
        comment = _opt_str(args, "initial_comment")
        completed = []
        for state, title in states:
            state.title = title or state.filename
            state.channel_id = channel_id
            state.initial_comment = comment
            state.completed = True
            completed.append(
                {
                    "id": state.id,
                    "name": state.filename,
                    "title": state.title,
                    "size": len(state.content or b""),
                    "channels": [channel_id] if channel_id else [],
                }
            )
        return {"files": completed}
