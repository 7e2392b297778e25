"""The manifest of a city's datasets on object storage: which object is the current version of
the register, of each dataset and of each history file (docs/scale-out.md, "Datasets on object
storage").

Object stores have no rename, so a new version of a file is a new, never overwritten object
whose key carries its file id (`objects/records/<dataset>/<file_id>.parquet`), and the manifest,
written last, is the only object ever replaced: a reader sees the previous generation or the
next one whole. Parsed at the boundary: a manifest that is too large, not this format, or names a
file or key outside the layout is refused here, before anything is downloaded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from creditcert.errors import DataError

FORMAT = "creditcert.data-manifest/1"
MANIFEST_NAME = "manifest.json"
OBJECTS_DIR = "objects"
MAX_BYTES = 1 << 20  # a manifest names ~110 files in ~30 KB; anything near 1 MiB is not ours
MAX_FILES = 2000
MAX_OBJECT_BYTES = 1 << 40  # one Parquet file of a city: far below; a bound on what we download
# The files of a data directory that the bucket holds (docs/data.md): the register, one dataset
# per catalog domain (a slug), the history of each.
_PATH = re.compile(r"^(subjects|(records|history)/[a-z][a-z0-9]*(-[a-z0-9]+)*)\.parquet$")
_FILE_ID = re.compile(r"^[0-9a-f]{32}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ENTRY_KEYS = {"key", "id", "size", "sha256", "rows"}


def object_key(path: str, file_id: str) -> str:
    """The key (under the prefix) of one version of a file: new for every version."""
    return f"{OBJECTS_DIR}/{path.removesuffix('.parquet')}/{file_id}.parquet"


@dataclass(frozen=True, slots=True)
class Entry:
    """One file of the generation: its path in a data directory and the object holding it."""

    path: str  # relative to the data directory, e.g. records/taxation.parquet
    file_id: str  # the creditcert.file_id in the Parquet file's metadata
    size: int
    sha256: str
    rows: int

    @property
    def key(self) -> str:
        return object_key(self.path, self.file_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "id": self.file_id,
            "size": self.size,
            "sha256": self.sha256,
            "rows": self.rows,
        }


@dataclass(frozen=True, slots=True)
class Manifest:
    generation: int  # 1 for the first; each publication adds one
    published_at: str  # RFC 3339, informative
    files: Mapping[str, Entry] = field(default_factory=dict)

    @classmethod
    def from_bytes(cls, data: bytes, *, where: str) -> Manifest:
        """Parse and check a manifest fetched from `where` (named in every refusal)."""

        def bad(why: str) -> DataError:
            return DataError(f"{where}: refused manifest: {why}")

        if len(data) > MAX_BYTES:
            raise bad(f"larger than {MAX_BYTES} bytes")
        try:
            raw = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise bad("not JSON") from None
        if not isinstance(raw, dict):
            raise bad("not a JSON object")
        if raw.get("format") != FORMAT:
            raise bad(f"format is {str(raw.get('format'))[:60]!r}, expected {FORMAT!r}")
        generation, published, files = (
            raw.get("generation"),
            raw.get("published_at"),
            raw.get("files"),
        )
        if isinstance(generation, bool) or not isinstance(generation, int) or generation < 1:
            raise bad("generation must be a positive integer")
        if not isinstance(published, str) or len(published) > 64:
            raise bad("published_at must be a time")
        if not isinstance(files, dict) or len(files) > MAX_FILES:
            raise bad(f"files must be an object of at most {MAX_FILES} entries")
        entries = {}
        for path, value in files.items():
            entries[path] = _entry(path, value, bad)
        if "subjects.parquet" not in entries:
            raise bad("names no subject register (subjects.parquet)")
        return cls(generation, published, entries)

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "format": FORMAT,
                "generation": self.generation,
                "published_at": self.published_at,
                "files": {p: e.to_json() for p, e in sorted(self.files.items())},
            },
            indent=1,
        ).encode()


def _entry(path: str, value: Any, bad) -> Entry:
    if not _PATH.match(path):
        raise bad(f"{path[:80]!r} is not a file of a data directory")
    if not isinstance(value, dict) or set(value) != _ENTRY_KEYS:
        raise bad(f"{path}: must have exactly {', '.join(sorted(_ENTRY_KEYS))}")
    file_id, size, digest, rows = value["id"], value["size"], value["sha256"], value["rows"]
    if not isinstance(file_id, str) or not _FILE_ID.match(file_id):
        raise bad(f"{path}: id must be 32 hex digits")
    for name, number in (("size", size), ("rows", rows)):
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise bad(f"{path}: {name} must be an integer ≥ 0")
    if size > MAX_OBJECT_BYTES:
        raise bad(f"{path}: size {size} is above the bound of {MAX_OBJECT_BYTES} bytes")
    if not isinstance(digest, str) or not _SHA256.match(digest):
        raise bad(f"{path}: sha256 must be 64 hex digits")
    entry = Entry(path, file_id, size, digest, rows)
    if value["key"] != entry.key:
        raise bad(f"{path}: key {str(value['key'])[:120]!r}, expected {entry.key!r}")
    return entry
