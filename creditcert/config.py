"""A city's installation: its home directory and the settings in creditcert.toml.

Settings are parsed once into a frozen value (with the catalog loaded and the city's purpose
overrides applied); everything else receives that value instead of reading files or env vars.
"""

from __future__ import annotations

import os
import re
import shutil
import ssl
import tomllib
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from creditcert.errors import ConfigError
from creditcert.resources import default_catalog_path
from creditcert.rules import catalog as catalog_mod
from creditcert.rules.catalog import Catalog, only_keys

CONFIG_NAME = "creditcert.toml"
HOME_ENV = "CREDITCERT_HOME"
FORMAT = 1
LOCAL_URL = "http://127.0.0.1:8000"  # where `creditcert serve` listens by default
_ADMIN_CODE = re.compile(r"^\d{6}$")


class RepairPolicy(StrEnum):
    """How records whose credit repair is done appear (565 interpretation vs Decree 36)."""

    SHOW_MARKED = "show-marked"
    OMIT = "omit"


@dataclass(frozen=True, slots=True)
class Issuer:
    admin_code: str
    name: str
    name_en: str


@dataclass(frozen=True, slots=True)
class Service:
    """How the city's web service is reached and whom it believes (docs/service.md)."""

    base_url: str | None = None  # public address of the service: the QR is a URL under it
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()  # may send identity_header
    identity_header: str = "X-Credit-Code"  # the authenticated credit code, set by the proxy
    max_upload_bytes: int = 20 * 1024 * 1024
    verify_per_minute: int = 120  # per client address; 0 = no limit


@dataclass(frozen=True, slots=True)
class ObjectStore:
    """Where the datasets of record live when `data.location` is an s3:// URL (docs/scale-out.md,
    "Datasets on object storage"). Credentials are not settings: they come from the standard
    AWS sources (environment, shared credentials file with `profile`), never from this file."""

    bucket: str
    prefix: str  # "" or a key prefix without leading or trailing slash
    endpoint: str | None  # http(s) URL of an S3-compatible server; None: AWS's own
    region: str | None
    profile: str | None  # a profile of the shared AWS credentials file
    refresh_seconds: int  # how often a running instance checks the bucket for a newer manifest

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")


@dataclass(frozen=True, slots=True)
class Partners:
    """How the city reaches its partners' services (docs/partners.md, "Sync over HTTP")."""

    sync_interval: int = 300  # seconds between the service's syncs (the bundle's max-age); 0 = off
    ca_bundle: Path | None = None  # PEM file of CA certificates to trust instead of the system's
    status_timeout: float = 5.0  # seconds for asking a partner the status of a number


@dataclass(frozen=True, slots=True)
class Settings:
    home: Path
    issuer: Issuer
    catalog: Catalog
    data_dir: Path
    complete_from: date
    repair_policy: RepairPolicy
    rate_limit_per_day: int
    service: Service = Service()
    registry_url: str | None = None  # PostgreSQL (docs/scale-out.md); None: registry.sqlite
    object_store: ObjectStore | None = None  # data_dir is then the instance's local working copy
    partners: Partners = Partners()


TEMPLATE = """\
# creditcert city configuration. Every setting is described in docs/config.md.
format = 1

[issuer]
admin_code = "{admin_code}"   # GB/T 2260 code of the issuing city
name = "{name}"
name_en = "{name_en}"

[data]
catalog = "catalog.toml"      # domain catalog (relative to this file); edit it to suit the city
location = "data"             # dataset directory, relative to this file
complete_from = 2020-09-01    # the centre's data is complete from this day; periods never start earlier

[report]
# show-marked: repaired records appear marked 已修复 (565号 interpretation);
# omit: repaired records are left out (Decree 2025 No. 36, in force from 2026-04-01).
repair_policy = "show-marked"
rate_limit_per_day = 1        # reports of one purpose per subject per day; 0 = no limit

[service]
# The public address of `creditcert serve`: each report's QR is a URL under it that opens the
# verification page and still carries the whole signed payload (docs/report.md §3).
base_url = "{base_url}"
# trusted_proxies = ["10.0.0.0/8"]  # may assert an enterprise's identity (docs/service.md)

# A registry shared by several issuing instances (docs/scale-out.md); default registry.sqlite here:
# [registry]
# url = "postgresql://creditcert@db.example:5432/creditcert"

# Override a purpose preset of the catalog (keys: domains, years, validity_days):
# [purposes.bidding]
# years = 2
# validity_days = 60
"""


