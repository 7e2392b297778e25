"""API tokens of the web service (issue 11): the store in the city's home, `check` with its coded
refusals, the file kept strict and 0600, and the `creditcert tokens` commands."""

from __future__ import annotations

import dataclasses
import json
import re
import stat
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from creditcert.city import City
from creditcert.errors import ConfigError, TokenError, TokenReason
from creditcert.service import tokens as tokens_module
from creditcert.service.tokens import STORE_FORMAT, Scope, TokenStore

from .conftest import NOW_REPORTS, new_home, run_cli

T0 = NOW_REPORTS
LATER = T0 + timedelta(hours=1)
SECRET = re.compile(r"cct_[A-Za-z0-9_-]{43}")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def home(tmp_path) -> Path:
    return new_home(tmp_path)


@pytest.fixture
def store(home) -> TokenStore:
    return City.open(home).tokens


def refused(store: TokenStore, secret: str, scope: str, at=LATER) -> TokenError:
    with pytest.raises(TokenError) as caught:
        store.check(secret, scope, at=at)
    assert not secret or secret not in str(caught.value)
    return caught.value


# --- the library -------------------------------------------------------------------------------


def test_a_token_round_trips_through_the_file(home, store):
    new = store.add("portal-a", ["verify", "lookup"], at=T0)
    assert SECRET.fullmatch(new.secret)
    assert new.secret not in repr(new)
    assert new.token.scope_list == ["lookup", "verify"]
    assert new.token.created_at == T0 and new.token.revoked_at is None

    again = TokenStore(City.open(home).layout.tokens)  # another process, as the service is
    token = again.check(new.secret, "lookup", at=LATER)
    assert token == new.token == again.list()[0]
    assert again.check(new.secret, Scope.VERIFY, at=LATER) == token
    with pytest.raises(dataclasses.FrozenInstanceError):
        token.name = "other"  # type: ignore[misc]


def test_each_secret_finds_its_own_token(store):
    secrets = {name: store.add(name, ["verify"], at=T0).secret for name in ("a", "b.1", "c_2")}
    for name, secret in secrets.items():
        assert store.check(secret, "verify", at=LATER).name == name
    assert len(set(secrets.values())) == 3


def test_a_missing_scope_is_refused(store):
    new = store.add("portal-a", ["lookup", "verify"], at=T0)
    error = refused(store, new.secret, "issue")
    assert error.reason is TokenReason.SCOPE
    assert "portal-a" in str(error) and "issue" in str(error)


def test_a_revoked_token_is_refused_from_its_revocation_on(store):
    new = store.add("portal-a", ["verify"], at=T0)
    revoked_at = T0 + timedelta(minutes=30)
    assert store.revoke("portal-a", at=revoked_at).revoked_at == revoked_at
    assert refused(store, new.secret, "verify", at=revoked_at).reason is TokenReason.REVOKED
    assert refused(store, new.secret, "verify", at=LATER).reason is TokenReason.REVOKED
    # time is a parameter: before its revocation the token was good
    assert (
        store.check(new.secret, "verify", at=revoked_at - timedelta(seconds=1)).name == "portal-a"
    )
    with pytest.raises(TokenError) as again:
        store.revoke("portal-a", at=LATER)
    assert again.value.reason is TokenReason.REVOKED


@pytest.mark.parametrize(
    "presented",
    [
        "cct_" + "A" * 43,  # well formed, issued to nobody
        "",
        "Bearer cct_" + "A" * 43,
        "cct_" + "A" * 42,
        "cct_" + "A" * 44,
        "cct_" + "é" * 43,
        "\x00" * 47,
    ],
)
def test_an_unknown_secret_is_refused(store, presented):
    new = store.add("portal-a", ["verify"], at=T0)
    assert refused(store, presented, "verify").reason is TokenReason.UNKNOWN
    assert refused(store, new.secret + "x", "verify").reason is TokenReason.UNKNOWN


def test_no_secret_is_known_before_its_token_was_created_or_without_a_file(store):
    assert refused(store, "cct_" + "A" * 43, "verify", at=T0).reason is TokenReason.UNKNOWN
    new = store.add("portal-a", ["verify"], at=T0)
    before = T0 - timedelta(seconds=1)
    assert refused(store, new.secret, "verify", at=before).reason is TokenReason.UNKNOWN


def test_check_compares_the_digest_with_every_token_whichever_matches(store, monkeypatch):
    """The lookup is by digest, in constant time, and never stops at the match: its time does
    not tell which tokens exist or where the secret's token is in the file."""
    added = [store.add(f"portal-{n}", ["verify"], at=T0) for n in range(5)]
    compared = []
    real = tokens_module.hmac.compare_digest

    def counting(a, b):
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(tokens_module.hmac, "compare_digest", counting)
    for new in (added[0], added[-1]):
        compared.clear()
        store.check(new.secret, "verify", at=LATER)
        assert len(compared) == 5
    compared.clear()
    refused(store, "cct_" + "B" * 43, "verify")
    assert len(compared) == 5


