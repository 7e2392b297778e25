"""The partners we trust, on disk: <home>/partners/<code>/ holds `pin` (the root's fingerprint),
`bundle.cose` (the newest bundle that passed every check) and `agreement.toml` (docs/config.md).

Each file is replaced atomically (tmp, fsync, rename). Bundle and pin form a unit by order: the pin
is written first and never changes for a city (another root is refused), so the only state between
the two writes is a pin without a bundle, which every reader treats as a partner not imported yet;
the next import completes it. The bundle carries its own sequence, so there is no third file to
keep in step. A stored bundle that no longer loads makes only that partner unusable, and never
blocks the import of a good one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from creditcert.errors import PartnerError, Reason
from creditcert.files import remove_debris, write_atomically
from creditcert.rules.catalog import Catalog
from creditcert.stages import reached
from creditcert.trust.agreements import Agreement, parse_agreement
from creditcert.trust.bundles import Bundle, normalise_pin, peek_issuer, verify_bundle
from creditcert.trust.keys import fingerprint
from creditcert.trust.sync import SyncState, read_state
from creditcert.verify.result import Verification

_CODE = re.compile(r"\d{6}")
NOT_IMPORTED = "no bundle imported"


@dataclass(frozen=True, slots=True)
class Stored:
    """A partner's stored bundle as checked now: `bundle` is set when its signature, pin and
    content hold (even if expired); `problem` says why it cannot be used at the time asked."""

    code: str
    bundle: Bundle | None
    problem: str | None


class PartnerStore:
    def __init__(self, directory: Path, ours: Catalog, own_code: str):
        self.dir = directory
        self.ours = ours
        self.own_code = own_code

    def partner_dir(self, code: str) -> Path:
        """<home>/partners/<code>/ (the code checked: six digits)."""
        return self._where(code)

    def _where(self, code: str) -> Path:
        if not _CODE.fullmatch(code):
            raise PartnerError(f"{code!r} is not a 6-digit city code")
        return self.dir / code

    def pin(self, code: str) -> str | None:
        path = self._where(code) / "pin"
        try:
            return normalise_pin(path.read_text()) or None
        except (OSError, UnicodeDecodeError):
            return None

    def import_bundle(self, data: bytes, *, pin: str | None, at: datetime) -> Verification:
        """Check a bundle and keep it when every check passes; the result says what was found."""
        code = peek_issuer(data)
        if code is None:  # not a bundle at all: an input error, not a refused bundle
            first = verify_bundle(data, pin or "", at=at).failures[0]
            if first.step == "format.bundle":
                raise PartnerError(first.message, first.reason)
            raise PartnerError("the bundle names no 6-digit issuer code", Reason.BAD_CONTENT)
        if code == self.own_code:
            raise PartnerError(f"the bundle claims our own city code {code}; refusing it")
        pinned = self.pin(code)
        if pinned and pin and normalise_pin(pin) != pinned:
            raise PartnerError(f"{code} is pinned to {pinned}; refusing another root")
        if not (pinned or pin):
            raise PartnerError(f"first import of {code}: give --fingerprint of its root")
        previous = self.stored(code, at=at).bundle
        result = verify_bundle(
            data, pinned or pin, at=at, after_sequence=previous.sequence if previous else 0
        )
        if result.verdict.accepted and result.bundle is not None:
            where = self._where(code)
            where.mkdir(parents=True, exist_ok=True)
            remove_debris(where)
            if pinned is None:
                write_atomically(where / "pin", (fingerprint(result.bundle.root) + "\n").encode())
                reached("partner.import.pin-written")
            write_atomically(where / "bundle.cose", data)
            reached("partner.import.bundle-written")
        return result

    def stored(self, code: str, *, at: datetime) -> Stored:
        """The stored bundle of a partner, checked against its pin and its own issue time, and
        whether it is usable at `at`."""
        where, pin = self._where(code), self.pin(code)
        try:
            data = (where / "bundle.cose").read_bytes()
        except FileNotFoundError:
            return Stored(code, None, NOT_IMPORTED)
        except OSError as exc:
            return Stored(code, None, f"bundle unreadable ({exc.strerror})")
        if pin is None:
            return Stored(code, None, "no pinned fingerprint (import the bundle again)")
        probe = verify_bundle(data, pin, at=at)  # carries the bundle even when out of date
        bundle = probe.bundle
        if bundle is None:
            first = probe.failures[0]
            return Stored(code, None, f"stored bundle refused: {first.reason} ({first.message})")
        if not bundle.valid_at(at):
            state = "expired" if at >= bundle.expires_at else "not yet valid"
            return Stored(
                code,
                bundle,
                f"bundle {state}: valid {bundle.issued_at:%Y-%m-%d %H:%M} to "
                f"{bundle.expires_at:%Y-%m-%d %H:%M}",
            )
        return Stored(code, bundle, None)

    def sync_state(self, code: str) -> SyncState | None:
        """Where the partner publishes and how the last syncs went (None: never added by URL)."""
        return read_state(self._where(code))

    def staleness(self, code: str) -> str | None:
        """Since when the partner's bundle has not been refreshed and why, for a partner whose
        held bundle cannot be used: the sync state when its bundle comes over HTTP."""
        state = self.sync_state(code)
        if state is None:
            return None
        return state.stale_note() or (
            f"last good sync {state.ok_at}: {state.url} still publishes this bundle"
            if state.ok_at
            else f"never synced from {state.url}"
        )

    def listing(self, *, at: datetime) -> list[tuple[Stored, Agreement | None, str | None]]:
        """Every partner directory with its bundle and agreement as usable at `at`; a damaged
        file is shown with its problem, never raised, so one partner cannot hide the others."""
        rows = []
        for code in self.codes():
            stored = self.stored(code, at=at)
            agreement, problem = None, None
            if stored.bundle is not None:
                try:
                    agreement = self.agreement(code, stored.bundle.catalog)
                except PartnerError as exc:
                    problem = f"agreement refused: {exc}"
            rows.append((stored, agreement, problem))
        return rows

    def codes(self) -> list[str]:
        if not self.dir.is_dir():
            return []
        return sorted(p.name for p in self.dir.iterdir() if _CODE.fullmatch(p.name) and p.is_dir())

    def add_agreement(self, text: str, *, source: str, at: datetime) -> Agreement:
        import tomllib

        try:
            probe = str(tomllib.loads(text).get("partner", ""))
        except tomllib.TOMLDecodeError as exc:
            raise PartnerError(f"{source}: not valid TOML: {exc}") from None
        if not _CODE.fullmatch(probe):
            raise PartnerError(f"{source}: partner {probe!r} is not a 6-digit city code")
        bundle = self.stored(probe, at=at).bundle
        if bundle is None:
            raise PartnerError(f"{source}: partner {probe!r} unknown: import its bundle first")
        agreement = parse_agreement(text, source=source, ours=self.ours, theirs=bundle.catalog)
        write_atomically(self._where(probe) / "agreement.toml", text.encode())
        return agreement

    def agreement(self, code: str, theirs: Catalog) -> Agreement | None:
        path = self._where(code) / "agreement.toml"
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise PartnerError(
                f"{path}: unreadable ({exc}); run `creditcert agreement add`"
            ) from None
        agreement = parse_agreement(text, source=str(path), ours=self.ours, theirs=theirs)
        if agreement.partner != code:
            raise PartnerError(f"{path} names partner {agreement.partner}, not {code}")
        return agreement

    def agreements(self, *, at: datetime) -> tuple[list[Agreement], dict[str, str]]:
        """Every agreement whose partner's bundle we hold (expired bundles included), and the
        problem of each one that cannot be read: a damaged file fails alone."""
        found, damaged = [], {}
        for code in self.codes():
            bundle = self.stored(code, at=at).bundle
            try:
                agreement = self.agreement(code, bundle.catalog) if bundle else None
            except PartnerError as exc:
                damaged[code] = str(exc)
                continue
            if agreement:
                found.append(agreement)
        return found, damaged

    def end_agreement(self, code: str, *, on: date, at: datetime) -> Agreement:
        """End an agreement on a day (reports issued after it are no longer recognised)."""
        bundle = self.stored(code, at=at).bundle
        current = self.agreement(code, bundle.catalog) if bundle else None
        if current is None:
            raise PartnerError(f"no agreement with {code}")
        if not current.start <= on <= current.end:
            raise PartnerError(f"{on} is outside the agreement ({current.start} to {current.end})")
        path = self._where(code) / "agreement.toml"
        text = re.sub(
            r"(?m)^end\s*=.*$", f"end = {on.isoformat()}", path.read_text(encoding="utf-8")
        )
        ended = parse_agreement(text, source=str(path), ours=self.ours, theirs=bundle.catalog)
        write_atomically(path, text.encode())
        return ended