def resolve_home(home: str | Path | None) -> Path:
    """--home wins, then $CREDITCERT_HOME, then the current directory."""
    return Path(home or os.environ.get(HOME_ENV) or ".").resolve()


def init(
    home: Path, *, admin_code: str, name: str, name_en: str = "", base_url: str = LOCAL_URL
) -> Path:
    """Write a commented default config and a copy of the default catalog into a new home."""
    if not _ADMIN_CODE.match(admin_code):
        raise ConfigError(f"--city must be a 6-digit GB/T 2260 code, got {admin_code!r}")
    path = home / CONFIG_NAME
    if path.exists():
        raise ConfigError(f"{path} already exists; refusing to overwrite a city's settings")
    home.mkdir(parents=True, exist_ok=True)
    (home / "data").mkdir(exist_ok=True)
    shutil.copyfile(default_catalog_path(), home / "catalog.toml")
    path.write_text(
        TEMPLATE.format(
            admin_code=admin_code, name=name, name_en=name_en or name, base_url=base_url
        ),
        encoding="utf-8",
    )
    load(home)  # what we wrote must load
    return path


def load(home: str | Path | None = None) -> Settings:
    """Parse <home>/creditcert.toml; a bad setting is an error naming the file, key and allowed values."""
    root = resolve_home(home)
    path = root / CONFIG_NAME
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"no {CONFIG_NAME} in {root}: run `creditcert init --city CODE --name NAME --home {root}`"
            f" or point --home / ${HOME_ENV} at a city's home"
        ) from None
    except NotADirectoryError:
        raise ConfigError(
            f"{root} is a file, not a city's home: point --home / ${HOME_ENV} at the directory"
            f" that holds {CONFIG_NAME}"
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None

    def fail(key: str, message: str) -> ConfigError:
        return ConfigError(f"{path}: {key}: {message}")

    tables = {"format", "issuer", "data", "report", "purposes", "service", "registry", "partners"}
    only_keys(raw, tables, "top level", fail)
    if raw.get("format") != FORMAT:
        raise fail("format", f"got {raw.get('format')!r}, expected {FORMAT}")
    issuer_t = _table(raw, "issuer", fail)
    only_keys(issuer_t, {"admin_code", "name", "name_en"}, "issuer", fail)
    admin_code = _get(issuer_t, "issuer.admin_code", str, fail)
    if not _ADMIN_CODE.match(admin_code):
        raise fail("issuer.admin_code", f"must be a 6-digit GB/T 2260 code, got {admin_code!r}")
    name = _get(issuer_t, "issuer.name", str, fail)
    issuer = Issuer(admin_code, name, issuer_t.get("name_en", name))

    data_t = _table(raw, "data", fail)
    only_keys(data_t, {"catalog", "location", "complete_from", *_OBJECT_STORE_KEYS}, "data", fail)
    location = _get(data_t, "data.location", str, fail)
    object_store, data_dir = _data_location(root, location, data_t, fail)
    complete_from = _get(data_t, "data.complete_from", date, fail)
    catalog_path = root / _get(data_t, "data.catalog", str, fail)
    catalog = catalog_mod.load(catalog_path)

    report_t = _table(raw, "report", fail)
    only_keys(report_t, {"repair_policy", "rate_limit_per_day"}, "report", fail)
    policy_raw = _get(report_t, "report.repair_policy", str, fail)
    try:
        policy = RepairPolicy(policy_raw)
    except ValueError:
        allowed = " or ".join(p.value for p in RepairPolicy)
        raise fail("report.repair_policy", f"got {policy_raw!r}, allowed: {allowed}") from None
    rate = _get(report_t, "report.rate_limit_per_day", int, fail)
    if rate < 0:
        raise fail("report.rate_limit_per_day", f"must be 0 (no limit) or more, got {rate}")

    catalog = _override_purposes(catalog, raw.get("purposes", {}), fail)
    service = _service(raw.get("service", {}), fail)
    registry_url = _registry_url(raw.get("registry", {}), fail)
    partners = _partners(raw.get("partners", {}), root, fail)
    return Settings(
        home=root,
        issuer=issuer,
        catalog=catalog,
        data_dir=data_dir,
        complete_from=complete_from,
        repair_policy=policy,
        rate_limit_per_day=rate,
        service=service,
        registry_url=registry_url,
        object_store=object_store,
        partners=partners,
    )


def _registry_url(table: Any, fail) -> str | None:
    """[registry] url: a postgresql:// (or postgres://) URL, or absent for the SQLite file."""
    if not isinstance(table, dict):
        raise fail("[registry]", "must be a table")
    only_keys(table, {"url"}, "registry", fail)
    if "url" not in table:
        return None
    url = _get(table, "registry.url", str, fail).strip()
    problem = registry_url_problem(url)
    if problem:
        raise fail("registry.url", problem)
    return url


def registry_url_problem(url: str) -> str | None:
    """Why `url` cannot name a PostgreSQL registry, or None. The URL is never repeated: it may
    hold a password."""
    shape = "a URL like postgresql://user@host:5432/db (password from PGPASSWORD or ~/.pgpass)"
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        return f"must be {shape}, got scheme {parts.scheme!r}"
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return f"must be {shape}; its port is not a number"
    return None


_OBJECT_STORE_KEYS = {"endpoint", "region", "profile", "cache", "refresh_seconds"}
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PREFIX = re.compile(r"^[A-Za-z0-9!_.*'()/-]*$")


def _data_location(root: Path, location: str, table: dict, fail) -> tuple[ObjectStore | None, Path]:
    """The object store, if `location` is an s3:// URL, and the local data directory: the
    location itself, or the instance's working copy of the bucket (`data.cache`)."""
    if "://" not in location:
        extra = sorted(_OBJECT_STORE_KEYS & set(table))
        if extra:
            raise fail(f"data.{extra[0]}", "only applies to an s3:// data.location")
        return None, (root / location).resolve()
    parts = urlsplit(location)
    prefix = parts.path.strip("/")
    if parts.scheme != "s3" or not _BUCKET.match(parts.netloc or ""):
        raise fail("data.location", f"must be a path or s3://bucket/prefix, got {location!r}")
    if parts.query or parts.fragment or not _PREFIX.match(prefix) or ".." in prefix.split("/"):
        raise fail("data.location", f"the prefix of {location!r} must be a plain key prefix")
    for key in ("endpoint", "region", "profile", "cache"):
        if key in table:
            _get(table, f"data.{key}", str, fail)
    endpoint = table.get("endpoint") or os.environ.get("AWS_ENDPOINT_URL_S3")
    endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL") or None
    if endpoint is not None:
        target = urlsplit(str(endpoint))
        if target.scheme not in ("http", "https") or not target.hostname or target.query:
            raise fail("data.endpoint", f"must be an http(s) URL, got {endpoint!r}")
    region = table.get("region") or os.environ.get("AWS_REGION")
    region = region or os.environ.get("AWS_DEFAULT_REGION") or None
    refresh = table.get("refresh_seconds", 30)
    if isinstance(refresh, bool) or not isinstance(refresh, int) or refresh < 0:
        raise fail("data.refresh_seconds", f"must be an integer ≥ 0, got {refresh!r}")
    store = ObjectStore(
        bucket=parts.netloc,
        prefix=prefix,
        endpoint=str(endpoint).rstrip("/") if endpoint else None,
        region=region,
        profile=table.get("profile"),
        refresh_seconds=refresh,
    )
    return store, (root / table.get("cache", "cache/data")).resolve()


def _service(table: Any, fail) -> Service:
    if not isinstance(table, dict):
        raise fail("[service]", "must be a table")
    keys = {"base_url", "trusted_proxies", "identity_header", "max_upload_bytes"}
    only_keys(table, keys | {"verify_per_minute"}, "service", fail)
    default = Service()
    base_url = table.get("base_url")
    if base_url is not None:
        base_url = _get(table, "service.base_url", str, fail).rstrip("/")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
            raise fail(
                "service.base_url", f"must be an http(s) URL without a query, got {base_url!r}"
            )
    proxies = table.get("trusted_proxies", [])
    if not isinstance(proxies, list) or not all(isinstance(p, str) for p in proxies):
        raise fail("service.trusted_proxies", "must be a list of addresses or networks")
    try:
        networks = tuple(ip_network(p, strict=False) for p in proxies)
    except ValueError as exc:
        raise fail("service.trusted_proxies", str(exc)) from None
    header = table.get("identity_header", default.identity_header)
    if not isinstance(header, str) or not re.fullmatch(r"[A-Za-z0-9-]+", header):
        raise fail("service.identity_header", f"must be an HTTP header name, got {header!r}")
    numbers = {}
    for key in ("max_upload_bytes", "verify_per_minute"):
        value = table.get(key, getattr(default, key))
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise fail(f"service.{key}", f"must be an integer ≥ 0, got {value!r}")
        numbers[key] = value
    return Service(base_url, networks, header, **numbers)


def _partners(table: Any, root: Path, fail) -> Partners:
    if not isinstance(table, dict):
        raise fail("[partners]", "must be a table")
    only_keys(table, {"sync_interval", "ca_bundle", "status_timeout"}, "partners", fail)
    default = Partners()
    interval = table.get("sync_interval", default.sync_interval)
    if isinstance(interval, bool) or not isinstance(interval, int) or interval < 0:
        raise fail("partners.sync_interval", f"must be seconds ≥ 0 (0: off), got {interval!r}")
    timeout = table.get("status_timeout", default.status_timeout)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 60:
        raise fail("partners.status_timeout", f"must be seconds in (0, 60], got {timeout!r}")
    ca_bundle = None
    if "ca_bundle" in table:
        ca_bundle = root / _get(table, "partners.ca_bundle", str, fail)
        try:
            ssl.create_default_context(cafile=str(ca_bundle))
        except (OSError, ssl.SSLError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise fail(
                "partners.ca_bundle",
                f"{ca_bundle}: not a readable file of PEM certificates ({why})",
            ) from None
    return Partners(interval, ca_bundle, float(timeout))


def _override_purposes(catalog: Catalog, overrides: Any, fail) -> Catalog:
    if not overrides:
        return catalog
    if not isinstance(overrides, dict):
        raise fail("purposes", "must be a table of [purposes.<code>] tables")
    raw = catalog_mod.as_raw(catalog)
    for code, change in overrides.items():
        if code not in raw["purpose"]:
            known = ", ".join(raw["purpose"])
            raise fail(f"purposes.{code}", f"no such purpose in the catalog; known: {known}")
        only_keys(change, {"domains", "years", "validity_days"}, f"purposes.{code}", fail)
        raw["purpose"][code].update(change)
    try:
        return catalog_mod.parse(raw, source=f"{catalog.source} + {CONFIG_NAME} overrides")
    except catalog_mod.CatalogError as exc:
        raise fail("purposes", str(exc)) from None


def _table(raw: dict, key: str, fail) -> dict:
    value = raw.get(key)
    if not isinstance(value, dict):
        raise fail(f"[{key}]", "missing table")
    return value


def _get(table: dict, dotted: str, kind: type, fail):
    key = dotted.rsplit(".", 1)[-1]
    value = table.get(key)
    if (isinstance(value, bool) and kind is int) or not isinstance(value, kind):
        expected = {str: "a string", int: "an integer", date: "a date like 2020-09-01"}[kind]
        raise fail(dotted, f"must be {expected}, got {value!r}")
    if kind is str and not value.strip():
        raise fail(dotted, "must not be empty")
    return value
