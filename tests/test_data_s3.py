"""Datasets on object storage (docs/scale-out.md, "Datasets on object storage"), against a real
S3-compatible server (SeaweedFS, tests/s3_server.py): writers publish to the bucket atomically,
other instances take in a newer generation within the refresh interval while their readers keep
answering, concurrent writers never lose one another's update, and every failure of the store
is one clear line."""

from __future__ import annotations

import json
import secrets
from datetime import date, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from creditcert import config
from creditcert.city import City
from creditcert.cli.app import app
from creditcert.data import sample
from creditcert.data.bucket import ManifestConflict
from creditcert.data.generation import indexed
from creditcert.data.ingest import ingest_file
from creditcert.data.manifest import FORMAT, MAX_BYTES, Manifest
from creditcert.data.store import current_generation, generation_path
from creditcert.errors import ConfigError, DataError
from creditcert.model.clock import SHANGHAI

from .conftest import new_home, run_cli, transport_export
from .s3_server import S3Server, s3_server  # noqa: F401  (the session fixture)

pytestmark = pytest.mark.slow  # a real S3-compatible server (SeaweedFS)

AS_OF = date(2026, 6, 30)
NOW = datetime(2026, 7, 1, 10, 30, tzinfo=SHANGHAI)
SIZE = {"subjects": 300, "records": 1500, "seed": 5}


@pytest.fixture(autouse=True)
def _credentials(s3_server: S3Server, monkeypatch):  # noqa: F811
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def prefix() -> str:
    """Each test's own part of the bucket."""
    return f"city-{secrets.token_hex(4)}"


@pytest.fixture(scope="module")
def template(s3_server, tmp_path_factory) -> str:  # noqa: F811
    """A prefix holding a generated city, published by a writer through the bucket."""
    name = f"template-{secrets.token_hex(4)}"
    with pytest.MonkeyPatch.context() as env:
        for key, value in s3_server.env().items():
            env.setenv(key, value)
        generate(City.open(s3_home(tmp_path_factory.mktemp("template"), "t", name)))
    return name


@pytest.fixture
def published(s3_server, template, prefix) -> str:  # noqa: F811
    """The test's prefix, holding a copy of the template city: every key in the manifest is
    relative to the prefix, so a copy of the prefix is a copy of the city's datasets (which is
    how they are backed up and restored)."""
    client = s3_server.client()
    for item in client.list_objects_v2(Bucket=s3_server.bucket, Prefix=f"{template}/")["Contents"]:
        client.copy_object(
            Bucket=s3_server.bucket,
            Key=prefix + item["Key"].removeprefix(template),
            CopySource={"Bucket": s3_server.bucket, "Key": item["Key"]},
        )
    return prefix


def small_home(tmp: Path) -> Path:
    """A new home whose catalog has the first 8 domains only (transport among them): each
    instance then moves 9 files, not 53, which keeps these tests quick."""
    home = new_home(tmp)
    catalog = home / "catalog.toml"
    head, *domains = catalog.read_text(encoding="utf-8").split("[[domain]]")
    kept = "".join("[[domain]]" + d for d in domains[:8])
    catalog.write_text(f"{head}{kept}\n{ALL_PURPOSE}", encoding="utf-8")
    return home


ALL_PURPOSE = """[purpose.all]
zh = "全部"
en = "All domains"
domains = "all"
years = 3
validity_days = 30
"""


def s3_home(tmp: Path, name: str, prefix: str, *, bucket: str = "creditcert-test", **data) -> Path:
    """A home (one instance) whose datasets live at s3://bucket/prefix."""
    home = small_home(tmp / name)
    path = home / "creditcert.toml"
    extra = "".join(f"\n{k} = {json.dumps(v)}" for k, v in {"refresh_seconds": 0, **data}.items())
    text = path.read_text(encoding="utf-8").replace(
        'location = "data"', f'location = "s3://{bucket}/{prefix}"{extra}'
    )
    path.write_text(text, encoding="utf-8")
    return home


def generate(city: City) -> None:
    s = city.settings
    city.write_data(
        lambda sync: sample.generate(
            s.data_dir, s.catalog, s.issuer, **SIZE, as_of=AS_OF, sync=sync
        )
    )


def ingest(city: City, export: Path, *, sync=None):
    s = city.settings
    return ingest_file(
        export, domain_code="transport", catalog=s.catalog, data_dir=s.data_dir,
        quarantine_dir=city.layout.quarantine, now=NOW, sync=sync or city.mirror,
    )  # fmt: skip


