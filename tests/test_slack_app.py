"""The Bolt wiring in `bot.slack_app`, exercised the way Slack exercises it.

Requests carry real v0 signatures (`bot.sandbox.signing`) and go through Bolt's Flask adapter; every Web API
call goes over loopback HTTP to `MockSlackServer`. The mock does not implement `oauth.v2.access` (it needs
Basic auth, not a token), so `SlackOAuthFront` below answers that one method itself — issuing codes and
single-use refresh tokens like Slack — and forwards every other method to the mock. A refresh token used twice
is refused, as Slack refuses it, so a rotation race shows up as a failure, not only as a count.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import fakeredis
import httpx
import pytest
import redis as redis_lib
import sqlalchemy as sa
from flask import Flask, Response, request
from redis.backoff import NoBackoff
from redis.retry import Retry
from slack_bolt import Ack, App, BoltContext, BoltRequest
from slack_bolt.adapter.flask import SlackRequestHandler
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request as WzRequest
from werkzeug.wrappers import Response as WzResponse

from bot.sandbox import DEFAULT_WORKSPACE, SandboxWorkspace
from bot.sandbox.signing import (
    JSON_CONTENT_TYPE,
    SignedSlackClient,
    event_envelope,
    sign,
    slash_command_body,
)
from bot.sandbox.slack_api import MockSlackServer
from bot.slack_app import (
    BOT_SCOPES,
    BOTS_TABLE,
    EVENTS_PATH,
    INSTALL_PATH,
    INSTALLATIONS_TABLE,
    OAUTH_REDIRECT_PATH,
    OAUTH_STATES_TABLE,
    SLACK_AUTHORIZATION_URL,
    InstallationNotFound,
    SlackConfig,
    build_bolt_app,
    build_slack_clients,
    socket_mode_handler,
)
from storage.db import make_engine
from storage.redis import make_redis

SIGNING_SECRET = "test-signing-secret-0123456789abcdef"
BOT_TOKEN = "xoxb-single-workspace-token"
CLIENT_ID = "1111111111.2222222222"
CLIENT_SECRET = "test-client-secret"
ANALYST = "U0ANALYST1"
WAIT_S = 10.0


# --------------------------------------------------------------------------- Slack's OAuth endpoint


class SlackOAuthFront:
    """`oauth.v2.access` as Slack answers it (code exchange and refresh), other methods forwarded to the mock.

    Codes and refresh tokens are single-use. Access tokens start with ``xoxb-`` so the mock accepts them.
    """

    def __init__(
        self,
        backend: MockSlackServer,
        *,
        workspace: SandboxWorkspace = DEFAULT_WORKSPACE,
        expires_in: int = 43_200,
        refresh_pause_s: float = 0.05,
    ) -> None:
        self._backend = backend
        self._workspace = workspace
        self._expires_in = expires_in
        self._pause = refresh_pause_s  # widens the window in which a missing lock would let two refreshes in
        self._lock = threading.Lock()
        self._codes: set[str] = set()
        self._refresh_tokens: set[str] = set()
        self._counter = 0
        self.requests: list[dict[str, str]] = []
        self._http = httpx.Client(timeout=10)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle
    def start(self) -> SlackOAuthFront:
        server = make_server("127.0.0.1", 0, self._wsgi, threaded=True, request_handler=_Quiet)
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._http.close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_port}/api/"

    # test controls
    def issue_code(self) -> str:
        code = f"code-{secrets.token_hex(6)}"
        with self._lock:
            self._codes.add(code)
        return code

    def issue_refresh_token(self) -> str:
        with self._lock:
            return self._new_refresh_token()

    def calls(self, grant_type: str) -> list[dict[str, str]]:
        with self._lock:
            return [r for r in self.requests if r.get("grant_type", "authorization_code") == grant_type]

    # internals
    def _new_refresh_token(self) -> str:
        token = f"xoxe-1-{secrets.token_hex(12)}"
        self._refresh_tokens.add(token)
        return token

    def _new_access_token(self) -> str:
        self._counter += 1
        return f"xoxb-{self._workspace.team_id}-{self._counter:04d}-{secrets.token_hex(6)}"

    def _wsgi(self, environ: Any, start_response: Any) -> Any:
        req = WzRequest(environ)
        method = req.path.removeprefix("/api/")
        if method == "oauth.v2.access":
            resp = WzResponse(json.dumps(self._oauth_v2_access(req)), content_type="application/json")
        else:
            forwarded = self._http.post(
                self._backend.url + method,
                content=req.get_data(),
                headers={
                    k: v for k, v in req.headers.items() if k.lower() in ("content-type", "authorization")
                },
            )
            resp = WzResponse(
                forwarded.content, status=forwarded.status_code, content_type="application/json"
            )
        return resp(environ, start_response)

    def _oauth_v2_access(self, req: WzRequest) -> dict[str, Any]:
        form = dict(parse_qsl(req.get_data(as_text=True)))
        scheme, _, encoded = req.headers.get("Authorization", "").partition(" ")
        creds = base64.b64decode(encoded).decode() if scheme == "Basic" else ""
        with self._lock:
            self.requests.append(form)
        if creds != f"{CLIENT_ID}:{CLIENT_SECRET}":
            return {"ok": False, "error": "invalid_client_id"}
        ws = self._workspace
        common = {
            "ok": True,
            "app_id": ws.api_app_id,
            "scope": ",".join(BOT_SCOPES),
            "token_type": "bot",
            "bot_user_id": ws.bot_user_id,
            "expires_in": self._expires_in,
            "team": {"id": ws.team_id, "name": ws.team_name},
            "enterprise": None,
            "is_enterprise_install": False,
        }
        if form.get("grant_type") == "refresh_token":
            time.sleep(self._pause)
            with self._lock:
                if form.get("refresh_token") not in self._refresh_tokens:
                    return {"ok": False, "error": "invalid_refresh_token"}
                self._refresh_tokens.discard(form["refresh_token"])
                return {
                    **common,
                    "access_token": self._new_access_token(),
                    "refresh_token": self._new_refresh_token(),
                }
        with self._lock:
            if form.get("code") not in self._codes:
                return {"ok": False, "error": "invalid_code"}
            self._codes.discard(form["code"])
            return {
                **common,
                "access_token": self._new_access_token(),
                "refresh_token": self._new_refresh_token(),
                "authed_user": {"id": ws.installer_user_id},
            }


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


# --------------------------------------------------------------------------- fixtures and helpers


@pytest.fixture
def slack_mock() -> Iterator[MockSlackServer]:
    with MockSlackServer() as server:
        yield server


@pytest.fixture
def oauth_front(slack_mock: MockSlackServer) -> Iterator[SlackOAuthFront]:
    front = SlackOAuthFront(slack_mock).start()
    yield front
    front.stop()


def _clear_slack_tables(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for table in (INSTALLATIONS_TABLE, BOTS_TABLE, OAUTH_STATES_TABLE):
            conn.execute(sa.text(f"DELETE FROM {table}"))  # noqa: S608 - constant table names


@pytest.fixture
def slack_engine(database_url: str) -> Iterator[sa.Engine]:
    """The migrated test database; conftest only empties the models' tables, so empty ours too."""
    engine = make_engine(database_url)
    _clear_slack_tables(engine)
    yield engine
    _clear_slack_tables(engine)
    engine.dispose()


