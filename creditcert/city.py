"""The front door: one city's installation, opened once, with every operation the product offers.

    city = City.open("/srv/shenyang")
    report = city.issue("91210102MA0000001G", city.request(purpose="bidding", as_of=today), at=now)
    pdf = city.report_pdf(report.document.number, at=later)  # the kept copy, while valid
    result = city.verify(pdf_bytes, at=now)

City owns the home's layout (docs/config.md); the CLI and the service parse their input, make one
call here and render what comes back; remote applications (异地申请) are `city.applications`.
Time is always a parameter: nothing here reads the clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from creditcert import config, lookup
from creditcert.config import Settings
from creditcert.data import history
from creditcert.data.index import Sync
from creditcert.data.store import Store, Subject
from creditcert.errors import DataError, IssueError, RegistryError
from creditcert.files import write_atomically
from creditcert.issue.issuer import IssuedReport, canonical_number, issue_report, pdf_path, settle
from creditcert.lookup import Findings, Request
from creditcert.registry import STATUS_WORDS, Entry, Registry
from creditcert.registry import opened as registry_at
from creditcert.remote_applications import RemoteApplications
from creditcert.service.tokens import TokenStore
from creditcert.trust import remote, sync
from creditcert.trust.bundles import export_bundle
from creditcert.trust.keys import KeyStore
from creditcert.trust.partners import PartnerStore
from creditcert.trust.status import PartnerStatus
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
    def remote(self) -> Path:
        """PDFs partners issued for enterprises that applied here (remote applications)."""
        return self.home / "remote"


if TYPE_CHECKING:
    from creditcert.data.remote import Mirror, Pulled

_T = TypeVar("_T")
_WRITE_ATTEMPTS = 3


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
        """The data as this instance holds it; with the datasets on object storage, a newer
        generation of the bucket is taken in first when one is found (checked at most every
        `data.refresh_seconds`)."""
        if self.mirror is not None:
            self.mirror.refresh()
        with Store(self.settings.data_dir, self.settings.catalog) as store:
            yield store

    # --- the data's writers --------------------------------------------------------------------

    @cached_property
    def mirror(self) -> Mirror | None:
        """This instance's working copy of the datasets on object storage (a
        creditcert.data.remote.Mirror), or None when `data.location` is a local directory."""
        if self.settings.object_store is None:
            return None
        from creditcert.data.remote import Mirror

        s = self.settings
        return Mirror(s.object_store, s.data_dir, s.catalog)

    def write_data(self, write: Callable[[Sync | None], _T]) -> _T:
        """Run a writer of the data (ingest, register import, sample generate, reindex), given
        the `sync` to pass it. With the datasets on object storage, a run that another instance
        overtook (ManifestConflict: nothing of it was published) is run again on the newer
        data, up to three times in all."""
        from creditcert.data.bucket import ManifestConflict

        for attempt in range(_WRITE_ATTEMPTS):
            try:
                return write(self.mirror)
            except ManifestConflict:
                if attempt == _WRITE_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def pull_data(self) -> Pulled:
        """Take in the bucket's current generation now, whatever the refresh interval (a
        creditcert.data.remote.Pulled); DataError when the data is not on object storage."""
        if self.mirror is None:
            raise DataError(
                f"data.location is the local directory {self.settings.data_dir}: nothing to pull"
            )
        return self.mirror.refresh(force=True)

    @contextmanager
    def registry(self, *, read_only: bool = False) -> Iterator[Registry]:
        """registry.sqlite in the home, or the PostgreSQL registry of `[registry] url` (this
        process's pool, kept between calls: docs/scale-out.md)."""
        if self.settings.registry_url is None:
            with registry_at(self.layout.registry, read_only=read_only) as registry:
                yield registry
        else:
            from creditcert.registry import postgres  # psycopg only where it is used

            yield postgres.shared(self.settings.registry_url, read_only=read_only)

    @property
    def has_registry(self) -> bool:
        """Whether a registry is there to read (a file made by the first report, or a server)."""
        return self.settings.registry_url is not None or self.layout.registry.exists()

    def migrate_registry(self) -> tuple[int, int]:
        """Bring the PostgreSQL registry's schema to this creditcert's version: (before, after)."""
        from creditcert.registry import postgres

        if self.settings.registry_url is None:
            raise RegistryError(
                f"{self.layout.config} has no [registry] url: the SQLite registry "
                f"({self.layout.registry.name}) keeps its schema itself"
            )
        return postgres.migrate(self.settings.registry_url)

    def copy_registry(self, url: str):
        """Copy every row of this home's registry.sqlite into the PostgreSQL registry at `url`
        (migrated first), and check each: a `Copied` (docs/scale-out.md)."""
        from creditcert.registry import transfer

        problem = config.registry_url_problem(url)
        if problem:
            raise RegistryError(f"the registry to copy to {problem}")
        with registry_at(self.layout.registry, read_only=True) as source:
            return transfer.copy(source, url)

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
        if self.mirror is not None:
            self.mirror.refresh()
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
                keep=self._keep_shared if self.mirror is not None else None,
            )

    def _keep_shared(self, number: str, pdf: bytes) -> None:
        """With the datasets on object storage, a kept PDF is also put in the bucket before its
        number is marked issued: any instance can give it again (docs/scale-out.md)."""
        self.mirror.bucket.put_bytes(f"{KEPT_PREFIX}/{number}.pdf", pdf, "application/pdf")

    def revoke(self, number: str, *, reason: str, at: datetime) -> Entry:
        """Revoke an issued report; it no longer counts toward the subject's rate limit, so a
        report issued for the wrong purpose can be replaced the same day."""
        canonical = canonical_number(number)
        with self.registry() as registry:
            return registry.revoke(canonical, reason=reason, at=at)

    def report_pdf(self, number: str, *, at: datetime) -> tuple[Entry, bytes]:
        """An issued report's PDF again, as the city kept it, while the report is valid at `at`
        ("enterprises lose files"); revoked, void, expired or unknown numbers are refused."""
        canonical = canonical_number(number)
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
            shared = self._shared_pdf(canonical)
            if shared is not None:
                return entry, shared
            raise IssueError(
                f"{path}: the kept PDF of {canonical} is missing (restore reports/ from a backup)"
            ) from None

    def _shared_pdf(self, number: str) -> bytes | None:
        """A PDF another instance issued, from the bucket (kept here too, for next time)."""
        if self.mirror is None:
            return None
        pdf = self.mirror.bucket.get_bytes(f"{KEPT_PREFIX}/{number}.pdf", remote.MAX_PDF)
        if pdf is not None:
            self.layout.reports.mkdir(parents=True, exist_ok=True)
            write_atomically(pdf_path(self.layout.reports, number), pdf)
        return pdf

    def reports_of(self, subject_code: str) -> list[Entry]:
        """A subject's issued and revoked reports, newest first (its page on the service)."""
        if not self.has_registry:
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

    def trust(self, *, at: datetime, registry: Registry | None = None) -> TrustStore:
        """Our own city and every partner whose bundle we hold, as usable at `at`."""
        return build_trust(self.keys, self.partners, at=at, registry=registry)

    def verify(
        self, source: bytes | str, *, at: datetime, kind: InputKind | None = None, online=None
    ) -> Verification:
        """Verify a PDF or a photo (bytes), a QR text or a typed report number (str); the kind
        of input is sniffed unless given. Reads only: works on a read-only home. Offline unless
        `online` (sync.new_client) asks partners' services about their numbers (docs/verify.md)."""
        status = PartnerStatus(self.partners, online, timeout=self.settings.partners.status_timeout)
        if self.has_registry:
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

    def import_bundle(self, data: bytes, *, pin: str | None, at: datetime) -> Verification:
        return self.partners.import_bundle(data, pin=pin, at=at)

    def add_partner(self, code: str, *, url: str, pin: str) -> None:
        """Record where a partner's service publishes its bundle, and pin its root."""
        sync.add(self.partners, code, url, pin)

    def sync_partners(
        self, codes: Sequence[str] | None = None, *, at: datetime, wait: bool = True
    ) -> list | None:
        """Fetch every (or the named) partner's bundle from its service: a list of `Synced`;
        None when `wait` is False and another process is syncing (docs/service.md)."""
        with sync.new_client(self.settings.partners) as client:
            return sync.sync_all(self.partners, codes, client, at=at, wait=wait)

    # --- remote applications (异地申请, docs/partners.md) ------------------------------------

    @cached_property
    def applications(self) -> RemoteApplications:
        """The applications we forward to partners and the ones they send us; their orchestration
        lives in creditcert/remote_applications.py so that City stays a thin front door."""
        return RemoteApplications(self)


KEPT_PREFIX = "reports"  # kept PDFs in the bucket, beside the datasets (docs/scale-out.md)
