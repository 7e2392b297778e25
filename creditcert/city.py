"""The front door: one city's installation, opened once, with every operation the product offers.

    city = City.open("/srv/shenyang")
    report = city.issue("91210102MA0000001G", city.request(purpose="bidding", as_of=today), at=now)
    result = city.verify(pdf_bytes, at=now)

City owns the home's layout (docs/config.md); the CLI and the service parse their input, make one
call here and render what comes back. Time is always a parameter: nothing here reads the clock.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from pathlib import Path

from creditcert import config, lookup
from creditcert.config import Settings
from creditcert.data import history
from creditcert.data.store import Store
from creditcert.errors import IssueError
from creditcert.issue.issuer import IssuedReport, issue_report
from creditcert.lookup import Findings, Request
from creditcert.model import report_number
from creditcert.registry import Entry, SqliteRegistry
from creditcert.trust.bundles import export_bundle
from creditcert.trust.keys import KeyStore
from creditcert.trust.partners import PartnerStore
from creditcert.trust.store import TrustStore, build_trust
from creditcert.verify.result import Verification
from creditcert.verify.verifier import InputKind, Verifier


@dataclass(frozen=True, slots=True)
class Layout:
    """Where each part of a city lives under its home (docs/config.md, "Home layout")."""

    home: Path

    @property
    def config(self) -> Path:
        return self.home / config.CONFIG_NAME

    @property
    def keys(self) -> Path:
        return self.home / "keys"

    @property
    def registry(self) -> Path:
        return self.home / "registry.sqlite"

    @property
    def partners(self) -> Path:
        return self.home / "partners"

    @property
    def quarantine(self) -> Path:
        return self.home / "quarantine"

    @property
    def reports(self) -> Path:
        return self.home / "reports"


class City:
    """A city's home: settings, data, keys, registry and partners, and what can be done with them."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.layout = Layout(settings.home)

    @classmethod
    def open(cls, home: str | Path | None = None) -> City:
        """Read <home>/creditcert.toml (home: the argument, else $CREDITCERT_HOME, else .)."""
        return cls(config.load(home))

    @cached_property
    def keys(self) -> KeyStore:
        issuer = self.settings.issuer
        return KeyStore(self.layout.keys, issuer.admin_code, issuer.name)

    @cached_property
    def partners(self) -> PartnerStore:
        return PartnerStore(
            self.layout.partners, self.settings.catalog, self.settings.issuer.admin_code
        )

    @cached_property
    def renderer(self):
        """The PDF renderer, made on first use (WeasyPrint's import and set-up cost ~0.5 s)."""
        from creditcert.issue.render import Renderer

        return Renderer()

    @contextmanager
    def store(self) -> Iterator[Store]:
        with Store(self.settings.data_dir, self.settings.catalog) as store:
            yield store

    @contextmanager
    def registry(self, *, read_only: bool = False) -> Iterator[SqliteRegistry]:
        with SqliteRegistry(self.layout.registry, read_only=read_only) as registry:
            yield registry

    # --- asking --------------------------------------------------------------------------------

    def request(
        self,
        *,
        as_of: date,
        purpose: str | None = None,
        domains: Sequence[str] | None = None,
        all_domains: bool = False,
        years: int | None = None,
        start: date | None = None,
        end: date | None = None,
    ) -> Request:
        """What a lookup or report covers: a purpose, a list of domains or all, and a period."""
        return lookup.resolve_request(
            self.settings.catalog,
            as_of=as_of,
            purpose=purpose,
            domains=domains,
            all_domains=all_domains,
            years=years,
            start=start,
            end=end,
        )

    def lookup(self, code: str, request: Request) -> Findings:
        with self.store() as store:
            return lookup.lookup(store, self.settings, code, request)

    def record_history(
        self, code: str, *, domains: Sequence[str] | None = None, at: datetime | None = None
    ) -> list[history.Version]:
        """Every version of a subject's records, the ones corrections replaced included; with
        `at`, the version each had at that time (what a report issued then rested on)."""
        catalog = self.settings.catalog
        chosen = [catalog.domain(d) for d in domains] if domains else None
        return history.versions(self.settings.data_dir, catalog, code, domains=chosen, at=at)

    # --- issuing -------------------------------------------------------------------------------

    def issue(
        self, code: str, request: Request, *, at: datetime, lang: str = "zh-en"
    ) -> IssuedReport:
        """A signed report with its PDF, recorded in the registry."""
        signer = self.keys.signer(at)  # a missing or expired key fails before any work
        renderer = self.renderer  # so does a missing CJK font
        with self.store() as store, self.registry() as registry:
            return issue_report(
                store,
                self.settings,
                signer,
                registry,
                code,
                request,
                at=at,
                renderer=renderer,
                lang=lang,
            )

    def revoke(self, number: str, *, reason: str, at: datetime) -> Entry:
        canonical = report_number.parse(number)
        if canonical is None:
            raise IssueError(f"{number!r} is not a report number (shape or check character wrong)")
        with self.registry() as registry:
            return registry.revoke(canonical, reason=reason, at=at)

    # --- verifying -----------------------------------------------------------------------------

    def trust(self, *, at: datetime, registry: SqliteRegistry | None = None) -> TrustStore:
        """Our own city and every partner whose bundle we hold, as usable at `at`."""
        return build_trust(self.keys, self.partners, at=at, registry=registry)

    def verify(
        self, source: bytes | str, *, at: datetime, kind: InputKind | None = None
    ) -> Verification:
        """Verify a PDF or a photo (bytes), a QR text or a typed report number (str); the kind
        of input is sniffed unless given. Reads only: works on a read-only home."""
        if self.layout.registry.exists():
            with self.registry(read_only=True) as registry:
                trust = self.trust(at=at, registry=registry)
                return Verifier(trust, at=at).verify(source, kind)
        return Verifier(self.trust(at=at), at=at).verify(source, kind)

    # --- partners ------------------------------------------------------------------------------

    def export_bundle(self, *, at: datetime, sequence: int | None = None) -> bytes:
        """Our signed bundle for partners (needs the root key); its sequence is the next of our
        bundle counter unless given."""
        self.keys.root_signer()  # the root key is at hand before the counter moves
        with self.registry() as registry:
            if sequence is None:
                sequence = self.keys.next_sequence(at)
            return export_bundle(self.settings, self.keys, registry, now=at, sequence=sequence)

    def import_bundle(self, data: bytes, *, pin: str | None, at: datetime) -> Verification:
        return self.partners.import_bundle(data, pin=pin, at=at)
