"""Whom we believe, and what each of them adds to a verification.

Two kinds of issuer: our own city (its pinned root, every signing key it made, its registry for
the status of a number) and a partner (root, signing keys, revocation list and catalog from its
bundle, and our agreement with it). Each supplies its own status and scope checks. A partner whose
bundle has expired or cannot be used is kept aside as unavailable, so a report signed by it is
*cannot decide* naming the partner and the cause, never an unknown key; so is one of our own keys
whose certificate, state or root cannot be read. Each issuer carries the retirement and compromise
of its keys (ours from keys/, a partner's from its bundle).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509

from creditcert.envelope.qr import QrSummary
from creditcert.errors import KeyFileError, Reason
from creditcert.model.clock import SHANGHAI
from creditcert.registry import Entry, Registry
from creditcert.rules.catalog import Catalog
from creditcert.trust.agreements import Agreement
from creditcert.trust.bundles import revocation_id
from creditcert.trust.keys import KeyState, KeyStore, kid_of
from creditcert.trust.partners import NOT_IMPORTED, PartnerStore
from creditcert.verify.result import Checklist, Status


@dataclass(frozen=True, slots=True)
class OwnCity:
    code: str
    root: x509.Certificate | None  # None: no keys here, or a damaged root (see unavailable)
    signers: tuple[x509.Certificate, ...]
    registry: Registry | None  # None: status cannot be checked here
    states: dict[bytes, KeyState] = field(default_factory=dict)

    label = "our city"

    def check_status(self, number: str, digest: bytes | None, cl: Checklist) -> Entry | None:
        """Our registry knows every report we issued and whether it was revoked."""
        if self.registry is None:
            cl.add("status.registry", Status.SKIPPED, Reason.NO_REGISTRY, "no registry at hand")
            return None
        entry = self.registry.get(number)
        if entry is None:
            cl.fail("status.registry", Reason.UNKNOWN_NUMBER, f"{number} is not in our registry")
        elif entry.status == "revoked":
            cl.fail("status.registry", Reason.REVOKED, f"{number} was revoked")
        elif entry.status == "void":
            cl.fail("status.registry", Reason.VOIDED, f"{number} was voided, never issued")
        elif entry.status != "issued":
            cl.fail(
                "status.registry",
                Reason.NOT_COMPLETED,
                f"{number} is {entry.status}: its issuance never completed",
            )
        elif digest is not None and entry.digest != digest.hex():
            cl.fail(
                "status.registry",
                Reason.DIGEST_MISMATCH,
                f"registry holds digest {entry.digest[:16]}…, the report {digest.hex()[:16]}…",
            )
        else:
            cl.ok(
                "status.registry", f"{number} issued {entry.issued_at:%Y-%m-%d %H:%M}, not revoked"
            )
        return entry

    def check_scope(
        self, issued: datetime, at: datetime, domains: list[str] | None, cl: Checklist
    ) -> None:
        """Our own reports count for every domain they cover."""

    def qr_domains(self, summary: QrSummary, cl: Checklist) -> list[str] | None:
        return None


@dataclass(frozen=True, slots=True)
class Partner:
    code: str
    name: str
    root: x509.Certificate
    signers: tuple[x509.Certificate, ...]
    revoked: frozenset[bytes]
    catalog: Catalog
    agreement: Agreement | None
    states: dict[bytes, KeyState] = field(default_factory=dict)

    label = "partner"

    def check_status(self, number: str, digest: bytes | None, cl: Checklist) -> None:
        """A partner's revocations reach us in its bundle (its registry is not ours to read)."""
        if revocation_id(number) in self.revoked:
            cl.fail(
                "status.revocation-list",
                Reason.REVOKED,
                f"{number} is on {self.code}'s revocation list",
            )
        else:
            cl.ok("status.revocation-list", f"{number} is not on {self.code}'s revocation list")

    def qr_domains(self, summary: QrSummary, cl: Checklist) -> list[str] | None:
        """The domain codes a QR's bitmap names, read in the partner's catalog order."""
        cat = self.catalog
        if (summary.catalog_id, summary.catalog_version) != (cat.id, cat.version):
            cl.undecided(
                "scope.catalog",
                Reason.CATALOG_MISMATCH,
                f"QR names catalog {summary.catalog_id} {summary.catalog_version}, the partner's "
                f"bundle carries {cat.id} {cat.version}",
            )
            return None
        return summary.domains(cat.codes)

    def check_scope(
        self, issued: datetime, at: datetime, domains: list[str] | None, cl: Checklist
    ) -> None:
        """A partner's report counts only under a live agreement, and only for mapped domains."""
        a = self.agreement
        if a is None:
            cl.fail(
                "agreement.live",
                Reason.NO_AGREEMENT,
                f"no mutual-recognition agreement with {self.code}",
            )
            return
        runs = f"agreement with {self.code} runs {a.start} to {a.end}"
        if not a.live(issued.astimezone(SHANGHAI).date()):
            cl.fail("agreement.live", Reason.NOT_LIVE_AT_ISSUE, f"issued {issued:%Y-%m-%d}, {runs}")
        elif not a.live(at.astimezone(SHANGHAI).date()):
            cl.fail("agreement.live", Reason.AGREEMENT_ENDED, runs)
        else:
            cl.ok("agreement.live", runs)
        if domains is None:
            return
        mapped = [f"{d}→{a.mapping[d]}" for d in domains if d in a.mapping]
        missing = [d for d in domains if d not in a.mapping]
        if not mapped:
            cl.fail(
                "scope.domains",
                Reason.NO_DOMAIN_RECOGNISED,
                f"none of the report's {len(domains)} domains is covered by the agreement",
            )
            return
        cl.partial = bool(missing)
        cl.ok(
            "scope.domains",
            f"{len(mapped)} of {len(domains)} domains recognised"
            + (f"; not covered: {', '.join(missing)}" if missing else ""),
        )


