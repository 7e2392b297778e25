"""What stands between the network and the city: security headers, a bounded request body, a
per-client rate limit, CSRF tokens for forms, and who the client is behind a trusted proxy
(docs/service.md, "Limits")."""

from __future__ import annotations

import hmac
import secrets
import time
from collections import deque
from collections.abc import Iterable
from ipaddress import IPv4Network, IPv6Network, ip_address

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# No inline script or style anywhere: everything the pages use is served from /static.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    # The QR's URL carries the signed payload: never hand it to another site as a Referer.
    (b"referrer-policy", b"no-referrer"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class Guard:
    """ASGI middleware: the security headers on every response (and no-store unless the route
    set its own caching), and request bodies cut off past `max_body` bytes with a 413."""

    def __init__(self, app: ASGIApp, *, max_body: int):
        self.app, self.max_body = app, max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            return await _too_large(send, self.max_body)
        seen, started = 0, False

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise BodyTooLarge
            return message

        async def with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                names = {name for name, _ in message.get("headers", [])}
                extra = [h for h in HEADERS if h[0] not in names]
                if b"cache-control" not in names:
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        try:
            await self.app(scope, bounded, with_headers)
        except BodyTooLarge:
            if not started:
                await _too_large(send, self.max_body)


class BodyTooLarge(Exception):
    pass


async def _too_large(send: Send, limit: int) -> None:
    body = (
        b'{"type":"urn:creditcert:problem:too-large","code":"too-large","status":413,'
        b'"title":"request body too large","detail":"at most %d bytes"}' % limit
    )
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/problem+json"), *HEADERS],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RateLimit:
    """At most `per_minute` events per key in any sliding minute (0: no limit). In memory: each
    service instance counts its own clients."""

    def __init__(self, per_minute: int, *, clock=time.monotonic):
        self.per_minute, self.clock = per_minute, clock
        self._seen: dict[str, deque[float]] = {}

    def allow(self, key: str) -> bool:
        if not self.per_minute:
            return True
        now = self.clock()
        times = self._seen.setdefault(key, deque())
        while times and times[0] <= now - 60:
            times.popleft()
        if len(times) >= self.per_minute:
            return False
        times.append(now)
        if len(self._seen) > 100_000:  # forget idle clients rather than grow without bound
            self._seen = {k: v for k, v in self._seen.items() if v and v[-1] > now - 60}
        return True

    def retry_after(self, key: str) -> int:
        times = self._seen.get(key)
        return max(1, int(times[0] + 60 - self.clock()) + 1) if times else 1


Networks = Iterable[IPv4Network | IPv6Network]


def _within(address: str, networks: Networks) -> bool:
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def from_proxy(request: Request, proxies: Networks) -> bool:
    """Whether the connection comes from a configured reverse proxy."""
    peer = request.scope.get("client")
    return bool(peer) and _within(peer[0], proxies)


def client_address(request: Request, proxies: Networks) -> str:
    """The client's address: the peer, or behind trusted proxies the last X-Forwarded-For hop
    that is not one of them."""
    peer = (request.scope.get("client") or ("unknown", 0))[0]
    if not _within(peer, proxies):
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _within(hop, proxies):
            return hop
    return peer


def csrf_token(session: dict) -> str:
    """The session's form token, made on first use."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(24)
    return token


def csrf_ok(session: dict, sent: object) -> bool:
    expected = session.get("csrf")
    return (
        isinstance(expected, str) and isinstance(sent, str) and hmac.compare_digest(expected, sent)
    )
