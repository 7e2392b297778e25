"""The front door: one city's installation, opened once, with every operation the product offers.

    city = City.open("/srv/shenyang")
    report = city.issue("91210102MA0000001G", city.request(purpose="bidding", as_of=today), at=now)
    pdf = city.report_pdf(report.document.number, at=later)  # the kept copy, while valid
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
from creditcert.data.store import Store, Subject
from creditcert.errors import IssueError, RegistryError
from creditcert.files import write_atomically
from creditcert.issue.issuer import IssuedReport, issue_report, pdf_path, settle
from creditcert.lookup import Findings, Request
from creditcert.model import report_number
from creditcert.registry import STATUS_WORDS, Entry, SqliteRegistry
from creditcert.registry import opened as registry_at
from creditcert.service.tokens import TokenStore
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

    @property
    def published_bundle(self) -> Path:
        """The bundle last exported, served to partners at /.well-known/creditcert/bundle.cose."""
        return self.home / "published" / "bundle.cose"

    @property
    def tokens(self) -> Path:
        return self.home / "tokens.json"

    @property
    def sync_lock(self) -> Path:
        """Held by whichever process syncs partners' bundles, one at a time."""
        return self.partners / "sync.lock"


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
    def tokens(self) -> TokenStore:
        """The web service's API tokens (docs/service.md)."""
        return TokenStore(self.layout.tokens)

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
        with registry_at(self.layout.registry, read_only=read_only) as registry:
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
        at: datetime | None = None,
    ) -> Request:
        """What a lookup or report covers: a purpose, a list of domains or all, and a period.
        Given the clock (`at`), an as-of day after its Beijing day is refused here already;
        lookup and issue refuse it in any case."""
        request = lookup.resolve_request(
            self.settings.catalog,
            as_of=as_of,
            purpose=purpose,
            domains=domains,
            all_domains=all_domains,
            years=years,
            start=start,
            end=end,
        )
        if at is not None:
            lookup.check_not_future(request, at)
        return request

    def subject(self, code: str) -> Subject:
        """The registered subject of a credit code; SubjectError if malformed or unregistered."""
        with self.store() as store:
            return lookup.find_subject(store, code)[0]

    def lookup(self, code: str, request: Request, *, at: datetime) -> Findings:
        """What the subject's record holds for the request, answered at `at` (the clock: an
        as-of day after it is refused)."""
        lookup.check_not_future(request, at)
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
        """A signed report with its PDF, kept as reports/<number>.pdf and recorded in the
        registry as issued once the PDF is on disk (docs/report.md §7)."""
        lookup.check_not_future(request, at)  # before keys and fonts are even looked at
        signer = self.keys.signer(at)  # a missing or expired key fails before any work
        renderer = self.renderer  # so does a missing CJK font
        with self.store() as store, self.registry() as registry:
            settle(registry, self.layout.reports, at=at)
            return issue_report(
                store,
                self.settings,
                signer,
                registry,
                code,
                request,
                at=at,
                renderer=renderer,
                reports_dir=self.layout.reports,
                lang=lang,
            )

    def revoke(self, number: str, *, reason: str, at: datetime) -> Entry:
        """Revoke an issued report; it no longer counts toward the subject's rate limit, so a
        report issued for the wrong purpose can be replaced the same day."""
        canonical = _number(number)
        with self.registry() as registry:
            return registry.revoke(canonical, reason=reason, at=at)

    def report_pdf(self, number: str, *, at: datetime) -> tuple[Entry, bytes]:
        """An issued report's PDF again, as the city kept it, while the report is valid at `at`
        ("enterprises lose files"); revoked, void, expired or unknown numbers are refused."""
        canonical = _number(number)
        with self.registry() as registry:
            settle(registry, self.layout.reports, at=at)
            entry = registry.get(canonical)
        if entry is None:
            raise IssueError(f"{canonical} is not in this city's registry")
        if entry.status != "issued":
            raise IssueError(f"{canonical} is {STATUS_WORDS[entry.status]}: no PDF to give")
        if not entry.issued_at <= at < entry.valid_until:
            raise IssueError(
                f"{canonical} was valid {entry.issued_at:%Y-%m-%d %H:%M} to "
                f"{entry.valid_until:%Y-%m-%d %H:%M}, not at {at:%Y-%m-%d %H:%M}: issue a new report"
            )
        path = pdf_path(self.layout.reports, canonical)
        try:
            return entry, path.read_bytes()
        except FileNotFoundError:
            raise IssueError(
                f"{path}: the kept PDF of {canonical} is missing (restore reports/ from a backup)"
            ) from None

    def reports_of(self, subject_code: str) -> list[Entry]:
        """A subject's issued and revoked reports, newest first (its page on the service)."""
        if not self.layout.registry.exists():
            return []
        with self.registry(read_only=True) as registry:
            return registry.reports_of(subject_code)

    def issued_since(
        self, subject_code: str, purpose: str | None, *, since: datetime
    ) -> list[Entry]:
        """The subject's issued reports of a purpose made at or after `since`: a batch that died
        while issuing looks here before issuing again (docs/report.md §8)."""
        with self.registry() as registry:
            return registry.issued_since(subject_code, purpose, since=since)

    # --- verifying -----------------------------------------------------------------------------

    def trust(self, *, at: datetime, registry: SqliteRegistry | None = None) -> TrustStore:
        """Our own city and every partner whose bundle we hold, as usable at `at`."""
        return build_trust(self.keys, self.partners, at=at, registry=registry)

    def verify(
        self,
        source: bytes | str,
        *,
        at: datetime,
        kind: InputKind | None = None,
        online: object | None = None,
    ) -> Verification:
        """Verify a PDF or a photo (bytes), a QR text or a typed report number (str); the kind
        of input is sniffed unless given. Reads only: works on a read-only home. `online` (a
        client from `partner_client()`) lets a partner's typed number be asked of its service;
        without it nothing touches the network, and PDFs and QR codes never do."""
        status = None
        if online is not None:
            from creditcert.trust.status import PartnerStatus

            timeout = self.settings.partners.status_timeout
            status = PartnerStatus(self.partners, online, timeout=timeout)
        if self.layout.registry.exists():
            try:
                with self.registry(read_only=True) as registry:
                    trust = self.trust(at=at, registry=registry)
                    return Verifier(trust, at=at, status=status).verify(source, kind)
            except RegistryError:
                pass  # an unreadable registry answers nothing: our numbers are cannot-decide
        return Verifier(self.trust(at=at), at=at, status=status).verify(source, kind)

    # --- partners ------------------------------------------------------------------------------

    def export_bundle(self, *, at: datetime, sequence: int | None = None) -> bytes:
        """Our signed bundle for partners (needs the root key); its sequence is the next of our
        bundle counter unless given. It is also kept as the published bundle the service
        serves (docs/service.md)."""
        self.keys.root_signer()  # the root key is at hand before the counter moves
        with self.registry() as registry:
            if sequence is None:
                sequence = self.keys.next_sequence(at)
            bundle = export_bundle(self.settings, self.keys, registry, now=at, sequence=sequence)
        self.layout.published_bundle.parent.mkdir(exist_ok=True)
        write_atomically(self.layout.published_bundle, bundle)
        return bundle

    def republish(self, *, at: datetime) -> bytes | None:
        """Export the published bundle again, so that partners syncing from our service learn
        of a revocation within their sync interval: None when this city publishes no bundle
        (no published/bundle.cose yet). KeyFileError when the root key is not at hand (kept
        offline): then an operator runs `creditcert partner export` with it."""
        if not self.layout.published_bundle.exists():
            return None
        return self.export_bundle(at=at)

    def partner_client(self):
        """An HTTP client for partners' services: TLS verified against `partners.ca_bundle`
        (else the system's CAs), no redirects, bounded timeouts. Close it (a context manager)."""
        from creditcert.trust import sync

        return sync.new_client(ca_bundle=self.settings.partners.ca_bundle)

    def import_bundle(self, data: bytes, *, pin: str | None, at: datetime) -> Verification:
        return self.partners.import_bundle(data, pin=pin, at=at)

    def add_partner(self, code: str, *, url: str, pin: str) -> None:
        """Record where a partner's service publishes its bundle, and pin its root."""
        from creditcert.trust import sync

        sync.add(self.partners, code, url, pin)

    def sync_partners(
        self, codes: Sequence[str] | None = None, *, at: datetime, wait: bool = True
    ) -> list | None:
        """Fetch every (or the named) partner's bundle from its service: a list of `Synced`.
        One process syncs a home at a time (partners/sync.lock): this waits for another's sync
        to end, or with `wait=False` returns None at once while one runs."""
        from creditcert.trust import sync

        with sync.locked(self.layout.sync_lock, wait=wait) as held:
            if not held:
                return None
            chosen = list(codes) if codes else self.partners.codes()
            with self.partner_client() as client:
                return [sync.sync_one(self.partners, code, client, at=at) for code in chosen]


def _number(typed: str) -> str:
    canonical = report_number.parse(typed)
    if canonical is None:
        raise IssueError(f"{typed!r} is not a report number (shape or check character wrong)")
    return canonical