Issuer = OwnCity | Partner


@dataclass(frozen=True, slots=True)
class Unavailable:
    """A partner whose bundle we hold but cannot use now (expired, refused, unreadable), or one
    of our own keys whose files are damaged. `signers` are known when the bundle itself was sound
    but out of date; `kid` narrows it to one key when only the key's file name is known."""

    code: str
    problem: str
    signers: tuple[x509.Certificate, ...] = ()
    kid: bytes | None = None
    reason: Reason = Reason.PARTNER_UNAVAILABLE

    def describe(self) -> str:
        who = "our key" if self.reason is Reason.KEY_UNUSABLE else f"partner {self.code}"
        return f"{who}: {self.problem}"


@dataclass(frozen=True, slots=True)
class TrustStore:
    own: OwnCity
    partners: tuple[Partner, ...] = ()
    unavailable: tuple[Unavailable, ...] = ()

    @property
    def issuers(self) -> tuple[Issuer, ...]:
        return (self.own, *self.partners)

    def candidates(self, kid: bytes) -> list[tuple[Issuer, x509.Certificate]]:
        """Every trusted signing certificate with this kid (kids can collide)."""
        return [(i, c) for i in self.issuers for c in i.signers if kid_of(c) == kid]

    def unavailable_for(self, kid: bytes, claimed_issuer: str | None = None) -> Unavailable | None:
        """The unavailable partner that may have signed: one whose known keys include the kid,
        the one the report itself names, or one whose keys we could not read at all."""
        for u in self.unavailable:
            if u.kid is not None:
                if u.kid == kid:
                    return u
            elif (
                not u.signers
                or u.code == claimed_issuer
                or any(kid_of(c) == kid for c in u.signers)
            ):
                return u
        return None

    def describe(self) -> str:
        return ", ".join(i.code for i in self.issuers)


def _own_city(keys: KeyStore, registry: Registry | None) -> tuple[OwnCity, list[Unavailable]]:
    """Our root and usable signers, and what is damaged among our key files."""
    code = keys.admin_code
    unavailable: list[Unavailable] = []
    root = None
    if keys.root_cert.exists() or keys.root_key.exists():  # else a home that only verifies
        try:
            root = keys.root()
        except KeyFileError as exc:
            unavailable.append(Unavailable(code, str(exc), reason=Reason.KEY_UNUSABLE))
    signers, states = [], {}
    for entry in keys.entries():
        if entry.refused:
            continue
        if entry.certificate is None or entry.problem or root is None:
            if entry.problem:
                unavailable.append(
                    Unavailable(
                        code,
                        entry.problem,
                        (entry.certificate,) if entry.certificate else (),
                        entry.kid,
                        Reason.KEY_UNUSABLE,
                    )
                )
            elif entry.certificate is not None:  # the root is damaged: name it for this key
                unavailable.append(
                    Unavailable(
                        code,
                        unavailable[0].problem,
                        (entry.certificate,),
                        entry.kid,
                        Reason.KEY_UNUSABLE,
                    )
                )
            continue
        signers.append(entry.certificate)
        states[entry.kid] = entry.state
    return OwnCity(code, root, tuple(signers), registry, states), unavailable


def build_trust(
    keys: KeyStore, partners: PartnerStore, *, at: datetime, registry: Registry | None = None
) -> TrustStore:
    """Our own city and every partner whose bundle we hold, as usable at `at`. Every file is read
    alone: a damaged one sets aside only the key or partner it belongs to."""
    own, unavailable = _own_city(keys, registry)
    found = []
    for stored, agreement, problem in partners.listing(at=at):
        bundle = stored.bundle
        if bundle is None and stored.problem == NOT_IMPORTED:
            continue  # a pin alone: a first import that has not finished
        if bundle is None or stored.problem is not None or problem is not None:
            signers_known = bundle.signers if bundle else ()
            why = stored.problem or problem or "unusable"
            stale = partners.staleness(stored.code)
            if bundle is not None and at >= bundle.expires_at:
                why += f"; stale since {bundle.expires_at:%Y-%m-%d %H:%M}"
            if stale:
                why += f"; {stale}"
            unavailable.append(Unavailable(stored.code, why, signers_known))
            continue
        found.append(
            Partner(
                stored.code,
                bundle.name,
                bundle.root,
                bundle.signers,
                bundle.revoked,
                bundle.catalog,
                agreement,
                bundle.states,
            )
        )
    return TrustStore(own, tuple(found), tuple(unavailable))