def test_names_scopes_and_times_are_checked(store):
    for name in ("", "Portal", "-a", "a" * 65, "a b", "a/b", "ä"):
        with pytest.raises(TokenError) as bad:
            store.add(name, ["verify"], at=T0)
        assert bad.value.reason is TokenReason.BAD_NAME, name
    assert store.add("a" * 64, ["verify"], at=T0).token.name == "a" * 64
    for scopes in ([], ["admin"], ["verify", "Verify"], [""]):
        with pytest.raises(TokenError) as bad:
            store.add("x", scopes, at=T0)
        assert bad.value.reason is TokenReason.BAD_SCOPES, scopes
    with pytest.raises(ValueError, match="UTC offset"):
        store.add("x", ["verify"], at=T0.replace(tzinfo=None))
    new = store.add("x", ["verify"], at=T0)
    with pytest.raises(ValueError):
        store.check(new.secret, "admin", at=LATER)  # a scope no call needs: the caller's bug
    with pytest.raises(TokenError) as unknown:
        store.revoke("nobody", at=LATER)
    assert unknown.value.reason is TokenReason.UNKNOWN


def test_concurrent_writers_lose_no_token(home):
    path = City.open(home).layout.tokens

    def add(worker: int) -> None:
        own = TokenStore(path)
        for n in range(5):
            own.add(f"w{worker}-{n}", ["verify"], at=T0)

    threads = [threading.Thread(target=add, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(TokenStore(path).list()) == 30


def test_the_file_is_0600_and_never_holds_the_secret(home, store):
    new = store.add("portal-a", ["issue"], at=T0)
    path = City.open(home).layout.tokens
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert new.secret not in text and new.secret[4:] not in text
    store.revoke("portal-a", at=LATER)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["format"] == STORE_FORMAT


# --- the file, damaged or hand-edited ----------------------------------------------------------

GOOD = {"name": "b", "scopes": ["verify"], "created_at": T0.isoformat(), "revoked_at": None}
GOOD_DIGEST = "ab" * 32


def entry(**changes) -> dict:
    return {**GOOD, "sha256": GOOD_DIGEST, **changes}


def first() -> dict:
    return entry(name="a", sha256="cd" * 32)


DAMAGES = {
    "not-json": (b'{"format": "creditcert.token-store/1", "tokens": [', "not JSON"),
    "not-utf8": (b"\xff\xfe{}", "not UTF-8"),
    "wrong-format": ({"format": "creditcert.tokens/1", "tokens": []}, "format"),
    "tokens-not-a-list": ({"format": STORE_FORMAT, "tokens": {}}, "not a list"),
    "bad-scope": ([first(), entry(scopes=["verify", "admin"])], "token 2 ('b'): scopes"),
    "no-scope": ([first(), entry(scopes=[])], "token 2 ('b'): scopes"),
    "missing-field": ([first(), {k: v for k, v in entry().items() if k != "sha256"}], "sha256"),
    "unknown-field": ([first(), entry(revoked="2026-01-01")], "token 2 ('b'): unknown"),
    "bad-name": ([first(), entry(name="B")], "token 2 ('B'): name"),
    "same-name": ([first(), entry(name="a")], "token 2 ('a'): an earlier token"),
    "same-digest": ([first(), entry(sha256="cd" * 32)], "token 2 ('b'): an earlier token"),
    "naive-time": ([first(), entry(created_at="2026-07-01T10:30:00")], "UTC offset"),
    "not-a-time": ([first(), entry(revoked_at="yesterday")], "token 2 ('b'): revoked_at"),
    "revoked-before-created": (
        [first(), entry(revoked_at=(T0 - timedelta(days=1)).isoformat())],
        "revoked_at is before created_at",
    ),
    "bad-digest": ([first(), entry(sha256="AB" * 32)], "token 2 ('b'): sha256"),
    "entry-not-an-object": ([first(), ["b"]], "token 2: not a JSON object"),
}


def damage(path: Path, content) -> bytes:
    if isinstance(content, list):
        content = {"format": STORE_FORMAT, "tokens": content}
    if not isinstance(content, bytes):
        content = json.dumps(content).encode()
    path.write_bytes(content)
    return content


@pytest.mark.parametrize("case", DAMAGES)
def test_a_damaged_file_is_one_error_naming_the_file_and_the_entry(home, store, case):
    content, expected = DAMAGES[case]
    path = City.open(home).layout.tokens
    written = damage(path, content)
    for call in (
        store.list,
        lambda: store.check("cct_" + "A" * 43, "verify", at=LATER),
        lambda: store.add("c", ["verify"], at=LATER),
        lambda: store.revoke("a", at=LATER),
    ):
        with pytest.raises(ConfigError) as caught:  # not a TokenError: a fault of the city's
            call()
        message = str(caught.value)
        assert str(path) in message and expected in message and "\n" not in message
    assert path.read_bytes() == written  # nothing was written over it


@pytest.mark.slow
@pytest.mark.parametrize("case", ["not-json", "bad-scope", "same-name"])
def test_a_damaged_file_makes_the_cli_exit_2_with_one_line(home, case):
    content, expected = DAMAGES[case]
    damage(City.open(home).layout.tokens, content)
    for args in (["tokens", "list"], ["tokens", "list", "--json"], ["tokens", "revoke", "a"]):
        ran = run_cli(home, *args)
        assert ran.returncode == 2, (args, ran.stderr)
        lines = ran.stderr.splitlines()
        assert len(lines) == 1 and "tokens.json" in lines[0] and expected in lines[0], lines
        assert "Traceback" not in ran.stderr and ran.stdout == ""


def test_a_hand_written_file_is_read(home, store):
    damage(City.open(home).layout.tokens, [first(), entry(revoked_at=LATER.isoformat())])
    assert [t.name for t in store.list()] == ["a", "b"]
    assert store.list()[1].revoked_at == LATER


# --- the commands ------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_cli_adds_lists_and_revokes_without_showing_the_secret_again(home):
    added = run_cli(home, "tokens", "add", "portal-a", "--scope", "lookup, verify")
    assert added.returncode == 0, added.stderr
    secret = added.stdout.strip()
    assert SECRET.fullmatch(secret)  # stdout holds the secret alone
    assert "not shown again" in added.stderr and secret not in added.stderr

    store = City.open(home).tokens
    assert store.check(secret, "verify", at=LATER + timedelta(days=365)).name == "portal-a"
    digest = json.loads(City.open(home).layout.tokens.read_text())["tokens"][0]["sha256"]
    assert secret not in City.open(home).layout.tokens.read_text()

    for args in (["tokens", "list"], ["tokens", "list", "--json"]):
        listed = run_cli(home, *args)
        assert listed.returncode == 0, listed.stderr
        assert "portal-a" in listed.stdout
        for hidden in (secret, secret[4:], digest):
            assert hidden not in listed.stdout and hidden not in listed.stderr

    revoked = run_cli(home, "tokens", "revoke", "portal-a")
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    with pytest.raises(TokenError):
        store.check(secret, "verify", at=LATER + timedelta(days=365))
    again = run_cli(home, "tokens", "revoke", "portal-a")
    assert again.returncode == 2 and "revoked already" in again.stderr
    unknown = run_cli(home, "tokens", "revoke", "nobody")
    assert unknown.returncode == 2 and "no token named 'nobody'" in unknown.stderr


@pytest.mark.slow
def test_the_cli_refuses_a_duplicate_name(home):
    assert run_cli(home, "tokens", "add", "portal-a", "--scope", "issue").returncode == 0
    assert run_cli(home, "tokens", "revoke", "portal-a").returncode == 0
    for scope in ("issue", "verify"):
        twice = run_cli(home, "tokens", "add", "portal-a", "--scope", scope)
        assert twice.returncode == 2 and twice.stdout == ""
        assert "exists already" in twice.stderr and len(twice.stderr.splitlines()) == 1
    assert len(City.open(home).tokens.list()) == 1


@pytest.mark.slow
@pytest.mark.parametrize("scope", ["admin", "", "issue,admin", "issue,", "ISSUE"])
def test_the_cli_refuses_a_bad_scope_and_writes_nothing(home, scope):
    ran = run_cli(home, "tokens", "add", "portal-a", "--scope", scope)
    assert ran.returncode == 2 and ran.stdout == "", ran.stderr
    assert "not a scope" in ran.stderr and len(ran.stderr.splitlines()) == 1
    assert not City.open(home).layout.tokens.exists()


@pytest.mark.slow
def test_list_json_is_the_documented_format(home):
    store = City.open(home).tokens
    store.add("portal-a", ["verify", "issue"], at=T0)
    store.add("portal-b", ["lookup"], at=T0)
    store.revoke("portal-b", at=LATER)
    ran = run_cli(home, "tokens", "list", "--json")
    assert ran.returncode == 0, ran.stderr
    body = json.loads(ran.stdout)
    assert body == {
        "format": "creditcert.tokens/1",
        "tokens": [
            {
                "name": "portal-a",
                "scopes": ["issue", "verify"],
                "created_at": T0.isoformat(),
                "revoked_at": None,
            },
            {
                "name": "portal-b",
                "scopes": ["lookup"],
                "created_at": T0.isoformat(),
                "revoked_at": LATER.isoformat(),
            },
        ],
    }
    docs = (ROOT / "docs" / "cli-json.md").read_text(encoding="utf-8")
    assert "| `tokens list --json` | `creditcert.tokens/1` |" in docs
    assert "- `creditcert.tokens/1`: `tokens[]`" in docs
    empty = run_cli(new_home(home.parent / "other"), "tokens", "list", "--json")
    assert json.loads(empty.stdout) == {"format": "creditcert.tokens/1", "tokens": []}


def test_every_token_reason_and_the_home_file_are_documented():
    guide = (ROOT / "docs" / "service.md").read_text(encoding="utf-8")
    for reason in TokenReason:
        assert f"| `{reason.value}` | {reason.meaning} |" in guide, reason
    for scope in Scope:
        assert f"| `{scope.value}` |" in guide, scope
    examples = re.findall(r"cct_[A-Za-z0-9_-]{20,}", guide)
    assert examples and all(SECRET.fullmatch(e) for e in examples), examples
    config = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    assert re.search(r"^tokens\.json +API tokens", config, flags=re.M)