def manifest(server: S3Server, prefix: str) -> Manifest:
    body = server.client().get_object(Bucket=server.bucket, Key=f"{prefix}/manifest.json")
    return Manifest.from_bytes(body["Body"].read(), where="test")


def answers(city: City, codes: list[str]) -> list[dict]:
    request = city.request(as_of=AS_OF, all_domains=True)
    return [city.lookup(code, request, at=NOW).to_json() for code in codes]


def transport_rows(city: City) -> int:
    with city.store() as store:
        return store.dataset_info(city.settings.catalog.domain("transport")).rows


# --- settings ------------------------------------------------------------------------------


def test_an_s3_location_is_parsed_once_into_the_settings(tmp_path, prefix):
    home = s3_home(tmp_path, "a", prefix, region="cn-north-1", refresh_seconds=5)
    s = config.load(home)
    store = s.object_store
    assert store is not None and (store.bucket, store.prefix) == ("creditcert-test", prefix)
    assert store.endpoint.startswith("http://127.0.0.1:")  # from AWS_ENDPOINT_URL
    assert (store.region, store.refresh_seconds) == ("cn-north-1", 5)
    assert s.data_dir == home / "cache" / "data"  # the local working copy
    local = config.load(new_home(tmp_path / "local"))
    assert local.object_store is None and local.data_dir == tmp_path / "local" / "city" / "data"


