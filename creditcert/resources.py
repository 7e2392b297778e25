"""Where the files shipped beside the code live: the repo checkout or the installed wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _shipped(name: str) -> Path:
    for candidate in (_PACKAGE.parent / name, _PACKAGE / "_data" / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"creditcert installation is missing its {name}/ directory")


def default_catalog_path() -> Path:
    return _shipped("domains") / "default.toml"


def ingest_columns_path() -> Path:
    return _shipped("domains") / "ingest-columns.toml"


def templates_dir() -> Path:
    return _shipped("report_templates")
