"""Limits a shared server needs: questions per client per minute, and a lockout after repeated
failed logins. Pure, in-memory, thread-safe; the app holds one of each. Not a defence against a
distributed attack: they key on what the server sees (the client address, the user name).

>>> limit = RateLimit(per_minute=2, clock=iter([0.0, 1.0, 2.0, 61.0]).__next__)
>>> [limit.wait("1.2.3.4") for _ in range(4)]
[0.0, 0.0, 58.0, 0.0]
"""

from __future__ import annotations

import logging
import contextvars
import threading
import time
from collections import deque
from collections.abc import Callable

log = logging.getLogger(__name__)
MAX_KEYS = 10_000  # clients (or user names) remembered at most: memory stays bounded
MAX_NAME_CHARS, MAX_PASSWORD_CHARS = 256, 1024


def _bounded(seen: dict[str, deque[float]], now: float, window: float) -> dict[str, deque[float]]:
    """`seen` itself while it has at most MAX_KEYS keys; else without the keys idle for `window`,
    and if still too many, without the oldest (a flood of new keys forgets old ones: memory wins).

    >>> len(_bounded({str(n): deque([float(n)]) for n in range(MAX_KEYS + 5)}, 0.0, 60))
    5000
    """
    if len(seen) <= MAX_KEYS:
        return seen
    kept = {k: v for k, v in seen.items() if v and now - v[-1] < window}
    if len(kept) > MAX_KEYS:
        kept = dict(list(kept.items())[-(MAX_KEYS // 2):])
    return kept


class RateLimit:
    """At most `per_minute` events per key in any 60 seconds (0: no limit)."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def wait(self, key: str) -> float:
        """0.0 and the event is counted, or the seconds until `key` may try again (not counted)."""
        if self.per_minute <= 0:
            return 0.0
        now = self.clock()
        with self._lock:
            seen = self._seen.setdefault(key, deque())
            while seen and now - seen[0] >= 60:
                seen.popleft()
            if len(seen) >= self.per_minute:
                return round(60 - (now - seen[0]), 1)
            seen.append(now)
            self._seen = _bounded(self._seen, now, 60)
            return 0.0


class LoginGuard:
    """Checks a login against `user:password`; after `attempts` failures for one user name within
    `window` seconds, that name is refused (even with the right password) for `window` seconds.

    >>> guard = LoginGuard("reader:s3cret", attempts=2, window=300, clock=iter([0, 1, 2, 3, 400]).__next__)
    >>> [guard("reader", p) for p in ("x", "y", "s3cret", "s3cret", "s3cret")]
    [False, False, False, False, True]
    """

    def __init__(self, spec: str, attempts: int = 5, window: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.user, _, self.password = spec.partition(":")
        self.attempts = attempts
        self.window = window
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def __call__(self, user: str, password: str) -> bool:
        import hmac

        if len(user) > MAX_NAME_CHARS or len(password) > MAX_PASSWORD_CHARS:
            return False  # never a valid login; not remembered, so it costs no memory
        now = self.clock()
        with self._lock:
            failures = self._failures.setdefault(user, deque())
            while failures and now - failures[0] >= self.window:
                failures.popleft()
            if len(failures) >= self.attempts:
                return False  # locked out until the oldest failure leaves the window
            ok = hmac.compare_digest(user.encode(), self.user.encode()) and hmac.compare_digest(
                password.encode(), self.password.encode())
            if not ok:
                failures.append(now)
                self._failures = _bounded(self._failures, now, self.window)
            return ok


    def locked(self, user: str) -> bool:
        """Whether `user` is locked out now (too many recent failures)."""
        now = self.clock()
        with self._lock:
            return sum(now - t < self.window for t in self._failures.get(user, ())) >= self.attempts


class KeyGuard:
    """Checks the bearer key of the answers API, MCP and the page's `ask` endpoints (compared in
    constant time); after `attempts` wrong keys from one client address within `window` seconds,
    that address is refused (even with the right key) for `window` seconds. When the key is the
    login password (`login`), it is also refused while that login is locked out.

    >>> guard = KeyGuard("k", attempts=2, window=300, clock=iter([0, 1, 2, 3, 4, 400]).__next__)
    >>> [guard("1.2.3.4", k) for k in ("x", "y", "k")], guard("5.6.7.8", "k"), guard("1.2.3.4", "")
    ([False, False, False], True, False)
    >>> guard("1.2.3.4", "k")
    True
    """

    def __init__(self, key: str, attempts: int = 10, window: float = 300.0,
                 clock: Callable[[], float] = time.monotonic, login: LoginGuard | None = None) -> None:
        self.key, self.attempts, self.window, self.clock, self.login = key, attempts, window, clock, login
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def __call__(self, client: str, given: str) -> bool:
        import hmac

        now = self.clock()
        with self._lock:
            failures = self._failures.setdefault(client, deque())
            while failures and now - failures[0] >= self.window:
                failures.popleft()
            if len(failures) >= self.attempts:
                return False  # locked out until the oldest failure leaves the window
            ok = len(given) <= MAX_PASSWORD_CHARS and hmac.compare_digest(given.encode(), self.key.encode())
            if not ok:
                failures.append(now)
                self._failures = _bounded(self._failures, now, self.window)
        return ok and not (self.login is not None and self.login.locked(self.login.user))


REQUEST_CLIENT: contextvars.ContextVar[str] = contextvars.ContextVar("request_client", default="unknown")


class KeyLogin:
    """The page's login when QA_API_KEY is set without QA_AUTH: any user name, the key as the
    password. Gradio gives a login check no request, so the client address comes from
    `REQUEST_CLIENT` (set by `RequestGuard`): wrong keys count against it as on every door."""

    def __init__(self, keys: KeyGuard) -> None:
        self.keys = keys

    def __call__(self, user: str, password: str) -> bool:
        return len(user) <= MAX_NAME_CHARS and self.keys(REQUEST_CLIENT.get(), password)


ANSWERS_AT_ONCE = 4  # questions the answers API and MCP answer at once (the page's queue has its own 4)
_answering = None


def answering():  # noqa: ANN201 - an anyio.CapacityLimiter
    """The limit on answers the API doors compute at once, shared by /v1 and MCP: more clients
    wait their turn instead of each growing the app's memory (30 at once took it from 0.4 to 2.5 GB)."""
    global _answering
    if _answering is None:
        import anyio

        _answering = anyio.CapacityLimiter(ANSWERS_AT_ONCE)
    return _answering


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


class HostRule:
    """Which host names a request may name in its `Host` and `Origin` headers. A page served under
    another name (DNS rebinding: `attacker.example` resolving to this machine) is refused, so a
    foreign site can never act through a visitor's browser. Accepted: loopback names, any IP
    address (a rebinding needs a name), this machine's names, the served `--host`, and `allowed`
    (comma-separated; `.example.org` accepts its subdomains; `*` accepts every name).

    >>> rule = HostRule("docs.example.org, .corp.example")
    >>> [rule.allows(h) for h in ("localhost:7860", "10.0.0.5:80", "[::1]:7860", "docs.example.org",
    ...                            "wiki.corp.example", "attacker.example:7874", "")]
    [True, True, True, True, True, False, False]
    """

    def __init__(self, allowed: str = "", served_host: str = "") -> None:
        import socket

        names = [n.strip().lower() for n in allowed.split(",") if n.strip()]
        self.any = "*" in names
        self.suffixes = tuple(n for n in names if n.startswith("."))
        self.names = {n for n in names if not n.startswith(".")} | set(LOOPBACK_NAMES)
        self.names |= {n.lower() for n in (served_host, socket.gethostname(), socket.getfqdn()) if n}

    def allows(self, host: str) -> bool:
        """`host` as a `Host` header gives it (name or address, optional port)."""
        import ipaddress

        name = host.strip().lower()
        if name.startswith("["):  # [v6]:port
            name = name[1:].partition("]")[0]
        elif name.count(":") == 1:
            name = name.partition(":")[0]
        if not name:
            return False
        if self.any or name in self.names or name.endswith(self.suffixes):
            return True
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True


UPLOAD_PATH = "/gradio_api/upload"  # the page's uploads: the only path with the larger body limit


class RequestGuard:
    """ASGI middleware in front of the app: refuses a request whose `Host` or `Origin` names a
    host `rule` does not allow (400/403), one framed two ways (Content-Length and Transfer-Encoding:
    400, the connection closed, so nothing smuggled after it is served), and a body over `max_body`
    bytes (`max_upload_body` for the page's uploads) with 413 — from its Content-Length before
    anything is read, or as soon as a body without one grows past the limit; before any route,
    login or parsing work. A client that hangs up mid-request ends it quietly (no traceback)."""

    def __init__(self, app, rule: HostRule, max_body: int, max_upload_body: int) -> None:  # noqa: ANN001
        self.app, self.rule, self.max_body, self.max_upload_body = app, rule, max_body, max_upload_body

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        REQUEST_CLIENT.set((scope.get("client") or ("unknown",))[0] or "unknown")  # for `KeyLogin`
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        refusal = self.refusal(headers, scope.get("path", ""))
        if refusal is not None:
            if scope["type"] == "websocket":
                return await send({"type": "websocket.close", "code": 1008})
            return await _respond(send, *refusal)
        if scope["type"] == "websocket":
            return await self.app(scope, receive, send)
        limit = self.body_limit(scope.get("path", ""))
        received, started, over, gone = 0, False, False, False

        async def counted_receive():  # noqa: ANN202
            nonlocal received, started, over, gone
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            gone = gone or message["type"] == "http.disconnect"
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:  # answered here; to the app the client has left
                    over = True
                    if not started:
                        started = True
                        await _respond(send, 413, _too_large(limit))
                    return {"type": "http.disconnect"}
            return message

        async def tracked_send(message) -> None:  # noqa: ANN001
            nonlocal started
            if over:
                return  # the 413 was sent: the app's own reply to a "client that left" is dropped
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except Exception:
            if not (over or gone):
                raise
            log.info("%s %s: the client left (or the body was over the limit) before the answer",
                     scope.get("method"), scope.get("path"))

    def refusal(self, headers: dict[str, str], path: str) -> tuple[int, str] | None:
        """(status, message) when the request must be refused before it is read, else None."""
        from urllib.parse import urlsplit

        host = headers.get("host")
        if host is not None and not self.rule.allows(host):
            return 400, f"this server does not answer for the host {host[:100]!r} (QA_ALLOWED_HOSTS)"
        origin = headers.get("origin")  # "null" (a sandboxed frame, a file:// page) is foreign too
        if origin and (origin == "null" or not self.rule.allows(urlsplit(origin).netloc)):
            return 403, f"requests from {origin[:100]!r} are not accepted (QA_ALLOWED_HOSTS)"
        length = headers.get("content-length", "")
        if length and "transfer-encoding" in headers:
            return 400, "a request may not carry both Content-Length and Transfer-Encoding (RFC 9112)"
        if length.isdigit() and int(length) > self.body_limit(path):
            return 413, _too_large(self.body_limit(path))
        return None

    def body_limit(self, path: str) -> int:
        return self.max_upload_body if path.rstrip("/").endswith(UPLOAD_PATH) else self.max_body


def calls_a_tool(body: bytes) -> bool:
    """Whether a JSON-RPC body (one message or a batch) calls a tool, read as JSON (so however its
    method is escaped); a body that is not JSON calls nothing (the endpoint refuses it).

    >>> calls_a_tool(b'{"jsonrpc": "2.0", "id": 1, "method": "tools\\\\/call"}'), calls_a_tool(b'[{"method": "tools/list"}]')
    (True, False)
    >>> calls_a_tool(b'[{"method": "initialize"}, {"method": "tools/call"}]'), calls_a_tool(b'{"method": ')
    (True, False)
    """
    import json

    try:
        request = json.loads(body)
    except (ValueError, RecursionError):
        return False
    messages = request if isinstance(request, list) else [request]
    return any(isinstance(m, dict) and m.get("method") == "tools/call" for m in messages)


class LimitToolCalls:
    """ASGI middleware for the MCP endpoint: a request that calls a tool ("tools/call") counts
    against the client's rate limit, shared with the page and `/v1` (`wait`), and over it gets
    429 with Retry-After; the other messages of a session (initialize, tools/list…) do not count.
    The body is read here (the RequestGuard in front has bounded it) and handed on unchanged."""

    def __init__(self, app, wait: Callable[[str], float]) -> None:  # noqa: ANN001
        self.app, self.wait = app, wait

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] != "http" or scope.get("method") != "POST":
            return await self.app(scope, receive, send)
        messages, body = [], b""
        while True:
            message = await receive()
            messages.append(message)
            body += message.get("body", b"")
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        if calls_a_tool(body):
            client = scope.get("client") or ("unknown", 0)
            wait = self.wait(client[0])
            if wait > 0:
                return await _respond(send, 429, f"Too many questions from your address in the last minute: ask "
                                                 f"again in {wait:.0f} s.", {"retry-after": str(max(1, round(wait)))})
        queued = iter(messages)

        async def replay():  # noqa: ANN202
            return next(queued, None) or await receive()

        await self.app(scope, replay, send)


def _too_large(limit: int) -> str:
    return f"the request body is over the limit of {limit / 2**20:g} MB (QA_MAX_REQUEST_MB, QA_MAX_FILE_MB)"


async def _respond(send, status: int, message: str, extra: dict[str, str] | None = None) -> None:  # noqa: ANN001
    import json

    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")] + [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Mounted:
    """ASGI middleware: a request whose path is under one of `apps`' prefixes (the answers API
    at /v1/, the MCP endpoint at /mcp) goes to that app, the rest to the page."""

    def __init__(self, app, apps: dict) -> None:  # noqa: ANN001
        self.app, self.apps = app, apps

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] == "http":
            path = scope.get("path", "")
            for prefix, app in self.apps.items():
                if path == prefix.rstrip("/") or path.startswith(prefix.rstrip("/") + "/"):
                    return await app(scope, receive, send)
        return await self.app(scope, receive, send)
