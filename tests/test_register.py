import csv
import json
from datetime import date, datetime

import numpy as np
import pytest
from typer.testing import CliRunner

from creditcert import lookup as records
from creditcert.cli.app import app
from creditcert.data import sample
from creditcert.data.store import Store
from creditcert.data.subjects import import_register
from creditcert.errors import SubjectError
from creditcert.model.clock import SHANGHAI

from .conftest import LEGACY

NOW = datetime(2026, 7, 1, 9, 0, tzinfo=SHANGHAI)
NEW = sample.generate_codes(3, np.random.default_rng(99), ["210105"])


def write_export(path, rows, encoding="utf-8"):
    with open(path, "w", encoding=encoding, newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["统一社会信用代码", "企业名称", "成立日期", "登记状态"])
        w.writerows(rows)


def run(city, path):
    s = city.settings
    return import_register(
        path,
        data_dir=s.data_dir,
        catalog=s.catalog,
        quarantine_dir=city.home / "quarantine",
        now=NOW,
    )


def test_register_import_adds_updates_and_quarantines(hand_city, tmp_path):
    path = tmp_path / "register.csv"
    busy = hand_city.codes["busy"]
    write_export(
        path,
        [
            [NEW[0], "沈阳新开张商贸有限公司", "2026-05-01", "存续"],
            [NEW[1], "皇姑区小王便利店", "2019/3/2", "在业"],
            [busy, "沈阳瑞祥物流有限公司", "2010-05-01", "吊销，未注销"],  # status change
            [NEW[0], "重复", "2026-05-01", "存续"],  # duplicate
            ["9111000060003734IL", "坏代码", "", ""],  # malformed
            [NEW[2], "", "2020-01-01", "存续"],  # no name
            [NEW[2], "某公司", "2020-01-01", "歇业中"],  # unknown status
        ],
        encoding="gbk",
    )
    result = run(hand_city, path)
    assert (result.read, result.added, result.updated, result.quarantined) == (7, 2, 1, 4)
    assert result.read == result.added + result.updated + result.unchanged + result.quarantined
    with open(result.quarantine_file, encoding="utf-8-sig") as fh:
        reasons = [r["reason"] for r in csv.DictReader(fh)]
    assert any("duplicate of row 2" in r for r in reasons)
    assert any("alphabet" in r for r in reasons)
    assert any("name: missing" in r for r in reasons)
    assert any("歇业中" in r for r in reasons)
    s = hand_city.settings
    with Store(s.data_dir, s.catalog) as store:
        assert store.subject(NEW[0]).name == "沈阳新开张商贸有限公司"
        assert store.subject(busy).status == "revoked"
        req = records.resolve_request(
            s.catalog, as_of=date(2026, 7, 1), domains=["market-regulation"], years=3
        )
        clean = records.lookup(store, s, NEW[1], req)
        assert clean.domains[0].clean
    again = run(hand_city, path)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 3)


def test_legacy_code_enters_only_through_the_register(hand_city, tmp_path):
    path = tmp_path / "register.csv"
    legacy2 = LEGACY[:-1] + "8"  # also fails its check character; not registered yet
    s = hand_city.settings
    req = records.resolve_request(
        s.catalog, as_of=date(2026, 7, 1), domains=["market-regulation"], years=3
    )
    with Store(s.data_dir, s.catalog) as store, pytest.raises(SubjectError):
        records.lookup(store, s, legacy2, req)
    write_export(path, [[legacy2, "厦门老字号二厂", "2001-01-01", "存续"]])
    result = run(hand_city, path)
    assert (result.added, result.legacy_codes) == (1, 1)
    with Store(s.data_dir, s.catalog) as store:
        f = records.lookup(store, s, legacy2, req)
    assert f.code_warnings


def test_cli_register_import(hand_city, tmp_path):
    path = tmp_path / "register.csv"
    write_export(path, [[NEW[2], "沈阳测试有限公司", "2020-01-01", "存续"]])
    res = CliRunner().invoke(
        app, ["--home", str(hand_city.home), "register", "import", str(path), "--json"]
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["added"] == 1
