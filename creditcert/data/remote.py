"""A data directory that is one instance's working copy of datasets on object storage
(docs/scale-out.md, "Datasets on object storage").

The bucket holds the datasets of record: immutable Parquet objects, and a manifest naming the
current one of each (creditcert.data.manifest). Each instance keeps a local data directory with
exactly the layout of docs/data.md, so the index, its generations and every writer work on it
unchanged; `Mirror` is what makes that directory a copy of the bucket, as the `Sync` of each
writer (creditcert.data.index.writing):

- pull, under the writers' lock before the caller writes: fetch the manifest (a conditional GET
  on the ETag last applied), download each object whose file id differs from the local file's,
  and install them as one set; the writer then publishes a local index generation, so readers on
  this instance switch from the old state to the new one whole, never waiting;
- push, once the writer's files are in place and before the local index is switched: upload each
  file that differs from the manifest under a new key, then publish the next manifest with a
  conditional write on the ETag pulled (If-Match; If-None-Match for the first). When another
  instance published first, nothing is published here (ManifestConflict) and the next pull puts
  the bucket's versions back in place of this writer's.

`<data dir>/remote.json` records the manifest last applied and its ETag. `refresh` is the cheap
check a running instance makes, at most every `data.refresh_seconds`, before it answers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from creditcert import files
from creditcert.config import ObjectStore
from creditcert.data.bucket import Bucket, Fetched
from creditcert.data.generation import parquet_rows
from creditcert.data.index import Writer, WriterBusy, writing
from creditcert.data.manifest import Entry, Manifest
from creditcert.data.staging import bounded, stage_parquet
from creditcert.data.store import (
    SUBJECTS_KEY,
    SUBJECTS_NAME,
    current_generation,
    pending_ids,
    read_file_id,
)
from creditcert.errors import DataError
from creditcert.rules.catalog import Catalog
from creditcert.stages import reached

STATE_NAME = "remote.json"
STATE_FORMAT = "creditcert.data-remote/1"
_TRANSFERS = 4  # objects downloaded or uploaded at once
log = logging.getLogger("creditcert.data")


@dataclass(frozen=True, slots=True)
class Pulled:
    """What one refresh did: the bucket's generation now applied here, and what it fetched."""

    generation: int | None  # None: the bucket holds no manifest yet
    files: int
    bytes: int
    index_generation: int | None


@dataclass(frozen=True, slots=True)
class Status:
    location: str
    endpoint: str | None
    applied_generation: int | None  # the bucket's generation this instance's copy holds
    bucket_generation: int | None  # the bucket's generation now (None: no manifest yet)
    published_at: str | None
    problem: str | None  # why the bucket could not be asked (the other bucket fields are None)

    def to_json(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "endpoint": self.endpoint,
            "applied_generation": self.applied_generation,
            "bucket_generation": self.bucket_generation,
            "published_at": self.published_at,
            "problem": self.problem,
        }

    def describe(self) -> str:
        where = f"{self.location} (endpoint {self.endpoint or 'AWS S3'})"
        held = f"this instance holds generation {self.applied_generation}"
        if self.problem is not None:
            return f"{where}: {held}; the bucket cannot be asked: {self.problem}"
        return f"{where}: bucket generation {self.bucket_generation} of {self.published_at}, {held}"


def _relative_key(relative: str) -> str:
    """The writer's key of a file of the data directory (docs/data.md)."""
    if relative == SUBJECTS_NAME:
        return SUBJECTS_KEY
    if relative.startswith("records/"):
        return relative.removeprefix("records/").removesuffix(".parquet")
    return relative  # history files: installed with the set, never indexed