@pytest.fixture
def redis_factory(redis_url: str | None) -> Iterator[Callable[[], redis_lib.Redis]]:
    """Clients of one Redis (real, or one shared fakeredis server): one per simulated process."""
    server = fakeredis.FakeServer()
    made: list[redis_lib.Redis] = []

    def make() -> redis_lib.Redis:
        client = make_redis(redis_url, fake_server=server)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def single_config(**overrides: Any) -> SlackConfig:
    return SlackConfig(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN, **overrides)


def oauth_config(**overrides: Any) -> SlackConfig:
    return SlackConfig(
        signing_secret=SIGNING_SECRET, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, **overrides
    )


def web_app(bolt: App) -> Flask:
    """The three Slack routes exactly as `bot/web.py` mounts them."""
    flask_app = Flask("slack-app-test")
    handler = SlackRequestHandler(bolt)

    def slack() -> Response:
        return handler.handle(request)

    flask_app.add_url_rule(EVENTS_PATH, "slack_events", slack, methods=["POST"])
    flask_app.add_url_rule(INSTALL_PATH, "slack_install", slack, methods=["GET"])
    flask_app.add_url_rule(OAUTH_REDIRECT_PATH, "slack_oauth_redirect", slack, methods=["GET"])
    return flask_app


def signed_client(flask_app: Flask, secret: str = SIGNING_SECRET) -> SignedSlackClient:
    http = httpx.Client(transport=httpx.WSGITransport(app=flask_app), base_url="http://testserver")
    return SignedSlackClient(http, secret)


