"""Writes to a city's data: Parquet files, and the index generations built from them (docs/data.md).

Every writer (ingest, register import, data reindex, sample generate) goes through `writing()`,
under one lock (`.ingest.lock`, which readers never take), in four durable steps:

1. recover: rename into place the files an interrupted writer had committed (its journal), and
   delete temporaries, unpublished generations and spill files of crashed writers;
2. stage: write each new Parquet file complete under a temporary name (fsync), with a fresh
   random id in its key-value metadata;
3. install: record the set in `index/pending.json`, then rename the files into place. From the
   journal on, the set is committed (a later writer finishes the renames); before it, a crash
   leaves only temporaries;
4. publish: build the next index generation beside the published one (from a copy of it,
   replacing only what changed, or whole), switch `index/CURRENT` to it, then delete the
   previous generation and the journal.

A reader (creditcert.data.store) opens the generation CURRENT names and answers from it; a file
whose id is in the journal is newer than that generation, not foreign to it, so readers keep
answering from the previous consistent state while a writer runs and after it crashed. Step 4
also runs when the writer wrote nothing, so a plain re-run of any writer converges.

All values reach SQL as bound parameters; no SQL text is built from user input.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Protocol

import duckdb

from creditcert import files
from creditcert.data.generation import (
    Change,
    ChangedRows,
    Source,
    apply_changes,
    build_full,
    describe,
    indexed,
    parquet_rows,
    read_cutoff,
    row_count,
)
from creditcert.data.staging import bounded, file_metadata, scratch_dir, stage_parquet
from creditcert.data.store import (
    CURRENT_NAME,
    JOURNAL_NAME,
    LEGACY_INDEX,
    LOCK_NAME,
    SUBJECTS_KEY,
    current_generation,
    dataset_path,
    generation_path,
    index_dir,
    read_file_id,
    source_path,
    subjects_path,
)
from creditcert.errors import DataError
from creditcert.rules.catalog import Catalog
from creditcert.stages import reached

__all__ = [
    "Sync",
    "Writer",
    "WriterBusy",
    "read_cutoff",
    "rebuild_index",
    "writing",
]

# Where the crash tests can kill a writer (creditcert.stages), in order: "<command>.<stage>" for
# the files (command: ingest, register, reindex, sample; "installing" only when a writer installs
# more than one file), then the index's. docs/data.md says what a re-run does after each.
FILE_STAGES = ("staged", "journaled", "installing", "installed")
INDEX_STAGES = ("index.built", "index.published")

# A generation patched in place gets less well sorted with each change; once the rows added or
# deleted since it was last built whole pass this share of all records (and COMPACT_MIN), the
# next writer builds it whole again, which is also what `data reindex` does.
COMPACT_SHARE = 0.1
COMPACT_MIN = 50_000


# --- the journal ---------------------------------------------------------------------------


def _journal_path(data_dir: Path) -> Path:
    return index_dir(data_dir) / JOURNAL_NAME


def _read_journal(data_dir: Path) -> list[dict[str, str]]:
    """The journal's entries. It is written atomically, so it cannot be torn; one damaged by
    other means is dropped: the files on disk are what the next generation takes in, and only
    a set committed but not yet renamed is lost (its temporaries are then debris)."""
    path = _journal_path(data_dir)
    try:
        entries = json.loads(path.read_bytes())["files"]
        if all(isinstance(e, dict) and {"key", "path", "staged", "id"} <= set(e) for e in entries):
            return entries
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError):
        pass
    path.unlink(missing_ok=True)
    return []


def _inside(data_dir: Path, relative: str) -> Path:
    path = (data_dir / relative).resolve()
    if not path.is_relative_to(data_dir.resolve()):
        raise DataError(
            f"{_journal_path(data_dir)}: names a file outside {data_dir}; delete the journal "
            "and run `creditcert data reindex`"
        )
    return path


def recover(data_dir: Path) -> list[Path]:
    """Finish an interrupted writer's committed renames and delete every writer's leftovers.
    Called with the writer lock held; returns what was deleted."""
    moved: set[Path] = set()
    for entry in _read_journal(data_dir):
        staged = _inside(data_dir, entry["staged"])
        if staged.exists():
            target = _inside(data_dir, entry["path"])
            os.replace(staged, target)
            moved.add(target.parent)
    for directory in moved:
        files.fsync_dir(directory)
    removed = files.remove_debris(data_dir) + files.remove_debris(data_dir / "records")
    idx = index_dir(data_dir)
    try:
        current = current_generation(data_dir)
    except DataError:
        current = None
    keep = {CURRENT_NAME, JOURNAL_NAME}
    if current is not None:
        keep.add(generation_path(data_dir, current).name)
    if idx.is_dir():
        for path in idx.iterdir():
            if path.name not in keep and path.is_file():
                path.unlink(missing_ok=True)
                removed.append(path)
    shutil.rmtree(scratch_dir(data_dir), ignore_errors=True)
    return removed


# --- the writer ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Staged:
    source: Source
    tmp: Path
    replaces: str | None  # id of the file it replaces
    rows: ChangedRows | None  # the rows new or changed against that file, when the caller knows


class WriterBusy(DataError):
    """Another writer holds the data directory's lock (raised only when asked not to wait)."""


