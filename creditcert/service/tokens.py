"""API tokens of the web service: which portal may call it, for what (docs/service.md).

A token is a name, its scopes, when it was created and revoked, and the SHA-256 of its secret; the
secret itself is shown once, when the token is added, and kept nowhere. <home>/tokens.json holds
them all:

    {"format": "creditcert.token-store/1",
     "tokens": [{"name": "portal-a", "scopes": ["lookup", "verify"],
                 "created_at": "2026-07-01T10:30:00+08:00", "revoked_at": null,
                 "sha256": "<64 hex digits>"}]}

The file is replaced atomically (mode 0600) under a lock on its directory, so two writers never
lose one another's change. It is read strictly: a field missing, unknown or out of range is one
ConfigError naming the file and the entry, never a token half-believed.

A secret is 32 bytes from `secrets`, written `cct_` + base64url without padding; a plain SHA-256
of its text is the right digest for that much randomness (no salt, no slow hash). `check` finds a
token by the digest of the secret presented, comparing it with every digest in constant time, so
its timing tells nothing about which names or secrets exist. Time is always a parameter.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from creditcert.errors import ConfigError, TokenError, TokenReason
from creditcert.files import write_atomically

STORE_FORMAT = "creditcert.token-store/1"
PREFIX = "cct_"
NAME_PATTERN = "[a-z0-9][a-z0-9._-]{0,63}"
_NAME = re.compile(NAME_PATTERN)
_SECRET = re.compile(r"cct_[A-Za-z0-9_-]{43}")  # 32 bytes in unpadded base64url
_DIGEST = re.compile(r"[0-9a-f]{64}")
_FIELDS = ("name", "scopes", "created_at", "revoked_at", "sha256")


class Scope(StrEnum):
    """What a token lets a portal do: one scope per kind of call."""

    ISSUE = "issue"
    LOOKUP = "lookup"
    VERIFY = "verify"


_SCOPE_LIST = ", ".join(Scope)


@dataclass(frozen=True, slots=True)
class Token:
    """A token as the city keeps it, less its digest: nothing here leads back to the secret."""

    name: str
    scopes: frozenset[Scope]
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def scope_list(self) -> list[str]:
        """The scopes in their fixed order (issue, lookup, verify)."""
        return [s.value for s in Scope if s in self.scopes]

    def revoked_by(self, at: datetime) -> bool:
        """Whether the token was revoked at or before `at`."""
        return self.revoked_at is not None and self.revoked_at <= at


@dataclass(frozen=True, slots=True)
class NewToken:
    """A token just added, with its secret: show the secret to the operator once, then drop it."""

    token: Token
    secret: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class _Entry:
    token: Token
    digest: bytes  # SHA-256 of the secret's text


def digest_of(secret: str) -> bytes:
    """The SHA-256 of a secret's text (`cct_` included), as tokens.json keeps it in hex."""
    return hashlib.sha256(secret.encode("ascii")).digest()


def parse_scopes(scopes: Iterable[str]) -> frozenset[Scope]:
    """Scopes by name; unknown ones, or none at all, are a TokenError (bad-scopes)."""
    chosen = list(scopes)
    known = {s.value for s in Scope}
    unknown = [s for s in chosen if s not in known]
    if unknown:
        listed = ", ".join(repr(s)[:40] for s in unknown)
        raise TokenError(f"{listed}: not a scope ({_SCOPE_LIST})", TokenReason.BAD_SCOPES)
    if not chosen:
        raise TokenError(
            f"a token needs at least one scope ({_SCOPE_LIST})", TokenReason.BAD_SCOPES
        )
    return frozenset(Scope(s) for s in chosen)


