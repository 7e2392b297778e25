"""Three cities for the remote-application tests: 伊春市 (230700) registers the enterprises and
issues, 茂名市 (440900) forwards their applications under an agreement, 三亚市 (460200) holds
伊春市's bundle and an agreement of its own, but 伊春市 has none with it."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

from creditcert import config
from creditcert.city import City
from creditcert.data import sample
from creditcert.model.clock import SHANGHAI
from creditcert.trust.keys import fingerprint

YICHUN, MAOMING, SANYA = "230700", "440900", "460200"
NAMES = {YICHUN: ("伊春市", "Yichun"), MAOMING: ("茂名市", "Maoming"), SANYA: ("三亚市", "Sanya")}
AGREED = 30  # the first domains of the default catalog, mapped onto themselves both ways


def now() -> datetime:
    return datetime.now(SHANGHAI)


def make_home(root: Path, code: str, *, subjects: int, records: int, seed: int) -> Path:
    """A city with sample data of its own divisions, no rate limit, and keys made a while ago."""
    home = root / code
    zh, en = NAMES[code]
    config.init(home, admin_code=code, name=zh, name_en=en)
    path = home / "creditcert.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("rate_limit_per_day = 1 ", "rate_limit_per_day = 0 "), "utf-8")
    settings = config.load(home)
    sample.generate(
        settings.data_dir, settings.catalog, settings.issuer,
        subjects=subjects, records=records, seed=seed, as_of=date(2026, 6, 30),
    )  # fmt: skip
    City.open(home).keys.init(now() - timedelta(hours=1))
    return home


def agreement(partner: str, codes: list[str]) -> str:
    today = now().date()
    mapping = "\n".join(f'{c} = "{c}"' for c in codes)
    return (
        f'format = 1\npartner = "{partner}"\nstart = {today - timedelta(days=30)}\n'
        f"end = {today + timedelta(days=365)}\n\n[mapping]\n{mapping}\n"
    )


def introduce(holder: Path, partner: Path, *, agree: bool) -> None:
    """`holder` imports `partner`'s bundle (pinned) and, if `agree`, an agreement with it."""
    theirs, ours = City.open(partner), City.open(holder)
    at = now()
    bundle = theirs.export_bundle(at=at)
    ours.import_bundle(bundle, pin=fingerprint(theirs.keys.root()), at=at).raise_for_status()
    if agree:
        codes = list(ours.settings.catalog.codes[:AGREED])
        ours.partners.add_agreement(
            agreement(theirs.settings.issuer.admin_code, codes), source="test", at=at
        )


def three_cities(root: Path) -> dict[str, Path]:
    homes = {
        YICHUN: make_home(root, YICHUN, subjects=120, records=600, seed=31),
        MAOMING: make_home(root, MAOMING, subjects=30, records=60, seed=32),
        SANYA: make_home(root, SANYA, subjects=30, records=60, seed=33),
    }
    introduce(homes[YICHUN], homes[MAOMING], agree=True)
    introduce(homes[MAOMING], homes[YICHUN], agree=True)
    introduce(homes[YICHUN], homes[SANYA], agree=False)
    introduce(homes[SANYA], homes[YICHUN], agree=True)
    return homes


def enterprise(home: Path) -> str:
    """A registered subject of the city with records."""
    with City.open(home).store() as store:
        return store.subject_codes(with_records=True, limit=1)[0]
