import copy
import tomllib
from pathlib import Path

import pytest

from creditcert.errors import CatalogError
from creditcert.resources import default_catalog_path
from creditcert.rules import catalog

RAW = tomllib.loads(default_catalog_path().read_text(encoding="utf-8"))


def parse(raw):
    return catalog.parse(raw, source="test.toml")


def test_default_catalog_has_the_52_reference_domains_and_5_purposes():
    c = catalog.load(default_catalog_path())
    assert len(c.domains) == 52
    assert c.codes[0] == "market-regulation" and c.codes[-1] == "government-procurement"
    assert [p.code for p in c.purposes] == ["listing", "bidding", "financing", "awards", "all"]
    assert c.purpose("listing").domains == c.codes
    assert c.digest.startswith("sha256:") and len(c.digest) == 71
    mr = c.domain("market-regulation")
    assert "abnormal-operation" in mr.rules.kinds and mr.rules.fine_threshold == 1000


def test_digest_ignores_layout_but_not_rules():
    c = parse(RAW)
    again = parse(catalog.as_raw(c))  # defaults resolved into every domain: same content
    assert again.digest == c.digest
    changed = copy.deepcopy(RAW)
    changed["domain"][1]["fine_threshold"] = 2000
    assert parse(changed).digest != c.digest


def broken(mutate):
    raw = copy.deepcopy(RAW)
    mutate(raw)
    with pytest.raises(CatalogError) as exc:
        parse(raw)
    return str(exc.value)


def test_unknown_field_is_named():
    msg = broken(lambda r: r["domain"][3].update(colour="red"))
    assert "test.toml" in msg and "#4 (ecology-environment)" in msg and "colour" in msg


def test_duplicate_code_is_named():
    msg = broken(lambda r: r["domain"][5].update(code="taxation", dataset="x-6"))
    assert "duplicate domain code" in msg and "#2" in msg


def test_missing_dataset_is_named():
    msg = broken(lambda r: r["domain"][0].pop("dataset"))
    assert "market-regulation" in msg and ".dataset" in msg


def test_bad_window_is_named():
    msg = broken(lambda r: r["domain"][0].update(window_years=9))
    assert "window_years" in msg and "from 1 to 5" in msg


def test_purpose_naming_unknown_domain_is_named():
    msg = broken(lambda r: r["purpose"]["bidding"]["domains"].append("astrology"))
    assert "[purpose.bidding].domains" in msg and "astrology" in msg


def test_unknown_kind_is_named():
    msg = broken(lambda r: r["defaults"].update(kinds=["penalty", "gossip"]))
    assert "gossip" in msg and "kinds" in msg


def test_missing_file_and_bad_toml(tmp_path: Path):
    with pytest.raises(CatalogError, match="not found"):
        catalog.load(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("format = [", encoding="utf-8")
    with pytest.raises(CatalogError, match="bad.toml: not valid TOML"):
        catalog.load(bad)


SHIPPED = [
    default_catalog_path(),
    Path(__file__).parent.parent / "sample_data" / "catalog-yichun.toml",
    Path(__file__).parent / "vectors" / "catalog" / "minimal.toml",
]


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_canonical_form_is_jcs_and_equals_the_format_1_serialisation(path):
    """The digest is over RFC 8785 (JCS) bytes. Until JCS replaced it, the canonical form was
    json.dumps with sorted keys, no whitespace and ensure_ascii off; for the shipped catalogs
    (ASCII keys, integers, no floats) the two give the same bytes, so every published digest
    stands. A float, or a key outside the BMP, would make them differ: this test then fails, and
    the catalog format version has to be considered before shipping such a catalog."""
    import hashlib
    import json
    from dataclasses import asdict

    import rfc8785

    c = catalog.load(path)
    body = {
        "id": c.id,
        "version": c.version,
        "zh": c.zh,
        "en": c.en,
        "domains": [asdict(d) for d in c.domains],
        "purposes": [asdict(p) for p in sorted(c.purposes, key=lambda p: p.code)],
    }
    old = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    meta = {"id": c.id, "version": c.version, "zh": c.zh, "en": c.en}
    assert catalog.canonical_json(c.domains, c.purposes, meta) == rfc8785.dumps(body) == old
    assert c.digest == "sha256:" + hashlib.sha256(old).hexdigest()
