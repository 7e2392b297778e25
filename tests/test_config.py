import os
from datetime import date

import pytest

from creditcert import config
from creditcert.config import RepairPolicy
from creditcert.errors import ConfigError

from .conftest import new_home


def test_init_writes_a_loadable_commented_default(tmp_path):
    home = new_home(tmp_path)
    text = (home / "creditcert.toml").read_text(encoding="utf-8")
    assert "# show-marked" in text and 'name = "沈阳市"' in text
    s = config.load(home)
    assert s.issuer.admin_code == "210100" and s.issuer.name_en == "Shenyang"
    assert s.complete_from == date(2020, 9, 1)
    assert s.repair_policy is RepairPolicy.SHOW_MARKED
    assert s.rate_limit_per_day == 1
    assert len(s.catalog.domains) == 52
    with pytest.raises(ConfigError, match="already exists"):
        config.init(home, admin_code="210100", name="沈阳市")


def edit(home, old, new):
    path = home / "creditcert.toml"
    path.write_text(path.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")


def test_bad_setting_names_file_key_and_allowed(tmp_path):
    home = new_home(tmp_path)
    edit(home, 'repair_policy = "show-marked"', 'repair_policy = "hide"')
    with pytest.raises(ConfigError) as exc:
        config.load(home)
    msg = str(exc.value)
    assert "creditcert.toml" in msg and "report.repair_policy" in msg
    assert "show-marked or omit" in msg


def test_unknown_key_and_bad_date(tmp_path):
    home = new_home(tmp_path)
    edit(home, "rate_limit_per_day = 1", "rate_limit_per_day = 1\nspeed = 9")
    with pytest.raises(ConfigError, match="unknown field.*speed"):
        config.load(home)
    home2 = new_home(tmp_path / "b")
    edit(home2, "complete_from = 2020-09-01", 'complete_from = "soon"')
    with pytest.raises(ConfigError, match="data.complete_from.*date"):
        config.load(home2)


def test_purpose_override_changes_preset_and_digest(tmp_path):
    home = new_home(tmp_path)
    before = config.load(home).catalog
    edit(home, "# [purposes.bidding]\n# years = 2", "[purposes.bidding]\nyears = 2")
    after = config.load(home).catalog
    assert after.purpose("bidding").years == 2
    assert after.digest != before.digest
    edit(home, "years = 2", 'years = 2\ndomains = ["nope"]')
    with pytest.raises(ConfigError, match="nope"):
        config.load(home)


def test_missing_home_says_how_to_make_one(tmp_path, monkeypatch):
    monkeypatch.delenv(config.HOME_ENV, raising=False)
    with pytest.raises(ConfigError, match="creditcert init"):
        config.load(tmp_path)
    monkeypatch.setenv(config.HOME_ENV, os.fspath(new_home(tmp_path)))
    assert config.load(None).issuer.name == "沈阳市"


def test_service_settings_default_and_refuse_what_cannot_work(tmp_path):
    home = new_home(tmp_path)
    service = config.load(home).service
    assert service.base_url == config.LOCAL_URL and service.trusted_proxies == ()
    edit(home, "# trusted_proxies", "trusted_proxies")
    assert [str(n) for n in config.load(home).service.trusted_proxies] == ["10.0.0.0/8"]
    for old, new, key in [
        (config.LOCAL_URL, "ftp://x", "service.base_url"),
        (config.LOCAL_URL, "https://x/?a=1", "service.base_url"),
        ('["10.0.0.0/8"]', '["10.0.0.300"]', "service.trusted_proxies"),
    ]:
        edit(home, old, new)
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            config.load(home)
        edit(home, new, old)
    edit(home, f'base_url = "{config.LOCAL_URL}"', 'base_url = "https://credit.example.cn/"')
    assert config.load(home).service.base_url == "https://credit.example.cn"
