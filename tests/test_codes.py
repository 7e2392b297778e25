import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from creditcert.cli.app import app
from creditcert.data import sample
from creditcert.rules import codes

SHENYANG = ["210102", "210103", "210104", "210105", "210106", "210112"]
GENERATED = sample.generate_codes(500, np.random.default_rng(1), SHENYANG)


@pytest.mark.parametrize(
    "raw",
    ["91110000600037341L", "９１１１００００６０００３７３４１Ｌ", " 9111 0000 6000 3734 1l "],
)
def test_real_code_and_its_spellings_are_valid(raw):
    result = codes.validate(raw)
    assert result.well_formed, result.describe()
    assert result.code == "91110000600037341L"
    assert result.entity_type == "企业"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("91110000600037341", "length"),
        ("91110000600037341LX", "length"),
        ("9111000060003734IL", "alphabet"),
        ("Z1110000600037341L", "alphabet"),
        ("B1110000600037341L", "registration-authority"),
        ("97110000600037341L", "entity-type"),
        ("91990000600037341L", "admin-division"),
        ("91110000600037342L", "organisation-code"),
        ("91110000600037341M", "check-character"),
    ],
)
def test_each_rule_names_its_reason(raw, reason):
    result = codes.validate(raw)
    assert not result.well_formed
    assert reason in [p.reason for p in result.problems]


def test_legacy_code_fails_only_a_checksum():
    result = codes.validate("91350203M0001QKT19")
    assert not result.well_formed
    assert result.acceptable_if_registered  # a warning when registered, see test_records
    assert [p.reason for p in result.problems] == ["check-character"]


def test_shape_errors_are_never_acceptable():
    assert not codes.validate("9111000060003734IL").acceptable_if_registered
    assert not codes.validate("97110000600037341L").acceptable_if_registered


def test_generator_mixes_entity_types_like_a_city():
    types = [c[:2] for c in sample.generate_codes(5000, np.random.default_rng(2), SHENYANG)]
    share = {t: types.count(t) / len(types) for t in set(types)}
    assert share["91"] > 0.45 and share["92"] > 0.33
    assert {"93", "51", "52"} <= set(share)
    assert len(set(types)) >= 5


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(GENERATED))
def test_every_generated_code_validates(code):
    assert codes.validate(code).well_formed
    assert code[2:8] in SHENYANG


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(GENERATED),
    st.integers(min_value=0, max_value=17),
    st.sampled_from(codes.ALPHABET),
)
def test_every_single_substitution_is_caught(code, position, replacement):
    if code[position] == replacement:
        return
    mutated = code[:position] + replacement + code[position + 1 :]
    assert not codes.validate(mutated).well_formed


def test_single_substitutions_exhaustively_for_one_code():
    """The proof in codes.py, checked: the check character alone catches all 18 × 30 of them."""
    for code in GENERATED[:20]:
        for i in range(18):
            for c in codes.ALPHABET:
                if c != code[i]:
                    mutated = code[:i] + c + code[i + 1 :]
                    assert codes.check_character(mutated[:17]) != mutated[17]


def test_cli_code_check_lines_and_exit_codes():
    runner = CliRunner()
    ok = runner.invoke(app, ["code", "check", "91110000600037341L"])
    assert ok.exit_code == 0
    assert ok.stdout.strip() == "91110000600037341L valid"
    bad = runner.invoke(app, ["code", "check", "91110000600037341L", "91350203M0001QKT19"])
    assert bad.exit_code == 1
    assert "91350203M0001QKT19 invalid: check character is '9', expected 'F'" in bad.stdout
    js = runner.invoke(app, ["code", "check", "--json", "91350203M0001QKT19"])
    assert js.exit_code == 1
    body = json.loads(js.stdout)
    assert body["format"] == "creditcert.code-check/1"
    [entry] = body["codes"]
    assert entry["valid"] is False
    assert entry["problems"][0]["reason"] == "check-character"