def home_opened(user: str = ANALYST) -> dict[str, Any]:
    return {"type": "app_home_opened", "user": user, "channel": "D0ANALYST1", "tab": "home"}


def signed_bolt_request(body: str, content_type: str) -> BoltRequest:
    headers: dict[str, str | Sequence[str]] = {
        "content-type": content_type,
        **{k.lower(): v for k, v in sign(SIGNING_SECRET, body).items()},
    }
    return BoltRequest(body=body, headers=headers)


def expiring_installation(refresh_token: str, *, expires_in_s: int = 60) -> Installation:
    ws = DEFAULT_WORKSPACE
    return Installation(
        app_id=ws.api_app_id,
        team_id=ws.team_id,
        team_name=ws.team_name,
        bot_token="xoxb-about-to-expire",
        bot_id=ws.bot_id,
        bot_user_id=ws.bot_user_id,
        bot_scopes=list(BOT_SCOPES),
        bot_refresh_token=refresh_token,
        bot_token_expires_at=int(time.time()) + expires_in_s,
        user_id=ws.installer_user_id,
        token_type="bot",
    )


def store_for(engine: sa.Engine) -> SQLAlchemyInstallationStore:
    return SQLAlchemyInstallationStore(
        client_id=CLIENT_ID,
        engine=engine,
        bots_table_name=BOTS_TABLE,
        installations_table_name=INSTALLATIONS_TABLE,
    )


# --------------------------------------------------------------------------- configuration


def test_config_needs_exactly_one_mode() -> None:
    with pytest.raises(ValueError, match="not both"):
        SlackConfig(signing_secret="s", bot_token="xoxb-1", client_id="1.2", client_secret="c")
    with pytest.raises(ValueError, match="both SLACK_CLIENT_ID and SLACK_CLIENT_SECRET"):
        SlackConfig(signing_secret="s", client_id="1.2")
    with pytest.raises(ValueError, match="set SLACK_BOT_TOKEN, or"):
        SlackConfig(signing_secret="s")
    with pytest.raises(ValueError, match="blank"):
        SlackConfig(signing_secret="  ", bot_token="xoxb-1")
    with pytest.raises(ValueError, match="/slack/oauth_redirect"):
        oauth_config(redirect_uri="https://credit-desk.example.com/oauth/callback")
    assert single_config().mode == "single_workspace"
    assert oauth_config().mode == "oauth"


def test_listener_pool_is_sized_from_config(slack_mock: MockSlackServer) -> None:
    for threads in (32, 7):
        app = build_bolt_app(
            single_config(listener_threads=threads),
            engine=sa.create_engine("sqlite://"),
            redis=fakeredis.FakeRedis(),
            client_base_url=slack_mock.url,
        )
        executor = app.listener_runner.listener_executor
        assert isinstance(executor, ThreadPoolExecutor)
        assert executor._max_workers == threads
        executor.shutdown(wait=False)


# --------------------------------------------------------------------------- one workspace


def test_single_workspace_answers_signed_url_verification_and_rejects_bad_signatures(
    slack_mock: MockSlackServer,
) -> None:
    bolt = build_bolt_app(
        single_config(),
        engine=sa.create_engine("sqlite://"),
        redis=fakeredis.FakeRedis(),
        client_base_url=slack_mock.url,
    )
    ran: list[str] = []

    @bolt.command("/credit")
    def _credit(ack: Ack, command: dict[str, Any]) -> None:
        ran.append(command["text"])
        ack("ok")

    flask_app = web_app(bolt)
    body = json.dumps(
        {
            "token": "x",
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
            "type": "url_verification",
        }
    )
    good = signed_client(flask_app).post(body, content_type=JSON_CONTENT_TYPE)
    assert good.status_code == 200
    assert good.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}

    forged = signed_client(flask_app, secret="not-the-signing-secret").post(
        body, content_type=JSON_CONTENT_TYPE
    )
    assert forged.status_code == 401

    stale = signed_client(flask_app).command("/credit", "pending", ANALYST, response_url=None)
    assert stale.status_code == 200 and ran == ["pending"]
    old = slash_command_body("/credit", "help", ANALYST)
    replayed = signed_client(flask_app).post(
        old, content_type="application/x-www-form-urlencoded", timestamp=int(time.time()) - 600
    )
    assert replayed.status_code == 401
    assert ran == ["pending"]  # neither the forged nor the replayed request reached a listener
    # The static token is used as is: no auth.test at build time, one on the first authorized request.
    assert len(slack_mock.calls("auth.test")) == 1
    assert slack_mock.last("auth.test").token == BOT_TOKEN