class TokenStore:
    """The service's API tokens, kept in one file (a city's is <home>/tokens.json)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._cache: tuple[tuple[int, int, int], tuple[_Entry, ...]] | None = None

    # --- managing ------------------------------------------------------------------------------

    def add(self, name: str, scopes: Iterable[str], *, at: datetime) -> NewToken:
        """A new token created at `at`, with a fresh secret that is returned here and never
        again. A name is used once: a revoked token's name is not given to another."""
        _aware(at)
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise TokenError(
                f"{str(name)[:80]!r} is not a token name: {NAME_PATTERN} (a lower-case letter or "
                "digit, then up to 63 of a-z 0-9 . _ -)",
                TokenReason.BAD_NAME,
            )
        token = Token(name, parse_scopes(scopes), at)
        raw = secrets.token_bytes(32)
        secret = PREFIX + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
        with self._locked():
            entries = self._load()
            if any(e.token.name == name for e in entries):
                raise TokenError(
                    f"a token named {name!r} exists already (revoked or not): choose another name",
                    TokenReason.DUPLICATE,
                )
            self._save([*entries, _Entry(token, digest_of(secret))])
        return NewToken(token, secret)

    def list(self) -> list[Token]:
        """Every token, revoked ones included, in the order they were added."""
        return [e.token for e in self._load()]

    def revoke(self, name: str, *, at: datetime) -> Token:
        """Revoke a token from `at` on; an unknown or already revoked name is a TokenError."""
        _aware(at)
        with self._locked():
            entries = self._load()
            index = next((i for i, e in enumerate(entries) if e.token.name == name), None)
            if index is None:
                raise TokenError(
                    f"no token named {str(name)[:80]!r} (`creditcert tokens list` shows them)",
                    TokenReason.UNKNOWN,
                )
            entry = entries[index]
            if entry.token.revoked_at is not None:
                raise TokenError(
                    f"token {name!r} was revoked already, at {entry.token.revoked_at.isoformat()}",
                    TokenReason.REVOKED,
                )
            if at < entry.token.created_at:
                raise TokenError(
                    f"token {name!r} was created at {entry.token.created_at.isoformat()}, after "
                    f"{at.isoformat()}: check the clock",
                    TokenReason.UNKNOWN,
                )
            revoked = replace(entry.token, revoked_at=at)
            entries[index] = _Entry(revoked, entry.digest)
            self._save(entries)
        return revoked

    # --- checking ------------------------------------------------------------------------------

    def check(self, secret: str, scope: str, *, at: datetime) -> Token:
        """The token whose secret this is, if it may make a call needing `scope` at `at`; else a
        TokenError whose reason is unknown, revoked or scope. The message never holds the
        secret. A scope no call needs is a ValueError (a bug in the caller, not in the token)."""
        _aware(at)
        wanted = Scope(scope)
        found = None
        if isinstance(secret, str) and _SECRET.fullmatch(secret):
            presented = digest_of(secret)
            for entry in self._load():  # every digest is compared: no early exit
                if hmac.compare_digest(entry.digest, presented):
                    found = entry.token
        if found is None or at < found.created_at:
            raise TokenError("no token has this secret", TokenReason.UNKNOWN)
        if found.revoked_by(at):
            raise TokenError(
                f"token {found.name!r} was revoked at {found.revoked_at.isoformat()}",
                TokenReason.REVOKED,
            )
        if wanted not in found.scopes:
            raise TokenError(
                f"token {found.name!r} may not {wanted.value} (its scopes: "
                f"{', '.join(found.scope_list)})",
                TokenReason.SCOPE,
            )
        return found

    # --- the file ------------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Writers take turns (a lock on the file's directory; readers never take it)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _load(self) -> list[_Entry]:
        """The file's tokens; parsed again only when the file was replaced or changed."""
        try:
            with open(self.path, "rb") as fh:
                st = os.fstat(fh.fileno())
                key = (st.st_ino, st.st_mtime_ns, st.st_size)
                cached = self._cache
                if cached is not None and cached[0] == key:
                    return list(cached[1])
                data = fh.read()
        except FileNotFoundError:
            return []
        entries = _parse(data, self.path)
        self._cache = (key, tuple(entries))
        return entries

    def _save(self, entries: list[_Entry]) -> None:
        body = {
            "format": STORE_FORMAT,
            "tokens": [
                {
                    "name": e.token.name,
                    "scopes": e.token.scope_list,
                    "created_at": e.token.created_at.isoformat(),
                    "revoked_at": _when(e.token.revoked_at),
                    "sha256": e.digest.hex(),
                }
                for e in entries
            ],
        }
        text = json.dumps(body, ensure_ascii=False, indent=2) + "\n"
        write_atomically(self.path, text.encode("utf-8"), mode=0o600)


def _aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{at.isoformat()} has no UTC offset: whose clock would it be?")


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _parse(data: bytes, path: Path) -> list[_Entry]:
    """tokens.json, every field checked; the first fault is one ConfigError line."""

    def bad(where: str, problem: str) -> ConfigError:
        return ConfigError(
            f"{path}: {where}{problem}; correct it or restore the file from a backup"
        )

    try:
        raw = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise bad("", "not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise bad("", f"not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(raw, dict) or raw.get("format") != STORE_FORMAT:
        raise bad("", f"not a {STORE_FORMAT} file (its `format` field)")
    unknown = sorted(set(raw) - {"format", "tokens"})
    if unknown:
        raise bad("", f"unknown field(s) {', '.join(repr(k)[:40] for k in unknown)}")
    tokens = raw.get("tokens")
    if not isinstance(tokens, list):
        raise bad("", "`tokens` is missing or not a list")
    entries: list[_Entry] = []
    names: set[str] = set()
    digests: set[bytes] = set()
    for number, item in enumerate(tokens, 1):
        label = f"token {number}"
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            label += f" ({item['name'][:64]!r})"
        try:
            entry = _entry(item)
        except ValueError as exc:
            raise bad(f"{label}: ", str(exc)) from None
        if entry.token.name in names:
            raise bad(f"{label}: ", "an earlier token has the same name")
        if entry.digest in digests:
            raise bad(f"{label}: ", "an earlier token has the same sha256")
        names.add(entry.token.name)
        digests.add(entry.digest)
        entries.append(entry)
    return entries


def _entry(item: object) -> _Entry:
    if not isinstance(item, dict):
        raise ValueError("not a JSON object")
    missing = [f for f in _FIELDS if f not in item]
    if missing:
        raise ValueError(f"missing field(s) {', '.join(missing)}")
    unknown = sorted(set(item) - set(_FIELDS))
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(repr(k)[:40] for k in unknown)}")
    name = item["name"]
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"name: not {NAME_PATTERN}")
    scopes = item["scopes"]
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise ValueError("scopes: not a list of strings")
    try:
        chosen = parse_scopes(scopes)
    except TokenError as exc:
        raise ValueError(f"scopes: {exc}") from None
    created = _time(item["created_at"], "created_at")
    revoked = None if item["revoked_at"] is None else _time(item["revoked_at"], "revoked_at")
    if revoked is not None and revoked < created:
        raise ValueError("revoked_at is before created_at")
    digest = item["sha256"]
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise ValueError("sha256: not 64 lower-case hex digits")
    return _Entry(Token(name, chosen, created, revoked), bytes.fromhex(digest))


def _time(value: object, name: str) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"{name}: not a string (RFC 3339)")
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{name}: {value[:40]!r} is not an RFC 3339 time") from None
    if when.utcoffset() is None:
        raise ValueError(f"{name}: {value[:40]!r} has no UTC offset")
    return when
