"""`kill -9` of the real CLI at every durable step of keys init, keys rotate and partner import:
afterwards the home is the old state or the new one, our reports still verify, and a plain
re-run converges (stages in creditcert/stages.py)."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta

import pytest

from creditcert import config
from creditcert.errors import KeyFileError
from creditcert.model.clock import SHANGHAI
from creditcert.trust.keys import fingerprint
from creditcert.verify.result import Verdict

from .conftest import NOW_REPORTS, city_at, run_cli

pytestmark = pytest.mark.slow  # the real CLI in subprocesses: `make test` runs it, `make check` not

AT = NOW_REPORTS + timedelta(hours=1)  # when our reports are verified


def clock():
    """The CLI reads the real clock: so do the checks of what it wrote."""
    return datetime.now(SHANGHAI) + timedelta(seconds=1)


def debris(directory):
    return sorted(p.name for p in directory.rglob(".*.tmp"))


@pytest.mark.parametrize("stage", ["keys.init.root-key", "keys.init.others-retired"])
def test_keys_init_killed_is_none_or_both_and_a_rerun_converges(tmp_path, stage):
    home = tmp_path / "city"
    config.init(home, admin_code="210100", name="沈阳市")
    killed = run_cli(home, "keys", "init", kill_at=stage)
    assert killed.returncode == -9, killed.stderr
    keys = city_at(home).keys
    assert not (keys.dir / "current").exists()  # not initialised: no signer is offered
    rerun = run_cli(home, "keys", "init")
    assert rerun.returncode == 0, rerun.stderr
    current = keys.signer(clock()).kid.hex()
    listed = keys.list()
    assert all(not i.problem for i in listed) and listed[0].role == "root"
    live = [i.kid for i in listed if i.role == "signer" and i.state.retired_at is None]
    assert live == [current]  # a signer left by the killed run is retired, never current
    assert not debris(keys.dir)


@pytest.fixture
def home(issued, tmp_path):
    copy = tmp_path / "city"
    shutil.copytree(issued["home"], copy)
    return copy


@pytest.mark.parametrize("stage", ["keys.rotate.signer-written", "keys.rotate.others-retired"])
def test_keys_rotate_killed_keeps_our_reports_verifiable(home, stage):
    city = city_at(home)
    old = city.keys.signer(AT).kid
    pdf = (home / "busy.pdf").read_bytes()
    killed = run_cli(home, "keys", "rotate", kill_at=stage)
    assert killed.returncode == -9, killed.stderr
    assert city.verify(pdf, at=AT).verdict is Verdict.ACCEPTED
    assert all(not i.problem for i in city.keys.list())
    if stage.endswith("others-retired"):  # the old key is retired but still current
        with pytest.raises(KeyFileError, match="retired.*keys rotate"):
            city.keys.signer(clock())
    rerun = run_cli(home, "keys", "rotate")
    assert rerun.returncode == 0, rerun.stderr
    assert city.keys.signer(clock()).kid != old
    signers = [i for i in city.keys.list() if i.role == "signer"]
    assert [i.state.retired_at is None for i in signers].count(True) == 1  # only the current
    assert city.verify(pdf, at=AT).verdict is Verdict.ACCEPTED


@pytest.mark.parametrize("stage", ["partner.import.pin-written", "partner.import.bundle-written"])
def test_partner_import_killed_is_old_or_new(home, tmp_path, stage):
    partner = tmp_path / "yc"
    config.init(partner, admin_code="230700", name="伊春市")
    yichun = city_at(partner)
    yichun.keys.init(NOW_REPORTS)
    bundle = tmp_path / "yc.cose"
    bundle.write_bytes(yichun.export_bundle(at=clock() - timedelta(minutes=1)))
    pin = fingerprint(yichun.keys.root())
    killed = run_cli(home, "partner", "import", str(bundle), "--fingerprint", pin, kill_at=stage)
    assert killed.returncode == -9, killed.stderr
    city = city_at(home)
    assert city.verify((home / "busy.pdf").read_bytes(), at=AT).verdict is Verdict.ACCEPTED
    [row] = city.partners.listing(at=clock())
    imported = stage.endswith("bundle-written")
    assert (row[0].bundle is not None) is imported and not debris(city.partners.dir)
    rerun = city.import_bundle(bundle.read_bytes(), pin=pin, at=clock())  # a plain re-run
    assert rerun.verdict.accepted is not imported  # imported already: the same one is stale
    assert city.partners.stored("230700", at=clock()).problem is None
