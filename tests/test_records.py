from datetime import date

import pytest

from creditcert import lookup as records
from creditcert.config import RepairPolicy
from creditcert.data.store import Store, dataset_path
from creditcert.errors import DataError, RequestError, SubjectError
from creditcert.rules.vocab import LeftOut

from .conftest import AS_OF, LEGACY

DOMAINS = ["market-regulation", "transport", "taxation", "housing-fund", "public-security"]


def run(city, code, *, policy=None, **request):
    settings = city.settings
    if policy is not None:
        import dataclasses

        settings = dataclasses.replace(settings, repair_policy=policy)
    request.setdefault("domains", DOMAINS)
    if "years" not in request and "start" not in request:
        request["years"] = 5
    req = records.resolve_request(settings.catalog, as_of=AS_OF, **request)
    with Store(settings.data_dir, settings.catalog) as store:
        return records.lookup(store, settings, code, req)


def by_domain(findings):
    return {d.domain.code: d for d in findings.domains}


def test_every_rule_leaves_out_the_right_record(hand_city):
    f = by_domain(run(hand_city, hand_city.codes["busy"]))
    mr = f["market-regulation"]
    assert sorted(int(r.record_id.rsplit("-", 1)[1]) for r in mr.records) == [1, 4, 7, 8, 9]
    assert mr.left_out == {
        LeftOut.REVOKED: 1,
        LeftOut.OUTSIDE_PERIOD: 2,  # 2019 (before data complete) and after the as-of day
        LeftOut.EXCLUDED_PENALTY_ALONE: 1,
        LeftOut.BELOW_FINE_THRESHOLD: 1,
    }
    repaired = [r for r in mr.records if r.repaired]
    assert [r.decision_no for r in repaired] == ["沈市监罚〔2025〕7号"]
    assert [r.disputed for r in mr.records].count(True) == 1
    tr = f["transport"]
    assert len(tr.records) == 1 and tr.records[0].fine_amount == "20000.00"
    assert tr.left_out == {LeftOut.TIER_NOT_COUNTED: 1, LeftOut.BELOW_FINE_THRESHOLD: 1}
    tax = f["taxation"]
    assert tax.clipped_by_window and tax.period.start == date(2023, 7, 2)
    assert tax.clean and tax.left_out == {LeftOut.OUTSIDE_PERIOD: 1}
    hf = f["housing-fund"]
    assert hf.clean
    assert hf.left_out == {LeftOut.KIND_NOT_COUNTED: 1, LeftOut.PUBLICITY_ENDED: 1}
    assert f["public-security"].clean and not f["public-security"].left_out


def test_repair_policy_omit_accounts_for_repaired_records(hand_city):
    f = by_domain(run(hand_city, hand_city.codes["busy"], policy=RepairPolicy.OMIT))
    mr = f["market-regulation"]
    assert not any(r.repaired for r in mr.records)
    assert mr.left_out[LeftOut.REPAIRED] == 1


def test_every_record_is_accounted_for(hand_city):
    f = run(hand_city, hand_city.codes["busy"])
    total = sum(len(d.records) + sum(d.left_out.values()) for d in f.domains)
    assert total == 11 - 1 + 3 + 1 + 2  # all of busy's records (one market record is legacy's)


def test_period_is_clipped_to_data_complete_date(hand_city):
    f = run(hand_city, hand_city.codes["clean"])
    assert f.requested.start == date(2021, 7, 2)
    assert f.period.start == date(2021, 7, 2) and not f.clipped_to_complete_from
    g = run(hand_city, hand_city.codes["clean"], years=None, start=date(2021, 7, 2), end=AS_OF)
    assert not g.clipped_to_complete_from
    import dataclasses

    later = dataclasses.replace(hand_city.settings, complete_from=date(2022, 1, 1))
    req = records.resolve_request(later.catalog, as_of=AS_OF, domains=DOMAINS, years=5)
    with Store(later.data_dir, later.catalog) as store:
        h = records.lookup(store, later, hand_city.codes["clean"], req)
    assert h.clipped_to_complete_from and h.period.start == date(2022, 1, 1)
    assert all(d.period.start >= date(2022, 1, 1) for d in h.domains)


def test_clean_subject_gets_an_explicit_line_per_domain(hand_city):
    f = run(hand_city, hand_city.codes["clean"])
    assert [d.domain.code for d in f.domains] == DOMAINS
    assert all(d.clean for d in f.domains)


def test_legacy_code_in_register_is_a_warning(hand_city):
    f = run(hand_city, LEGACY)
    assert f.code_warnings and "check character" in f.code_warnings[0]
    assert len(by_domain(f)["market-regulation"].records) == 1


def test_unregistered_and_malformed_codes_are_errors(hand_city):
    with pytest.raises(SubjectError, match="not in the subject register"):
        run(hand_city, "91110000600037341L")
    with pytest.raises(SubjectError, match="not a valid credit code"):
        run(hand_city, "9111000060003734IL")
    typo = hand_city.codes["busy"][:-1] + ("0" if hand_city.codes["busy"][-1] != "0" else "1")
    with pytest.raises(SubjectError, match="not in the subject register.*check character"):
        run(hand_city, typo)


@pytest.mark.parametrize(
    ("request_kwargs", "message"),
    [
        ({"domains": ["astrology"]}, "unknown domain"),
        ({"domains": None, "purpose": "party"}, "unknown purpose"),
        ({"years": 6}, "from 1 to 5"),
        ({"years": None, "start": date(2020, 1, 1), "end": AS_OF}, "at most 5 years"),
        ({"years": None, "start": date(2026, 1, 1), "end": date(2026, 8, 1)}, "after the as-of"),
        ({"domains": DOMAINS, "all_domains": True}, "exactly one"),
    ],
)
def test_bad_requests_are_clear_errors(hand_city, request_kwargs, message):
    kwargs = {"domains": DOMAINS, "years": 5, **request_kwargs}
    with pytest.raises((RequestError, Exception), match=message):
        records.resolve_request(hand_city.settings.catalog, as_of=AS_OF, **kwargs)


def test_domain_without_dataset_is_an_error_naming_the_file(hand_city):
    with pytest.raises(DataError, match="dataset file missing.*water.parquet"):
        run(hand_city, hand_city.codes["clean"], domains=["water"])


def test_changed_dataset_is_refused_until_reindexed(hand_city):
    """Staleness is content identity (the file's id), not size and mtime: a byte-identical
    rewrite with another mtime still answers; a file replaced behind the index's back does not."""
    import os

    import pyarrow.parquet as pq

    from creditcert.data.index import rebuild_index

    path = dataset_path(hand_city.settings.data_dir, "transport")
    path.write_bytes(path.read_bytes())  # same content, new mtime
    os.utime(path, ns=(1, 1))
    assert run(hand_city, hand_city.codes["busy"])
    table = pq.read_table(path)  # the same rows, written by another tool: no id
    meta = {k: v for k, v in table.schema.metadata.items() if k == b"creditcert.data_cutoff"}
    pq.write_table(table.replace_schema_metadata(meta), path)
    with pytest.raises(DataError, match="changed after the data index was built.*reindex"):
        run(hand_city, hand_city.codes["busy"])
    rebuild_index(hand_city.settings.data_dir, hand_city.settings.catalog)
    assert run(hand_city, hand_city.codes["busy"])


def test_snapshot_of_findings(hand_city, snapshot):
    for name in ("busy", "clean", "legacy"):
        f = run(hand_city, hand_city.codes[name]).to_json()
        assert f == snapshot(name=name)
