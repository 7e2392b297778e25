"""Crash-safe file writes: a reader sees the old file or the new one, never a torn one."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomically(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write to a temporary file beside `path`, flush it to disk, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Flush a directory's entries, so that a rename into it survives a power cut."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_path(path: Path) -> Path:
    """The temporary name a writer of `path` uses; it carries the writer's pid so that
    `remove_debris` can tell a crashed writer's leftovers from a running writer's file."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def remove_debris(directory: Path) -> list[Path]:
    """Delete temporary files left in `directory` by writers that are no longer running."""
    removed = []
    try:
        candidates = list(directory.glob(".*.tmp"))
    except OSError:
        return removed
    for tmp in candidates:
        pid = tmp.name.rsplit(".", 2)[-2]
        if not pid.isdigit() or process_running(int(pid)):
            continue
        try:
            tmp.unlink()
        except FileNotFoundError:
            continue
        removed.append(tmp)
    return removed


def process_running(pid: int) -> bool:
    """Whether a process of that id runs on this machine (a pid can be reused: a false yes
    only keeps a leftover a little longer). A zombie — dead, waiting for a parent that may never
    reap it, as orphans do under a container's init — is not running."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except FileNotFoundError:  # gone since, unless this system has no /proc
        return not Path("/proc/self/stat").exists()
    except OSError:
        return True
    state = stat[stat.rfind(b")") + 2 :][:1]  # the field after "(command name)"
    return state != b"Z"
