"""Partners' bundles fetched from their services (docs/partners.md, "Sync over HTTP").

`creditcert partner add CODE --url URL --fingerprint HEX` records where a partner publishes;
`partner sync` fetches `<URL>/.well-known/creditcert/bundle.cose` with a conditional request and
hands what comes back to the very import a file goes through (pin, signature, sequence,
validity). A bad or unreachable answer never replaces the good bundle held; the state of the
last attempt is kept beside it (`sync.json`) so that `partner list` can say since when a partner
has been stale.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from creditcert.config import Partners
from creditcert.errors import PartnerError
from creditcert.files import write_atomically

WELL_KNOWN = "/.well-known/creditcert/bundle.cose"
MAX_BUNDLE = 4 * 1024 * 1024  # bytes; a bundle is a few KiB
TIMEOUT = 10.0  # seconds, for connecting and for each read


@dataclass(frozen=True, slots=True)
class SyncState:
    """What the last attempts found: the validators of the bundle held, and when it last
    succeeded or failed (ISO 8601 times; None when never)."""

    url: str
    etag: str | None = None
    last_modified: str | None = None
    ok_at: str | None = None
    failed_at: str | None = None  # the last failed attempt
    problem: str | None = None
    failing_since: str | None = None  # the first failed attempt after the last good one

    def stale_note(self) -> str | None:
        """Since when syncing has failed and why, or None while it succeeds."""
        if not self.failing_since:
            return None
        good = f"last good sync {self.ok_at}" if self.ok_at else "never synced"
        return f"sync failing since {self.failing_since} ({good}): {self.problem}"


@dataclass(frozen=True, slots=True)
class Synced:
    """One partner's outcome: `updated`, `unchanged` (304), `refused` (the bundle failed a
    check) or `unreachable`; the message says why."""

    code: str
    status: str
    message: str

    @property
    def ok(self) -> bool:
        return self.status in ("updated", "unchanged")


def check_url(url: str) -> str:
    """A partner's base URL: http(s), a host, no query or fragment; without a trailing slash."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise PartnerError(f"{url!r} is not a partner's base URL (https://host[/path])")
    return url.strip().rstrip("/")


def read_state(where: Path) -> SyncState | None:
    try:
        raw = json.loads((where / "sync.json").read_text(encoding="utf-8"))
        return SyncState(**{k: raw.get(k) for k in SyncState.__dataclass_fields__})
    except (OSError, ValueError, TypeError):
        return None


def write_state(where: Path, state: SyncState) -> None:
    write_atomically(where / "sync.json", (json.dumps(asdict(state), indent=1) + "\n").encode())


def fetch(client, state: SyncState) -> tuple[int, bytes, dict[str, str]]:
    """GET the bundle, conditionally; the body bounded to MAX_BUNDLE. Raises OSError-like
    httpx errors or PartnerError for answers we will not read."""
    headers = {}
    if state.etag:
        headers["If-None-Match"] = state.etag
    if state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    with client.stream("GET", state.url + WELL_KNOWN, headers=headers) as answer:
        if answer.status_code == 304:
            return 304, b"", dict(answer.headers)
        if answer.status_code != 200:
            raise PartnerError(f"{state.url}{WELL_KNOWN} answered HTTP {answer.status_code}")
        return 200, bounded_body(answer, MAX_BUNDLE, "the bundle"), dict(answer.headers)


def bounded_body(answer, limit: int, what: str) -> bytes:
    """An httpx streamed answer's body, read as it arrives and refused past `limit` bytes (a
    declared length over it is refused before reading)."""
    declared = answer.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PartnerError(f"{what} is {declared} bytes, more than {limit}")
    body = bytearray()
    for chunk in answer.iter_bytes():
        body += chunk
        if len(body) > limit:
            raise PartnerError(f"{what} is more than {limit} bytes")
    return bytes(body)


def new_client(settings: Partners | None = None, *, timeout: float = TIMEOUT):
    """The HTTP client for partners' services: httpx with timeouts, TLS verification on
    (against the certificates of the settings' `ca_bundle` when set, else the system's), and no
    redirects (a bundle never moves to another host behind our back). Close it."""
    import ssl

    import httpx

    ca_bundle = settings.ca_bundle if settings else None
    verify = ssl.create_default_context(cafile=str(ca_bundle)) if ca_bundle else True
    return httpx.Client(
        timeout=timeout,
        follow_redirects=False,
        verify=verify,
        headers={"User-Agent": "creditcert partner sync"},
    )


@contextmanager
def locked(path: Path, *, wait: bool) -> Iterator[bool]:
    """Hold `path`'s exclusive lock (flock: released when the process dies) while the block
    runs: True when held; False at once, without waiting, when another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing releases the lock


def stamp(at: datetime) -> str:
    return at.isoformat(timespec="seconds")


def add(store, code: str, url: str, pin: str) -> SyncState:
    """Record where partner `code` publishes and pin its root (the pin of a first import; an
    existing pin must match)."""
    from creditcert.trust.bundles import normalise_pin

    where = store.partner_dir(code)
    url, wanted = check_url(url), normalise_pin(pin)
    if not wanted:
        raise PartnerError(f"{pin!r} is not a SHA-256 fingerprint (64 hex digits)")
    pinned = store.pin(code)
    if pinned and pinned != wanted:
        raise PartnerError(f"{code} is pinned to {pinned}; refusing another root")
    where.mkdir(parents=True, exist_ok=True)
    if pinned is None:
        write_atomically(where / "pin", (wanted + "\n").encode())
    old = read_state(where)
    state = SyncState(url) if old is None or old.url != url else old
    write_state(where, state)
    return state


def sync_all(store, codes, client, *, at: datetime, wait: bool = True) -> list[Synced] | None:
    """Sync every (or the named) partner under the store's lock (partners/sync.lock): one
    process syncs a home at a time. Waits for another's sync to end, or with `wait=False`
    returns None at once while one runs."""
    with locked(store.dir / "sync.lock", wait=wait) as held:
        if not held:
            return None
        chosen = list(codes) if codes else store.codes()
        return [sync_one(store, code, client, at=at) for code in chosen]


def sync_one(store, code: str, client, *, at: datetime) -> Synced:
    """Fetch and import partner `code`'s bundle; the held bundle stays unless the new one
    passes every check of an import."""
    where = store.partner_dir(code)
    state = read_state(where)
    if state is None:
        return Synced(
            code, "unreachable", f"no URL recorded: creditcert partner add {code} --url …"
        )
    try:
        status, body, headers = fetch(client, state)
    except PartnerError as exc:
        return _failed(where, state, code, "unreachable", str(exc), at)
    except Exception as exc:  # httpx's transport errors: refused, timed out, TLS, bad answers
        return _failed(
            where, state, code, "unreachable", f"{state.url}: {type(exc).__name__}: {exc}", at
        )
    if status == 304:
        write_state(where, _ok(state, state.etag, state.last_modified, at))
        return Synced(code, "unchanged", "not modified since the bundle held")
    try:
        result = store.import_bundle(body, pin=store.pin(code), at=at)
    except PartnerError as exc:
        return _failed(where, state, code, "refused", str(exc), at)
    if not result.verdict.accepted or result.bundle is None:
        first = result.failures[0] if result.failures else None
        why = f"{first.reason}: {first.message}" if first else str(result.verdict)
        return _failed(where, state, code, "refused", why, at)
    if result.bundle.issuer_code != code:
        return _failed(
            where, state, code, "refused", f"the bundle is {result.bundle.issuer_code}'s", at
        )
    write_state(where, _ok(state, headers.get("etag"), headers.get("last-modified"), at))
    return Synced(
        code,
        "updated",
        f"bundle {result.bundle.sequence} valid to {result.bundle.expires_at:%Y-%m-%d}",
    )


def _ok(state: SyncState, etag, modified, at: datetime) -> SyncState:
    return SyncState(state.url, etag, modified, stamp(at), state.failed_at, None, None)


def _failed(
    where: Path, state: SyncState, code: str, status: str, why: str, at: datetime
) -> Synced:
    since = state.failing_since or stamp(at)
    failed = SyncState(
        state.url, state.etag, state.last_modified, state.ok_at, stamp(at), why, since
    )
    write_state(where, failed)
    good = f"; last good sync {state.ok_at}" if state.ok_at else "; never synced"
    return Synced(code, status, f"{why}{good}; failing since {since}")