class Mirror:
    """One instance's working copy (`data_dir`) of the datasets in an object store."""

    def __init__(
        self,
        store: ObjectStore,
        data_dir: Path,
        catalog: Catalog,
        *,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.store = store
        self.data_dir = data_dir
        self.catalog = catalog
        self.bucket = Bucket(store)
        self._clock = clock
        self._checked_at: float | None = None
        self._checking = threading.Lock()
        self._run = threading.local()  # per thread: the manifest its running writer pulled
        self.last_pull: Pulled | None = None

    # --- the state of the copy ---------------------------------------------------------------

    @property
    def _state_path(self) -> Path:
        return self.data_dir / STATE_NAME

    def applied(self) -> Fetched:
        """The manifest this copy holds (as last pulled or pushed) and its ETag."""
        try:
            raw = json.loads(self._state_path.read_bytes())
        except FileNotFoundError:
            return Fetched(None, None)
        except (OSError, ValueError):
            return Fetched(None, None)  # pulled again whole: ids decide what is downloaded
        if not isinstance(raw, dict) or raw.get("format") != STATE_FORMAT:
            return Fetched(None, None)
        if raw.get("location") != self.store.location:
            raise DataError(
                f"{self.data_dir} is the working copy of {raw.get('location')}, not of "
                f"{self.store.location}: point data.cache at another directory"
            )
        manifest = raw.get("manifest")
        if manifest is None:
            return Fetched(None, None)
        parsed = Manifest.from_bytes(json.dumps(manifest).encode(), where=str(self._state_path))
        return Fetched(parsed, raw.get("etag"))

    def _record(self, fetched: Fetched) -> None:
        body = {
            "format": STATE_FORMAT,
            "location": self.store.location,
            "etag": fetched.etag,
            "manifest": json.loads(fetched.manifest.to_bytes()) if fetched.manifest else None,
        }
        files.write_atomically(self._state_path, json.dumps(body, indent=1).encode())

    # --- Sync: pull --------------------------------------------------------------------------

    def pull(self, writer: Writer) -> None:
        """Bring the copy's files to the bucket's generation and install them as one set."""
        held = self.applied()
        fetched = self.bucket.fetch_manifest(unless_etag=held.etag if held.manifest else None)
        if fetched is None:  # unchanged since applied
            fetched = held
        self._run.base = fetched
        manifest = fetched.manifest
        if manifest is None:
            self.last_pull = Pulled(None, 0, 0, None)
            return
        if held.manifest is not None and manifest.generation < held.manifest.generation:
            raise DataError(
                f"{self.bucket.where('manifest.json')}: generation {manifest.generation} is "
                f"older than the {held.manifest.generation} this instance holds (was the bucket "
                f"restored? then delete {self.data_dir} and pull again)"
            )
        wanted = [
            e for e in manifest.files.values() if _local_id(self.data_dir / e.path) != e.file_id
        ]
        self._drop_uncommitted(manifest)
        indexed = {SUBJECTS_KEY} | {d.dataset for d in self.catalog.domains}
        tmps = {e.path: files.temp_path(self.data_dir / e.path) for e in wanted}
        for tmp in tmps.values():
            tmp.parent.mkdir(parents=True, exist_ok=True)
        try:
            with ThreadPoolExecutor(_TRANSFERS) as pool:
                list(pool.map(lambda e: self.bucket.download(e, tmps[e.path]), wanted))
            for e in wanted:
                if read_file_id(tmps[e.path]) != e.file_id:
                    raise DataError(
                        f"{self.bucket.where(e.key)}: its Parquet metadata carries another file "
                        "id than the manifest names; not taken in"
                    )
                path, key = self.data_dir / e.path, _relative_key(e.path)
                old = _local_id(path)
                changed = (
                    _changed_rows(path, tmps[e.path], writer.scratch / f"changed-{key}.parquet")
                    if old and key in indexed
                    else None
                )
                writer.adopt(key, path, tmps[e.path], e.file_id, replaces=old, changed_rows=changed)
        except BaseException:
            for tmp in tmps.values():
                tmp.unlink(missing_ok=True)
            writer.discard()
            raise
        writer.install()
        self._record(fetched)
        self.last_pull = Pulled(manifest.generation, len(wanted), sum(e.size for e in wanted), None)

    def _drop_uncommitted(self, manifest: Manifest) -> None:
        """Files a writer here installed but never published to the bucket (it crashed, or lost
        the race): the bucket has no version of them, so they go. A dataset the local index
        holds stays (a copy made before the bucket was used: the next writer publishes it)."""
        files.remove_debris(self.data_dir / "history")  # downloads a killed pull left
        pending = {i for ids in pending_ids(self.data_dir).values() for i in ids}
        for folder in ("records", "history"):
            for path in sorted((self.data_dir / folder).glob("*.parquet")):
                relative = f"{folder}/{path.name}"
                if relative in manifest.files:
                    continue
                if folder == "history" or _local_id(path) in pending:
                    path.unlink(missing_ok=True)

    # --- Sync: push --------------------------------------------------------------------------

    def push(self, writer: Writer) -> None:
        """Upload what differs from the manifest pulled, then publish the next manifest."""
        base = getattr(self._run, "base", None) or self.applied()
        known = dict(base.manifest.files) if base.manifest else {}
        changed: list[tuple[Path, str]] = []
        for path in self._local_files():
            relative = path.relative_to(self.data_dir).as_posix()
            file_id = _local_id(path)
            if file_id is None:
                continue  # not a file of ours (no id): never published
            if relative not in known or known[relative].file_id != file_id:
                changed.append((path, file_id))
        if not changed and base.manifest is not None:
            return
        entries = [_entry(self.data_dir, path, file_id) for path, file_id in changed]
        with ThreadPoolExecutor(_TRANSFERS) as pool:
            list(pool.map(lambda e: self.bucket.upload(self.data_dir / e.path, e), entries))
        reached("remote.uploaded")
        known.update({e.path: e for e in entries})
        manifest = Manifest(
            generation=(base.manifest.generation if base.manifest else 0) + 1,
            published_at=datetime.now(UTC).isoformat(timespec="seconds"),
            files=known,
        )
        etag = self.bucket.put_manifest(manifest, replaces=base.etag)
        reached("remote.published")
        self._run.base = Fetched(manifest, etag)
        self._record(self._run.base)

    def _local_files(self) -> list[Path]:
        found = [self.data_dir / SUBJECTS_NAME] if (self.data_dir / SUBJECTS_NAME).exists() else []
        for folder in ("records", "history"):
            found += sorted((self.data_dir / folder).glob("*.parquet"))
        return found

    # --- refreshing a running instance -------------------------------------------------------

    def refresh(self, *, force: bool = False) -> Pulled | None:
        """Take in a newer generation of the bucket, if there is one; None when nothing was
        checked or done. Unforced, the bucket is asked at most every refresh_seconds, and a
        pull another process or thread is running is not waited for; once this copy holds any
        index, a bucket that cannot be reached leaves it answering (logged), as it was."""
        has_index = current_generation(self.data_dir) is not None
        if not force and has_index:
            now = self._clock()
            if self._checked_at is not None and now - self._checked_at < self.store.refresh_seconds:
                return None
            if not self._checking.acquire(blocking=False):
                return None
            try:
                self._checked_at = now
                return self._pull_if_newer()
            except DataError as exc:
                log.warning("data not refreshed: %s", exc)
                return None
            finally:
                self._checking.release()
        return self._pull(wait=True)

    def _pull_if_newer(self) -> Pulled | None:
        held = self.applied()
        if held.manifest is not None and self.bucket.fetch_manifest(unless_etag=held.etag) is None:
            return None
        try:
            return self._pull(wait=False)
        except WriterBusy:
            return None  # another writer or pull is running: it publishes what it finds

    def _pull(self, *, wait: bool) -> Pulled:
        try:
            with writing(self.data_dir, self.catalog, "pull", sync=self, wait=wait) as writer:
                pass
        except DataError:
            empty = self.last_pull is not None and self.last_pull.generation is None
            if empty and not (self.data_dir / SUBJECTS_NAME).exists():
                raise DataError(
                    f"{self.bucket.where('manifest.json')}: the bucket holds no datasets yet; "
                    "load them with `creditcert sample generate`, or `creditcert register "
                    "import` and `creditcert ingest`"
                ) from None
            raise
        pulled = self.last_pull or Pulled(None, 0, 0, None)
        return Pulled(pulled.generation, pulled.files, pulled.bytes, writer.generation)

    def status(self) -> Status:
        held = self.applied()
        applied = held.manifest.generation if held.manifest else None
        try:
            now = self.bucket.fetch_manifest()
        except DataError as exc:
            return Status(self.store.location, self.store.endpoint, applied, None, None, str(exc))
        assert now is not None
        manifest = now.manifest
        return Status(
            self.store.location,
            self.store.endpoint,
            applied,
            manifest.generation if manifest else None,
            manifest.published_at if manifest else None,
            None,
        )


def _local_id(path: Path) -> str | None:
    try:
        return read_file_id(path)
    except (FileNotFoundError, DataError):
        return None


def _changed_rows(old: Path, new: Path, out: Path) -> Path | None:
    """The rows of `new` that `old` does not hold as they are (added, or corrected), written to
    `out` in the writer's scratch: the local index then patches only these, as after a local
    ingest, instead of taking in the whole file (which past 50 000 rows means rebuilding the
    whole index). Rows `old` has and `new` lacks are not listed; the index's row count check
    then takes in the whole file."""
    con = bounded(duckdb.connect(), out.parent)
    try:
        stage_parquet(
            con,
            "SELECT * FROM read_parquet(?) EXCEPT ALL SELECT * FROM read_parquet(?)",
            [str(new), str(old)],
            out,
            {},
        )
        return out
    except duckdb.Error:
        return None  # the whole file, then
    finally:
        con.close()


def _entry(data_dir: Path, path: Path, file_id: str) -> Entry:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return Entry(
        path=path.relative_to(data_dir).as_posix(),
        file_id=file_id,
        size=os.path.getsize(path),
        sha256=digest.hexdigest(),
        rows=parquet_rows(path),
    )
