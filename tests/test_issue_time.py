"""No report about the future (issue 9, D1): an as-of day after the issuing clock is refused, and a
period that runs past the data cut-off is clipped to it and says so — in the lookup, in the signed
document and on the PDF."""

import dataclasses
import json
from datetime import date, datetime, timedelta

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from creditcert.cli.app import app
from creditcert.data.index import rebuild_index
from creditcert.data.schema import CUTOFF_KEY
from creditcert.data.store import dataset_path
from creditcert.errors import RequestError
from creditcert.model.clock import SHANGHAI
from creditcert.model.document import from_data
from creditcert.registry import SqliteRegistry
from creditcert.verify.result import Verdict

from .conftest import AS_OF, CUTOFF, NOW_REPORTS, city_at

DOMAINS = ["market-regulation", "transport", "taxation", "housing-fund", "public-security"]
BEIJING_2330 = datetime(2026, 7, 1, 23, 30, tzinfo=SHANGHAI)


def test_an_as_of_day_after_the_clock_is_refused_by_request_lookup_and_issue(hand_city):
    city = city_at(hand_city.home)
    tomorrow = BEIJING_2330.date() + timedelta(days=1)
    with pytest.raises(RequestError, match="after today"):
        city.request(as_of=tomorrow, domains=DOMAINS, years=3, at=BEIJING_2330)
    request = city.request(
        as_of=tomorrow, domains=DOMAINS, years=3
    )  # no clock given: checked later
    with pytest.raises(RequestError, match=r"as-of date 2026-07-02 is after today \(2026-07-01"):
        city.lookup(hand_city.codes["busy"], request, at=BEIJING_2330)
    with pytest.raises(RequestError, match="after today"):
        city.issue(hand_city.codes["busy"], request, at=BEIJING_2330)
    assert not city.layout.registry.exists() or SqliteRegistry(city.layout.registry).count() == 0
    # the clock's day is Beijing's: 00:30 on 2 July in Beijing is still 1 July in UTC
    after_midnight = datetime(2026, 7, 2, 0, 30, tzinfo=SHANGHAI)
    assert city.lookup(hand_city.codes["busy"], request, at=after_midnight).as_of == tomorrow


def test_the_period_is_clipped_to_the_last_day_the_data_covers(hand_city):
    city = city_at(hand_city.home)
    request = city.request(as_of=AS_OF, domains=DOMAINS, years=3, at=BEIJING_2330)
    found = city.lookup(hand_city.codes["busy"], request, at=BEIJING_2330)
    last = CUTOFF.date() - timedelta(days=1)  # cut-off 06-30 02:00: 06-30 is incomplete
    assert found.requested.end == AS_OF and found.period.end == last
    assert found.clipped_to_data_cutoff
    assert all(d.period.end == last for d in found.domains)
    assert found.to_json()["clipped_to_data_cutoff"] is True
    # a period that ends in time is left alone
    earlier = city.request(as_of=last, domains=DOMAINS, years=3)
    found = city.lookup(hand_city.codes["busy"], earlier, at=BEIJING_2330)
    assert found.period.end == last and not found.clipped_to_data_cutoff
    # a period that starts after the data ends has nothing to report
    late = city.request(as_of=AS_OF, domains=DOMAINS, start=CUTOFF.date(), end=AS_OF)
    with pytest.raises(RequestError, match="after the data cut-off"):
        city.lookup(hand_city.codes["busy"], late, at=BEIJING_2330)


def test_with_different_cut_offs_the_earliest_applies_to_every_domain(hand_city):
    s = hand_city.settings
    older = datetime(2026, 6, 20, 2, 0, tzinfo=SHANGHAI)
    path = dataset_path(s.data_dir, "transport")
    table = pq.read_table(path)
    pq.write_table(table.replace_schema_metadata({CUTOFF_KEY: older.isoformat()}), path)
    rebuild_index(s.data_dir, s.catalog)
    city = city_at(hand_city.home)
    request = city.request(as_of=AS_OF, domains=["market-regulation", "transport"], years=3)
    found = city.lookup(hand_city.codes["busy"], request, at=BEIJING_2330)
    assert found.data_cutoff == older
    assert found.period.end == date(2026, 6, 19)
    assert [d.period.end for d in found.domains] == [date(2026, 6, 19)] * 2
    assert {d.domain.code: d.data_cutoff for d in found.domains} == {
        "market-regulation": CUTOFF,
        "transport": older,
    }


def test_the_signed_document_and_the_pdf_say_the_period_was_clipped(issued):
    report, path = issued["busy"]
    doc = report.document
    assert doc.requested.end == NOW_REPORTS.date() and doc.clipped_to_data_cutoff
    assert doc.period.end == doc.data_cutoff.date() - timedelta(days=1)
    assert doc.to_data()["clipped_to_data_cutoff"] is True
    assert from_data(doc.to_data()) == doc
    result = issued["city"].verify(path.read_bytes(), at=NOW_REPORTS + timedelta(minutes=1))
    assert result.verdict is Verdict.ACCEPTED
    assert result.document.clipped_to_data_cutoff
    html = issued["renderer"].html(doc, report.qr.text)
    assert f"报告期间截至 {doc.period.end}" in html
    assert f"so the report covers the period to {doc.period.end}" in html


def test_an_unclipped_document_keeps_the_old_shape(issued):
    """Documents issued before the field existed re-encode to their signed bytes (the published
    vectors are checked the same way in test_report_vectors)."""
    doc = issued["busy"][0].document
    old = dataclasses.replace(doc, clipped_to_data_cutoff=False)
    assert "clipped_to_data_cutoff" not in old.to_data()
    assert from_data(old.to_data()).to_cbor() == old.to_cbor()


def test_cli_future_as_of_is_one_line_and_clipping_is_shown(hand_city):
    runner = CliRunner()
    home = str(hand_city.home)
    code = hand_city.codes["busy"]
    future = (datetime.now(SHANGHAI) + timedelta(days=400)).date().isoformat()
    asked = ["--domains", ",".join(DOMAINS)]
    for command in ("lookup", "report"):
        result = runner.invoke(app, ["--home", home, command, code, *asked, "--as-of", future])
        assert result.exit_code == 2, result.output
        assert result.stderr.count("error:") == 1 and "Traceback" not in result.stderr
        assert "after today" in result.stderr.replace("\n", " ")
    result = runner.invoke(app, ["--home", home, "lookup", code, *asked])
    assert result.exit_code == 0 and "clipped to the data cut-off" in result.stdout
    result = runner.invoke(app, ["--home", home, "lookup", code, *asked, "--json"])
    body = json.loads(result.stdout)
    assert body["clipped_to_data_cutoff"] is True
    assert body["period"]["end"] == (CUTOFF.date() - timedelta(days=1)).isoformat()
