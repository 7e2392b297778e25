"""Column layout of the subject register and the per-domain violation datasets (docs/data.md)."""

from __future__ import annotations

import pyarrow as pa

# (name, DuckDB type). Order is the Parquet column order.
RECORD_COLUMNS: tuple[tuple[str, str], ...] = (
    ("record_id", "VARCHAR"),
    ("credit_code", "VARCHAR"),
    ("subject_name", "VARCHAR"),
    ("domain", "VARCHAR"),
    ("kind", "VARCHAR"),
    ("tier", "VARCHAR"),
    ("simplified", "BOOLEAN"),
    ("decision_no", "VARCHAR"),
    ("authority", "VARCHAR"),
    ("source_unit", "VARCHAR"),
    ("decision_date", "DATE"),
    ("penalty_types", "VARCHAR[]"),
    ("penalty_content", "VARCHAR"),
    ("fine_amount", "DECIMAL(14,2)"),  # yuan
    ("facts", "VARCHAR"),
    ("legal_basis", "VARCHAR"),
    ("publicity_end", "DATE"),
    ("repair_date", "DATE"),
    ("revoked", "BOOLEAN"),
    ("disputed", "BOOLEAN"),
)

SUBJECT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("credit_code", "VARCHAR"),
    ("name", "VARCHAR"),
    ("entity_type", "VARCHAR"),  # first two characters of the code, e.g. "91"
    ("admin_division", "VARCHAR"),
    ("registered_on", "DATE"),
    ("status", "VARCHAR"),  # active | cancelled | revoked
)

_ARROW_TYPES = {
    "VARCHAR": pa.string(),
    "BOOLEAN": pa.bool_(),
    "DATE": pa.date32(),
    "VARCHAR[]": pa.list_(pa.string()),
    "DECIMAL(14,2)": pa.decimal128(14, 2),
}
RECORD_ARROW_SCHEMA = pa.schema([(n, _ARROW_TYPES[t]) for n, t in RECORD_COLUMNS])
SUBJECT_ARROW_SCHEMA = pa.schema([(n, _ARROW_TYPES[t]) for n, t in SUBJECT_COLUMNS])
RECORD_NAMES = tuple(name for name, _ in RECORD_COLUMNS)
ROW_GROUP_SIZE = 16_384  # small enough that DuckDB prunes a point lookup to one group per file
CUTOFF_KEY = "creditcert.data_cutoff"  # Parquet key-value metadata: when the data was extracted


def select_list(columns: tuple[tuple[str, str], ...]) -> str:
    """`CAST(col AS type) AS col, ...`: forces any source into the canonical types."""
    return ", ".join(f'CAST("{n}" AS {t}) AS "{n}"' for n, t in columns)


def missing_columns(found: list[str], columns: tuple[tuple[str, str], ...]) -> list[str]:
    have = set(found)
    return [n for n, _ in columns if n not in have]