def test_single_workspace_acks_lifecycle_events(slack_mock: MockSlackServer) -> None:
    executor = ThreadPoolExecutor(max_workers=4)
    bolt = build_bolt_app(
        single_config(),
        engine=sa.create_engine("sqlite://"),
        redis=fakeredis.FakeRedis(),
        client_base_url=slack_mock.url,
        listener_executor=executor,
    )
    client = signed_client(web_app(bolt))
    for event in (
        {"type": "tokens_revoked", "tokens": {"bot": [DEFAULT_WORKSPACE.bot_user_id]}},
        {"type": "app_uninstalled"},
    ):
        assert client.event(event).status_code == 200  # not 404, which Slack would retry
    unknown = client.event({"type": "reaction_added", "user": ANALYST})
    assert unknown.status_code == 404  # the contrast: an event nobody listens to
    executor.shutdown(wait=True)


# --------------------------------------------------------------------------- event dedupe


def _dedupe_app(
    slack_mock: MockSlackServer, redis_client: redis_lib.Redis
) -> tuple[App, ThreadPoolExecutor, list[str]]:
    executor = ThreadPoolExecutor(max_workers=8)
    bolt = build_bolt_app(
        single_config(),
        engine=sa.create_engine("sqlite://"),
        redis=redis_client,
        client_base_url=slack_mock.url,
        listener_executor=executor,
    )
    seen: list[str] = []
    lock = threading.Lock()

    @bolt.event("app_home_opened")
    def _home(body: dict[str, Any]) -> None:
        with lock:
            seen.append(body["event_id"])

    return bolt, executor, seen


def test_repeated_event_runs_listeners_once(
    slack_mock: MockSlackServer, redis_factory: Callable[[], redis_lib.Redis]
) -> None:
    redis_client = redis_factory()
    bolt, executor, seen = _dedupe_app(slack_mock, redis_client)
    client = signed_client(web_app(bolt))

    first = client.event(home_opened(), event_id="Ev0DEDUPE1")
    retry = client.event(home_opened(), event_id="Ev0DEDUPE1", retry_num=1, retry_reason="http_timeout")
    again = client.event(home_opened(), event_id="Ev0DEDUPE1", retry_num=2)
    other = client.event(home_opened(), event_id="Ev0DEDUPE2")
    assert [r.status_code for r in (first, retry, again, other)] == [200, 200, 200, 200]
    executor.shutdown(wait=True)  # every listener that was started has finished
    assert sorted(seen) == ["Ev0DEDUPE1", "Ev0DEDUPE2"]
    ttl = redis_client.ttl("credit-desk:slack:event:Ev0DEDUPE1")
    assert 0 < ttl <= 3600


def test_event_dedupe_is_shared_between_processes(
    slack_mock: MockSlackServer, redis_factory: Callable[[], redis_lib.Redis]
) -> None:
    """A retry may land on another worker: the claim lives in Redis, not in the process."""
    bolt_a, executor_a, seen_a = _dedupe_app(slack_mock, redis_factory())
    bolt_b, executor_b, seen_b = _dedupe_app(slack_mock, redis_factory())
    body = event_envelope(home_opened(), event_id="Ev0SHARED1")
    for bolt in (bolt_a, bolt_b):
        assert bolt.dispatch(signed_bolt_request(body, JSON_CONTENT_TYPE)).status == 200
    executor_a.shutdown(wait=True)
    executor_b.shutdown(wait=True)
    assert seen_a + seen_b == ["Ev0SHARED1"]


