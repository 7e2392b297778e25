"""Published vectors (tests/vectors/, made by generate.py from the documented rules)."""

import hashlib
import json
from pathlib import Path

import pytest

from creditcert.rules import catalog, codes

VECTORS = Path(__file__).parent / "vectors"


def test_catalog_vector_canonical_bytes_and_digest():
    c = catalog.load(VECTORS / "catalog" / "minimal.toml")
    expected = (VECTORS / "catalog" / "minimal.canonical.json").read_bytes()
    mine = catalog.canonical_json(
        c.domains, c.purposes, {"id": c.id, "version": c.version, "zh": c.zh, "en": c.en}
    )
    assert mine == expected
    assert c.digest == (VECTORS / "catalog" / "minimal.digest").read_text().strip()
    assert c.digest == "sha256:" + hashlib.sha256(expected).hexdigest()


CASES = json.loads((VECTORS / "codes" / "codes.json").read_text(encoding="utf-8"))["cases"]


@pytest.mark.parametrize("case", CASES, ids=[c["description"] for c in CASES])
def test_code_vectors(case):
    result = codes.validate(case["code"])
    assert result.well_formed is case["valid"]
    if not case["valid"]:
        assert [p.reason for p in result.problems] == case["reasons"]
        assert result.acceptable_if_registered is case["acceptable_if_registered"]