class Sync(Protocol):
    """A data directory that is the working copy of datasets kept elsewhere (an object store:
    creditcert.data.remote). A writer brings the copy up to date before its caller writes, and
    makes the result the copy of record before the index that readers see is switched."""

    def pull(self, writer: Writer) -> None:
        """Take in the newer versions of record (`Writer.adopt`, then `Writer.install`)."""

    def push(self, writer: Writer) -> None:
        """Make the files now in place the versions of record, or raise (nothing is indexed)."""


@contextmanager
def _locked(data_dir: Path, *, wait: bool = True) -> Iterator[None]:
    """The writers' lock: one writer at a time per data directory; readers never take it."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise DataError(
            f"{data_dir / LOCK_NAME}: cannot take the writers' lock ({exc.strerror})"
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise WriterBusy(f"{data_dir}: another writer is running") from None
        yield
    finally:
        os.close(fd)


class Writer:
    """One writer's run, inside `writing()`: stage files, then (at the end) install and publish."""

    def __init__(
        self,
        data_dir: Path,
        catalog: Catalog,
        command: str,
        rebuild: bool,
        sync: Sync | None = None,
    ):
        self.data_dir = data_dir
        self.catalog = catalog
        self.command = command
        self.rebuild = rebuild
        self.sync = sync
        self.generation: int | None = None
        self._staged: dict[str, _Staged] = {}
        self._installed: dict[str, _Staged] = {}
        self.scratch = scratch_dir(data_dir)

    def stage(
        self,
        key: str,
        con: duckdb.DuckDBPyConnection,
        query: str,
        params: Sequence[object] | Mapping[str, object],
        *,
        data_cutoff: datetime | None,
        changed_rows: ChangedRows | None = None,
    ) -> int:
        """Write the new version of a dataset (key: its name) or of the register (SUBJECTS_KEY)
        under a temporary name; it takes the real name when the writer ends. `changed_rows` are
        the rows of the new version that are new or replace one of the same record id (credit
        code, for the register): the index then patches only those. Returns the row count.

        A key that is no catalog dataset (a file kept beside the datasets, say) is installed in
        the same set, atomically with the others, and not indexed."""
        write = partial(stage_parquet, con, query, params)
        return self._stage(key, write, data_cutoff, changed_rows)

    def _stage(
        self,
        key: str,
        write: Callable[[Path, dict[str, str]], int],
        data_cutoff: datetime | None,
        changed_rows: ChangedRows | None,
    ) -> int:
        path = source_path(self.data_dir, key)
        replaces = read_file_id(path) if path.exists() else None
        file_id = secrets.token_hex(16)
        tmp = files.temp_path(path)
        rows = write(tmp, file_metadata(data_cutoff, file_id))
        self._staged[key] = _Staged(Source(key, path, file_id), tmp, replaces, changed_rows)
        return rows

    def adopt(
        self,
        key: str,
        path: Path,
        tmp: Path,
        file_id: str,
        *,
        replaces: str | None = None,
        changed_rows: ChangedRows | None = None,
    ) -> None:
        """Stage a complete file written elsewhere (a download) under its temporary name `tmp`
        (files.temp_path of `path`), keeping the id its metadata carries. `key` is a dataset, the
        register, or another file's path relative to the data directory (never indexed).
        `changed_rows`, as for `stage`, against the file of id `replaces`."""
        self._staged[key] = _Staged(Source(key, path, file_id), tmp, replaces, changed_rows)

    def discard(self) -> None:
        """Delete what was staged and not installed (the writer failed before committing)."""
        for staged in self._staged.values():
            staged.tmp.unlink(missing_ok=True)
        self._staged.clear()

    def install(self) -> None:
        """Commit the staged files as one set (journal), then rename them into place."""
        if not self._staged:
            return
        staged = list(self._staged.values())
        reached(f"{self.command}.{FILE_STAGES[0]}")
        rel = lambda p: p.relative_to(self.data_dir).as_posix()  # noqa: E731
        entries = _read_journal(self.data_dir) + [
            {
                "key": s.source.key,
                "path": rel(s.source.path),
                "staged": rel(s.tmp),
                "id": s.source.file_id,
            }
            for s in staged
        ]
        files.write_atomically(
            _journal_path(self.data_dir),
            json.dumps({"format": "creditcert.data-journal/1", "files": entries}).encode(),
        )
        reached(f"{self.command}.{FILE_STAGES[1]}")
        for i, s in enumerate(staged):
            os.replace(s.tmp, s.source.path)
            if i == 0 and len(staged) > 1:
                reached(f"{self.command}.{FILE_STAGES[2]}")
        for directory in {s.source.path.parent for s in staged}:
            files.fsync_dir(directory)
        self._installed.update(self._staged)
        self._staged.clear()
        reached(f"{self.command}.{FILE_STAGES[3]}")

    def _sources(self) -> tuple[Source, list[Source]]:
        """The register and every catalog dataset on disk, each with its id (files without one,
        written by another tool or an older creditcert, are given one first)."""
        register = subjects_path(self.data_dir)
        if not register.exists():
            raise DataError(f"subject register missing: {register}")
        keys = [SUBJECTS_KEY] + [
            d.dataset
            for d in self.catalog.domains
            if dataset_path(self.data_dir, d.dataset).exists()
        ]
        ids = {k: read_file_id(source_path(self.data_dir, k)) for k in keys}
        unstamped = [k for k in keys if ids[k] is None]
        if unstamped:
            con = bounded(duckdb.connect(), self.scratch)
            try:
                for key in unstamped:
                    self._stamp(con, key)
            finally:
                con.close()
            self.install()
        sources = [
            self._installed[k].source
            if ids[k] is None
            else Source(k, source_path(self.data_dir, k), ids[k])
            for k in keys
        ]
        return sources[0], sources[1:]

    def _stamp(self, con: duckdb.DuckDBPyConnection, key: str) -> None:
        path = source_path(self.data_dir, key)
        describe(con, Source(key, path, ""))
        order = "credit_code" if key == SUBJECTS_KEY else "credit_code, record_id"
        cutoff = read_cutoff(path, required=key != SUBJECTS_KEY)
        try:
            self.stage(
                key,
                con,
                f"SELECT * FROM read_parquet(?) ORDER BY {order}",
                [str(path)],
                data_cutoff=cutoff,
            )
        except duckdb.Error as exc:
            raise DataError(f"{path}: cannot be rewritten with an id ({exc})") from None

    def publish(self) -> int:
        """Install what was staged, then publish a generation holding every file as it now is
        (nothing is built when the published one already does). Returns the generation."""
        self.install()
        subjects, datasets = self._sources()
        if self.sync is not None:
            self.sync.push(self)
        try:
            current = current_generation(self.data_dir)
        except DataError:
            current = None
        state = indexed(generation_path(self.data_dir, current)) if current is not None else None
        on_disk = {s.key: s for s in [subjects, *datasets]}
        changes: list[Change] = []
        estimate = 0
        if state is not None:
            known, records, dirty = state
            for key, source in on_disk.items():
                if known.get(key) == source.file_id:
                    continue
                # the writer's own rows are enough when its file replaced the indexed one
                hint = self._installed.get(key)
                own = (
                    hint is not None
                    and hint.source.file_id == source.file_id
                    and hint.replaces is not None
                    and hint.replaces == known.get(key)
                )
                rows = hint.rows if own and hint is not None else None
                changes.append(Change(source, rows))
                if key != SUBJECTS_KEY:
                    estimate += row_count(rows) if rows is not None else parquet_rows(source.path)
            removed = [k for k in known if k not in on_disk]
            if not changes and not removed and not self.rebuild:
                assert current is not None
                self._finish(current)
                return current
            full = self.rebuild or dirty + estimate > max(COMPACT_MIN, COMPACT_SHARE * records)
        else:
            full, removed = True, []
        new = (current or 0) + 1
        self._build(new, current, full, subjects, datasets, changes, removed)
        reached(INDEX_STAGES[0])
        files.write_atomically(index_dir(self.data_dir) / CURRENT_NAME, f"{new}\n".encode())
        reached(INDEX_STAGES[1])
        self._finish(new)
        return new

    def _build(self, new, current, full, subjects, datasets, changes, removed) -> None:
        target = generation_path(self.data_dir, new)
        tmp = files.temp_path(target)
        wal = tmp.with_name(tmp.name + ".wal")
        tmp.unlink(missing_ok=True)
        try:
            if not full:
                shutil.copyfile(generation_path(self.data_dir, current), tmp)
            con = bounded(duckdb.connect(str(tmp)), self.scratch)
            try:
                if full:
                    build_full(con, subjects, datasets, new)
                else:
                    con.execute("BEGIN").fetchall()
                    apply_changes(con, changes, removed, new)
                    con.execute("COMMIT").fetchall()
                con.execute("CHECKPOINT").fetchall()
            finally:
                con.close()
            if wal.exists() and wal.stat().st_size:  # the rename would leave its changes behind
                raise DataError(f"{tmp}: DuckDB left a write-ahead log after its checkpoint")
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, target)
            files.fsync_dir(target.parent)
        except duckdb.Error as exc:
            raise DataError(
                f"{target}: building the data index failed ({exc}); the previous index still "
                "answers; run the command again or `creditcert data reindex`"
            ) from None
        finally:
            tmp.unlink(missing_ok=True)
            wal.unlink(missing_ok=True)

    def _finish(self, generation: int) -> None:
        """The journal and every other generation are now superseded."""
        self.generation = generation
        _journal_path(self.data_dir).unlink(missing_ok=True)
        keep = generation_path(self.data_dir, generation)
        for path in index_dir(self.data_dir).glob("*.duckdb"):
            if path != keep:
                path.unlink(missing_ok=True)
        for name in (LEGACY_INDEX, LEGACY_INDEX + ".wal"):
            (self.data_dir / name).unlink(missing_ok=True)