@pytest.mark.parametrize(
    ("location", "extra", "message"),
    [
        ("data", {"endpoint": "http://x"}, "data.endpoint: only applies to an s3://"),
        ("ftp://bucket/p", {}, "must be a path or s3://bucket/prefix"),
        ("s3://UPPER/p", {}, "must be a path or s3://bucket/prefix"),
        ("s3://bucket/a/../b", {}, "must be a plain key prefix"),
        ("s3://bucket/p", {"refresh_seconds": -1}, "data.refresh_seconds: must be an integer"),
        ("s3://bucket/p", {"endpoint": "file:///etc"}, "data.endpoint: must be an http(s) URL"),
    ],
)
def test_a_bad_location_names_the_key(tmp_path, location, extra, message):
    home = new_home(tmp_path)
    path = home / "creditcert.toml"
    lines = "".join(f"\n{k} = {json.dumps(v)}" for k, v in extra.items())
    path.write_text(
        path.read_text(encoding="utf-8").replace(
            'location = "data"', f"location = {json.dumps(location)}{lines}"
        ),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        config.load(home)


# --- writing and reading through the bucket ------------------------------------------------


def test_sample_data_in_the_bucket_answers_like_a_local_directory(tmp_path, s3_server, prefix):  # noqa: F811
    writer = City.open(s3_home(tmp_path, "a", prefix))
    generate(writer)
    published = manifest(s3_server, prefix)
    assert published.generation == 1
    assert len(published.files) == 1 + len(writer.settings.catalog.domains)
    assert published.files["subjects.parquet"].rows == SIZE["subjects"]
    keys = {
        o["Key"]
        for o in s3_server.client().list_objects_v2(Bucket=s3_server.bucket, Prefix=prefix)[
            "Contents"
        ]
    }
    assert keys == {f"{prefix}/manifest.json"} | {
        f"{prefix}/{e.key}" for e in published.files.values()
    }

    reader = City.open(s3_home(tmp_path, "b", prefix))  # another instance: an empty cache
    local = City.open(small_home(tmp_path / "local"))
    s = local.settings
    sample.generate(s.data_dir, s.catalog, s.issuer, **SIZE, as_of=AS_OF)
    with local.store() as store:
        codes = store.subject_codes(with_records=True, limit=5)
        codes += store.subject_codes(with_records=False, limit=2)
    assert answers(reader, codes) == answers(local, codes)
    assert answers(writer, codes) == answers(local, codes)
    assert reader.mirror.applied().manifest.generation == 1


def test_an_ingest_on_one_instance_reaches_the_others_within_the_refresh_interval(
    tmp_path, published
):
    writer = City.open(s3_home(tmp_path, "a", published))
    reader = City.open(s3_home(tmp_path, "b", published, refresh_seconds=30))
    clock = [1000.0]
    reader.mirror._clock = lambda: clock[0]
    before = transport_rows(reader)  # the first open pulls, whatever the interval

    with reader.store() as held:  # a reader that keeps its snapshot throughout
        result = ingest(writer, transport_export(reader, tmp_path / "t.csv", rows=40))
        assert result.accepted == 40
        assert transport_rows(writer) == before + 40  # the writer's own instance at once
        clock[0] += 29  # within the interval: the bucket is not even asked
        assert transport_rows(reader) == before
        clock[0] += 1.5  # past it: one conditional GET finds the new manifest, and pulls it
        assert transport_rows(reader) == before + 40
        transport = reader.settings.catalog.domain("transport")
        assert held.dataset_info(transport).rows == before  # still its snapshot, still answering
    assert reader.mirror.last_pull.files == 1  # only the changed dataset was fetched
    data = reader.settings.data_dir
    _, _, patched = indexed(generation_path(data, current_generation(data)))
    assert patched == 40  # its index patched with the 40 new rows, not rebuilt
    with writer.store() as store:
        codes = store.subject_codes(with_records=True, limit=40)
    assert answers(reader, codes) == answers(writer, codes)


def test_concurrent_writers_never_lose_one_anothers_update(tmp_path, s3_server, published):  # noqa: F811
    prefix = published
    first = City.open(s3_home(tmp_path, "a", prefix))
    second = City.open(s3_home(tmp_path, "b", prefix))
    base = transport_rows(second)
    first_export = transport_export(second, tmp_path / "one.csv", rows=30, seed=1)
    second_export = transport_export(second, tmp_path / "two.csv", rows=20, seed=2)
    attempts = []

    class Overtaken:
        """The second instance's sync: right after its pull, the first instance publishes."""

        def pull(self, writer):
            second.mirror.pull(writer)
            attempts.append(1)
            if len(attempts) == 1:
                ingest(first, first_export)

        def push(self, writer):
            try:
                second.mirror.push(writer)
            except ManifestConflict as exc:
                conflicts.append((str(exc), manifest(s3_server, prefix).generation))
                raise

    conflicts = []
    result = second.write_data(lambda sync: ingest(second, second_export, sync=Overtaken()))
    [(message, generation)] = conflicts
    assert "another instance published a newer generation" in message
    assert generation == 2  # the first's, untouched by the second's refused manifest
    assert result.accepted == 20 and len(attempts) == 2  # run again on the newer data
    assert manifest(s3_server, prefix).generation == 3
    third = City.open(s3_home(tmp_path, "c", prefix))
    assert transport_rows(third) == base + 30 + 20


def test_a_writer_killed_around_the_manifest_leaves_one_generation_and_a_rerun_converges(
    tmp_path,
    s3_server,  # noqa: F811
    published,
):
    home = s3_home(tmp_path, "a", published)
    other = City.open(s3_home(tmp_path, "b", published))
    base = transport_rows(other)
    export = transport_export(other, tmp_path / "t.csv", rows=25)
    command = ("ingest", str(export), "--domain", "transport")

    # killed with its objects uploaded, the manifest not written: the old generation everywhere
    assert run_cli(home, *command, kill_at="remote.uploaded").returncode == -9
    assert manifest(s3_server, published).generation == 1
    assert transport_rows(other) == base
    assert transport_rows(City.open(home)) == base  # its own copy: the journal's files pending

    # killed again once the manifest is written, before its own index switched: the other
    # instances have the new generation; the re-run finds its rows present and only switches
    killed = run_cli(home, *command, kill_at="remote.published")
    assert killed.returncode == -9
    assert manifest(s3_server, published).generation == 2
    assert transport_rows(other) == base + 25
    again = run_cli(home, *command, "--json")
    assert again.returncode == 0, again.stderr
    result = json.loads(again.stdout)
    assert (result["accepted"], result["already_present"]) == (0, 25)
    assert manifest(s3_server, published).generation == 2  # nothing new to publish
    assert transport_rows(City.open(home)) == base + 25


# --- what the operator sees ----------------------------------------------------------------


def test_status_and_pull_on_the_command_line(tmp_path, published):
    prefix = published
    other = s3_home(tmp_path, "b", prefix)
    runner = CliRunner()
    pulled = runner.invoke(app, ["--home", str(other), "data", "pull"])
    assert pulled.exit_code == 0, pulled.output
    assert f"bucket generation 1: fetched {1 + 8} file(s)" in pulled.stdout
    status = runner.invoke(app, ["--home", str(other), "data", "status", "--json"])
    body = json.loads(status.stdout)
    assert body["object_store"]["location"] == f"s3://creditcert-test/{prefix}"
    assert body["object_store"]["applied_generation"] == 1
    assert body["object_store"]["bucket_generation"] == 1
    local = runner.invoke(app, ["--home", str(new_home(tmp_path / "l")), "data", "pull"])
    assert local.exit_code == 2 and "nothing to pull" in local.stderr


def one_line_error(home: Path, *args: str, **env: str) -> str:
    result = CliRunner().invoke(app, ["--home", str(home), *args], env=env)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_store_failures_are_one_clear_line(tmp_path, s3_server, prefix):  # noqa: F811
    home = s3_home(tmp_path, "a", prefix)
    wrong = one_line_error(home, "data", "pull", AWS_SECRET_ACCESS_KEY="not-the-secret")
    assert f"s3://creditcert-test/{prefix}/manifest.json" in wrong
    assert s3_server.endpoint in wrong and "access refused (SignatureDoesNotMatch)" in wrong
    assert s3_server.secret_key not in wrong and "not-the-secret" not in wrong

    nobucket = s3_home(tmp_path, "b", prefix, bucket="no-such-bucket-here")
    assert "no such bucket" in one_line_error(nobucket, "lookup", "--all", "91210102MA0000001G")

    from .s3_server import _free_ports

    down = f"http://127.0.0.1:{_free_ports(1)[0]}"
    line = one_line_error(home, "data", "pull", AWS_ENDPOINT_URL=down)
    assert down in line and "cannot reach the object store" in line

    empty = one_line_error(home, "data", "pull")
    assert "the bucket holds no datasets yet" in empty


def test_an_instance_that_has_data_keeps_answering_when_the_store_is_down(tmp_path, published):
    home = s3_home(tmp_path, "a", published)
    rows = transport_rows(City.open(home))
    from .s3_server import _free_ports

    path = home / "creditcert.toml"
    down = f'endpoint = "http://127.0.0.1:{_free_ports(1)[0]}"\n'
    path.write_text(path.read_text().replace("refresh_seconds", down + "refresh_seconds"))
    assert transport_rows(City.open(home)) == rows  # logged, answered from the local copy
    with pytest.raises(DataError, match="cannot reach the object store"):
        City.open(home).pull_data()


# --- hostile manifests and objects ---------------------------------------------------------


def hostile(raw: dict, change) -> bytes:
    raw = json.loads(json.dumps(raw))
    out = change(raw)
    return out if isinstance(out, bytes) else json.dumps(raw).encode()


TRANSPORT = "records/transport.parquet"
HOSTILE = {
    "too-large": (lambda m: b" " * (MAX_BYTES + 1), "larger than"),
    "not-json": (lambda m: b"{not json", "not JSON"),
    "other-format": (lambda m: m.update(format="creditcert.data-manifest/9"), "format is"),
    "key-outside-prefix": (
        lambda m: m["files"][TRANSPORT].update(key="../../other-city/objects/x.parquet"),
        "expected 'objects/records/transport/",
    ),
    "path-outside-data-dir": (
        lambda m: m["files"].update({"../../keys/root.parquet": m["files"][TRANSPORT]}),
        "is not a file of a data directory",
    ),
    "size-unbounded": (
        lambda m: m["files"][TRANSPORT].update(size=1 << 50),
        "above the bound",
    ),
    "no-register": (lambda m: m["files"].pop("subjects.parquet"), "names no subject register"),
    "generation-zero": (lambda m: m.update(generation=0), "generation must be"),
}


def test_hostile_manifests_and_objects_are_refused(tmp_path, s3_server, published):  # noqa: F811
    prefix = published
    raw = json.loads(manifest(s3_server, prefix).to_bytes())
    assert raw["format"] == FORMAT
    client = s3_server.client()
    for name, (change, message) in HOSTILE.items():
        target = f"{prefix}-{name}"
        client.put_object(
            Bucket=s3_server.bucket, Key=f"{target}/manifest.json", Body=hostile(raw, change)
        )
        city = City.open(s3_home(tmp_path, name, target))
        with pytest.raises(DataError) as refused:
            city.pull_data()
        text = str(refused.value)
        assert f"s3://creditcert-test/{target}/manifest.json" in text, name
        assert "refused manifest" in text and message in text, (name, text)
        assert not list(city.settings.data_dir.rglob("*.parquet")), name  # nothing taken in

    # an object replaced behind the manifest's back: its SHA-256 no longer matches
    entry = raw["files"][TRANSPORT]
    client.put_object(
        Bucket=s3_server.bucket, Key=f"{prefix}/{entry['key']}", Body=b"x" * entry["size"]
    )
    city = City.open(s3_home(tmp_path, "tampered", prefix))
    with pytest.raises(DataError, match="content differs from the manifest's SHA-256"):
        city.pull_data()
    assert not (city.settings.data_dir / TRANSPORT).exists()