def test_event_dedupe_fails_open_when_redis_is_down(slack_mock: MockSlackServer) -> None:
    unreachable = redis_lib.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.5, socket_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )
    bolt, executor, seen = _dedupe_app(slack_mock, unreachable)
    client = signed_client(web_app(bolt))
    for _ in range(2):
        assert client.event(home_opened(), event_id="Ev0NOREDIS").status_code == 200
    executor.shutdown(wait=True)
    assert seen == ["Ev0NOREDIS", "Ev0NOREDIS"]  # processed (twice) rather than lost


# --------------------------------------------------------------------------- OAuth install flow


def test_oauth_install_flow_saves_the_installation_and_authorizes_later_requests(
    slack_engine: sa.Engine, slack_mock: MockSlackServer, oauth_front: SlackOAuthFront
) -> None:
    executor = ThreadPoolExecutor(max_workers=4)
    bolt = build_bolt_app(
        oauth_config(redirect_uri="https://credit-desk.example.com/slack/oauth_redirect"),
        engine=slack_engine,
        redis=fakeredis.FakeRedis(),
        client_base_url=oauth_front.url,
        listener_executor=executor,
    )
    tokens_seen: list[str | None] = []

    @bolt.command("/credit")
    def _credit(ack: Ack, context: BoltContext) -> None:
        tokens_seen.append(context.bot_token)
        ack("ok")

    flask_app = web_app(bolt)
    browser = flask_app.test_client(use_cookies=False)  # cookies sent by hand, as a browser would

    # 1. /slack/install: a state in the database, the same state in a cookie, and off to Slack.
    install = browser.get(INSTALL_PATH)
    assert install.status_code == 302
    location = urlsplit(install.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == SLACK_AUTHORIZATION_URL
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["client_id"] == CLIENT_ID
    assert query["scope"].split(",") == list(BOT_SCOPES)
    assert query["redirect_uri"] == "https://credit-desk.example.com/slack/oauth_redirect"
    state = query["state"]
    cookie = install.headers["Set-Cookie"]
    assert cookie.startswith(f"slack-app-oauth-state={state};")
    assert "HttpOnly" in cookie and "Secure" in cookie
    with slack_engine.connect() as conn:
        assert conn.execute(sa.text(f"SELECT state FROM {OAUTH_STATES_TABLE}")).scalars().all() == [state]  # noqa: S608

    # A callback from a browser without the cookie is refused before any code exchange.
    no_cookie = browser.get(OAUTH_REDIRECT_PATH, query_string={"code": "x", "state": state})
    assert no_cookie.status_code == 400
    assert oauth_front.calls("authorization_code") == []

    # 2. Slack sends the user back with a code; we exchange it and store the installation.
    code = oauth_front.issue_code()
    cookie_header = {"Cookie": f"slack-app-oauth-state={state}"}
    done = browser.get(
        OAUTH_REDIRECT_PATH, query_string={"code": code, "state": state}, headers=cookie_header
    )
    assert done.status_code == 200, done.get_data(as_text=True)
    exchanges = oauth_front.calls("authorization_code")
    assert [e["code"] for e in exchanges] == [code]
    assert exchanges[0]["redirect_uri"] == "https://credit-desk.example.com/slack/oauth_redirect"

    installation = store_for(slack_engine).find_installation(
        enterprise_id=None, team_id=DEFAULT_WORKSPACE.team_id
    )
    assert installation is not None
    assert installation.bot_token is not None and installation.bot_token.startswith("xoxb-")
    assert installation.bot_refresh_token is not None and installation.bot_refresh_token.startswith("xoxe-")
    assert installation.bot_id == DEFAULT_WORKSPACE.bot_id  # from auth.test, answered by the mock
    assert installation.user_id == DEFAULT_WORKSPACE.installer_user_id
    assert installation.bot_token_expires_at is not None
    assert abs(installation.bot_token_expires_at - (time.time() + 43_200)) < 120

    # The state was single-use.
    replay = browser.get(
        OAUTH_REDIRECT_PATH, query_string={"code": code, "state": state}, headers=cookie_header
    )
    assert replay.status_code == 401

    # 3. A signed request from that workspace is authorized with the stored token.
    response = signed_client(flask_app).command("/credit", "pending", ANALYST)
    assert response.status_code == 200 and response.text == "ok"
    assert tokens_seen == [installation.bot_token]

    # 4. Uninstalling deletes the installation (token revocation listeners on our store).
    assert signed_client(flask_app).event({"type": "app_uninstalled"}).status_code == 200
    executor.shutdown(wait=True)
    assert (
        store_for(slack_engine).find_installation(enterprise_id=None, team_id=DEFAULT_WORKSPACE.team_id)
        is None
    )


def test_request_from_a_team_without_installation_reaches_no_listener(
    slack_engine: sa.Engine, oauth_front: SlackOAuthFront, slack_mock: MockSlackServer
) -> None:
    bolt = build_bolt_app(
        oauth_config(), engine=slack_engine, redis=fakeredis.FakeRedis(), client_base_url=oauth_front.url
    )
    ran: list[str] = []

    @bolt.command("/credit")
    def _credit(ack: Ack) -> None:
        ran.append("credit")
        ack()

    hook = slack_mock.response_url()
    response = signed_client(web_app(bolt)).command("/credit", "pending", ANALYST, response_url=hook)
    assert ran == []
    assert response.status_code == 200  # Bolt tells the user instead of failing the command
    [told] = slack_mock.wait_for_response(hook, timeout=WAIT_S)
    assert "install" in json.dumps(told.body).lower()
    assert slack_mock.calls("auth.test") == []  # nothing to test: no token was found


# --------------------------------------------------------------------------- token rotation


def test_rotation_happens_once_when_many_threads_need_a_client(
    slack_engine: sa.Engine,
    database_url: str,
    oauth_front: SlackOAuthFront,
    slack_mock: MockSlackServer,
    redis_factory: Callable[[], redis_lib.Redis],
) -> None:
    refresh_token = oauth_front.issue_refresh_token()
    store_for(slack_engine).save(expiring_installation(refresh_token))

    # Two "processes": separate engines and Redis connections, one database and one Redis.
    other_engine = make_engine(database_url)
    clients = [
        build_slack_clients(
            oauth_config(), engine=engine, redis=redis_factory(), client_base_url=oauth_front.url
        )
        for engine in (slack_engine, other_engine)
    ]
    barrier = threading.Barrier(10)

    def get_token(i: int) -> str | None:
        barrier.wait(timeout=WAIT_S)
        return clients[i % 2].client_for_team(DEFAULT_WORKSPACE.team_id).token

    with ThreadPoolExecutor(max_workers=10) as pool:
        tokens = list(pool.map(get_token, range(10)))
    other_engine.dispose()

    refreshes = oauth_front.calls("refresh_token")
    assert [r["refresh_token"] for r in refreshes] == [refresh_token]
    stored = store_for(slack_engine).find_installation(enterprise_id=None, team_id=DEFAULT_WORKSPACE.team_id)
    assert stored is not None and stored.bot_token is not None
    assert stored.bot_token != "xoxb-about-to-expire"
    assert stored.bot_refresh_token not in (None, refresh_token)
    assert set(tokens) == {stored.bot_token}
    assert stored.bot_token_expires_at is not None and stored.bot_token_expires_at > time.time() + 40_000

    # The new token works against the Web API, and a fresh token is not rotated again.
    assert (
        clients[0].client_for_team(DEFAULT_WORKSPACE.team_id).auth_test()["team_id"]
        == DEFAULT_WORKSPACE.team_id
    )
    assert slack_mock.last("auth.test").token == stored.bot_token
    assert len(oauth_front.calls("refresh_token")) == 1


def test_incoming_requests_rotate_under_the_same_lock(
    slack_engine: sa.Engine, oauth_front: SlackOAuthFront, redis_factory: Callable[[], redis_lib.Redis]
) -> None:
    refresh_token = oauth_front.issue_refresh_token()
    store_for(slack_engine).save(expiring_installation(refresh_token))
    redis_client = redis_factory()
    apps = [
        build_bolt_app(
            oauth_config(), engine=slack_engine, redis=redis_client, client_base_url=oauth_front.url
        )
        for _ in range(2)
    ]
    tokens: list[str | None] = []
    lock = threading.Lock()
    for bolt in apps:

        @bolt.command("/credit")
        def _credit(ack: Ack, context: BoltContext) -> None:
            with lock:
                tokens.append(context.bot_token)
            ack()

    barrier = threading.Barrier(6)

    def send(i: int) -> int:
        body = slash_command_body("/credit", "pending", ANALYST)
        barrier.wait(timeout=WAIT_S)
        return apps[i % 2].dispatch(signed_bolt_request(body, "application/x-www-form-urlencoded")).status

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(send, range(6)))

    assert statuses == [200] * 6
    assert [r["refresh_token"] for r in oauth_front.calls("refresh_token")] == [refresh_token]
    stored = store_for(slack_engine).find_installation(enterprise_id=None, team_id=DEFAULT_WORKSPACE.team_id)
    assert stored is not None
    assert tokens == [stored.bot_token] * 6