@contextmanager
def writing(
    data_dir: Path,
    catalog: Catalog,
    command: str,
    *,
    rebuild: bool = False,
    sync: Sync | None = None,
    wait: bool = True,
) -> Iterator[Writer]:
    """Run one writer: take the lock, recover, let the caller stage files, then install them and
    publish the index. When the caller raises, nothing is installed or published. With `sync`,
    the directory is first brought up to the versions of record, and what the writer installed
    becomes them before the index is published. With `wait=False`, WriterBusy instead of
    waiting for another writer."""
    with _locked(data_dir, wait=wait):
        try:
            recover(data_dir)
        except OSError as exc:
            raise DataError(
                f"{data_dir}: cannot clean up after an earlier writer ({exc})"
            ) from None
        writer = Writer(data_dir, catalog, command, rebuild, sync)
        try:
            try:
                if sync is not None:
                    sync.pull(writer)
                yield writer
            except BaseException:
                writer.discard()
                raise
            try:
                writer.publish()
            except OSError as exc:
                writer.discard()
                raise DataError(
                    f"{data_dir}: cannot write ({exc.strerror}: {exc.filename}); the previous "
                    "data still answers; run the command again once that is fixed"
                ) from None
        finally:
            shutil.rmtree(writer.scratch, ignore_errors=True)


def rebuild_index(data_dir: Path, catalog: Catalog, *, sync: Sync | None = None) -> int:
    """Build the index whole from the register and every domain's Parquet dataset and publish it
    (`creditcert data reindex`); returns the new generation."""
    with writing(data_dir, catalog, "reindex", rebuild=True, sync=sync) as writer:
        pass
    assert writer.generation is not None
    return writer.generation