def test_client_for_unknown_team_says_so(slack_engine: sa.Engine, oauth_front: SlackOAuthFront) -> None:
    clients = build_slack_clients(
        oauth_config(), engine=slack_engine, redis=fakeredis.FakeRedis(), client_base_url=oauth_front.url
    )
    with pytest.raises(InstallationNotFound, match="T0NOTHERE1"):
        clients.client_for_team("T0NOTHERE1")


def test_single_workspace_clients_use_the_static_token(slack_mock: MockSlackServer) -> None:
    clients = build_slack_clients(
        single_config(),
        engine=sa.create_engine("sqlite://"),
        redis=fakeredis.FakeRedis(),
        client_base_url=slack_mock.url,
    )
    client = clients.client_for_team(DEFAULT_WORKSPACE.team_id)
    assert client.token == BOT_TOKEN
    client.chat_postMessage(channel=DEFAULT_WORKSPACE.channel_id, text="hello")
    assert slack_mock.last("chat.postMessage").token == BOT_TOKEN


# --------------------------------------------------------------------------- schema and Socket Mode


@pytest.mark.parametrize(
    ("table", "builder"),
    [
        (INSTALLATIONS_TABLE, SQLAlchemyInstallationStore.build_installations_table),
        (BOTS_TABLE, SQLAlchemyInstallationStore.build_bots_table),
        (OAUTH_STATES_TABLE, SQLAlchemyOAuthStateStore.build_oauth_states_table),
    ],
)
def test_migrated_tables_match_the_sdk(slack_engine: sa.Engine, table: str, builder: Any) -> None:
    """Migration 0003 is frozen; this catches an SDK upgrade that changes its tables."""
    expected = builder(sa.MetaData(), table)
    actual = {c["name"]: c for c in sa.inspect(slack_engine).get_columns(table)}
    assert set(actual) == {c.name for c in expected.columns}
    for column in expected.columns:
        found = actual[column.name]
        assert found["nullable"] == column.nullable or column.primary_key, column.name
        assert type(found["type"]).__visit_name__ in _compatible(column.type), (column.name, found["type"])
        expected_length = getattr(column.type, "length", None)
        if expected_length is not None:
            assert getattr(found["type"], "length", None) == expected_length, column.name


def _compatible(column_type: sa.types.TypeEngine[Any]) -> set[str]:
    if isinstance(column_type, sa.String):
        return {"VARCHAR", "string", "varchar"}
    if isinstance(column_type, sa.DateTime):
        return {"DATETIME", "TIMESTAMP", "datetime"}
    if isinstance(column_type, sa.Boolean):
        return {"BOOLEAN", "boolean"}
    if isinstance(column_type, sa.Integer):
        return {"INTEGER", "integer"}
    raise AssertionError(f"unexpected SDK column type {column_type!r}")


def test_socket_mode_connects_through_the_configured_api_url(slack_mock: MockSlackServer) -> None:
    bolt = build_bolt_app(
        single_config(),
        engine=sa.create_engine("sqlite://"),
        redis=fakeredis.FakeRedis(),
        client_base_url=slack_mock.url,
    )
    with pytest.raises(ValueError, match="xapp-"):
        socket_mode_handler(bolt, BOT_TOKEN)
    handler = socket_mode_handler(bolt, "xapp-1-A0CREDITDK-123-abc")
    try:
        with pytest.raises(SlackApiError):
            handler.client.issue_new_wss_url()  # unknown to the mock: what matters is where it went
    finally:
        handler.close()  # type: ignore[no-untyped-call]
    call = slack_mock.last("apps.connections.open")
    assert call.token == "xapp-1-A0CREDITDK-123-abc"
