"""The row rules of ingest as one DuckDB query over a batch of cells, for the rows it can vouch for.

A row is *plain* when every cell is in the form departments export (ASCII digits, a code already
normalised, no blanks around a value, a known vocabulary term, a date like 2025-06-30 or
2025年6月30日, an amount like 12.5) and it passes every rule of creditcert.data.ingest.validate_row;
the query gives such a row's record, computed in SQL. Every other row, bad or good in an unusual
spelling (full-width digits, a blank around a term, 1,000.00 ...), goes to validate_row itself,
which gives its exact record or reasons. So the query may leave a good row to Python but never
accepts a row Python refuses nor gives another record (tests/test_ingest_speed_paths.py).

The SQL text holds only our own constants (vocabulary, code tables, column names c0, c1, …);
the domain, default kind and today are bound parameters.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from creditcert.data.batches import Chunk, re2_of, stripped
from creditcert.data.exports import FREE_TEXT, MAX_CELL_CHARS
from creditcert.data.text import HIDDEN, HIDDEN_IN_TEXT
from creditcert.rules import codes
from creditcert.rules.vocab import KIND_BY_ZH, PENALTY_BY_ZH, TIER_BY_ZH, Kind, PenaltyType, Tier

TEXT = ("subject_name", "decision_no", "authority", "source_unit", "facts")
OPTIONAL_TEXT = ("legal_basis", "penalty_content")
_DATE = (
    "^(?:([1-9][0-9]{3})[-/.年]([0-9]{1,2})[-/.月]([0-9]{1,2})日?"
    "(?:[ T]([0-9]{1,2}):([0-9]{2})(?::([0-9]{2})(?:\\.[0-9]{1,6})?)?)?"
    "|([1-9][0-9]{3})([0-9]{2})([0-9]{2}))$"
)
_DATE_GROUPS = "['y', 'm', 'd', 'h', 'mi', 's', 'y2', 'm2', 'd2']"
_PLAIN_BOOL = "[0-9A-Za-z是否]*"  # ASCII: lower() is Python's
_TRUE = ("是", "true", "1", "y", "yes")  # as ingest._TRUE / _FALSE
_FALSE = ("否", "false", "0", "n", "no", "")
_CODE = f"[{codes.ALPHABET}]{{{codes.LENGTH}}}"


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _in(values) -> str:
    return "(" + ", ".join(_lit(v) for v in values) + ")"


def _case(expr: str, mapping: dict[str, str]) -> str:
    whens = " ".join(f"WHEN {_lit(k)} THEN {_lit(v)}" for k, v in mapping.items())
    return f"CASE {expr} {whens} END"


def _vocab(by_zh: dict, enum) -> dict[str, str]:
    """ingest._enum's accepted spellings: the Chinese term, else the code itself."""
    return {**{zh: v.value for zh, v in by_zh.items()}, **{v.value: v.value for v in enum}}


# GB 32100 values of the code alphabet's ASCII bytes (255: not in the alphabet) and GB 11714
# values of digits and letters (int(c, 36)).
_CODE_VALUE = np.full(256, 255, np.int64)
_CODE_VALUE[np.frombuffer(codes.ALPHABET.encode(), np.uint8)] = np.arange(len(codes.ALPHABET))
_ORG_VALUE = np.full(256, 0, np.int64)
_ORG_VALUE[ord("0") : ord("9") + 1] = np.arange(10)
_ORG_VALUE[ord("A") : ord("Z") + 1] = np.arange(10, 36)


def checksums(cells: pa.Array) -> np.ndarray:
    """Whether each cell is a code of the alphabet whose GB 32100 and GB 11714 check characters
    both hold (codes.validate finds no checksum problem), as a mask; False for any other cell."""
    ok = np.zeros(len(cells), bool)
    if not len(cells):
        return ok
    offsets = np.frombuffer(cells.buffers()[1], np.int32)[
        cells.offset : cells.offset + len(cells) + 1
    ]
    rows = np.flatnonzero(np.diff(offsets) == codes.LENGTH)
    if not len(rows):
        return ok
    data = np.frombuffer(cells.buffers()[2], np.uint8)
    chars = data[offsets[rows][:, None] + np.arange(codes.LENGTH)]
    values = _CODE_VALUE[chars]
    in_alphabet = (values != 255).all(axis=1)
    total = values[:, :17] @ np.array(codes.CHECK_WEIGHTS) + values[:, 17]
    org = (11 - (_ORG_VALUE[chars[:, 8:16]] @ np.array(codes.ORG_WEIGHTS)) % 11) % 11
    org_char = np.where(org == 10, ord("X"), ord("0") + org)
    ok[rows] = in_alphabet & (total % 31 == 0) & (chars[:, 16] == org_char)
    return ok


def _date_parts(f: str) -> str:
    return f"regexp_extract({f}, '{_DATE}', {_DATE_GROUPS})"


def _date(s: str) -> str:
    """SQL: the date of a plain date cell (its _date_parts `s`), NULL for any other."""
    time_ok = (
        f"coalesce(try_cast({s}.h AS INT), 0) < 24 AND coalesce(try_cast({s}.mi AS INT), 0) < 60 "
        f"AND coalesce(try_cast({s}.s AS INT), 0) < 60"
    )
    return (
        f"CASE WHEN {s}.y <> '' AND {time_ok} "
        f"THEN try_cast({s}.y || '-' || {s}.m || '-' || {s}.d AS DATE) "
        f"WHEN {s}.y2 <> '' THEN try_cast({s}.y2 || '-' || {s}.m2 || '-' || {s}.d2 AS DATE) END"
    )


def _bool(f: str) -> str:
    truth = {t: "true" for t in _TRUE} | {t: "false" for t in _FALSE}
    whens = " ".join(f"WHEN {_lit(k)} THEN {v}" for k, v in truth.items())
    return f"CASE WHEN regexp_full_match({f}, '{_PLAIN_BOOL}') THEN CASE lower({f}) {whens} END END"


# The UTF-8 bytes that begin every character of text.HIDDEN (1), or may (2: E2 80 8B-8F, A8-AE
# and E2 81 xx; 3: EF BB xx and EF BF xx); other characters share some of them (· ′ are rarer in
# exports than a regex over all text is slow). A cell with none of them needs no regex
# (tests/test_ingest_speed_paths.py checks every hidden character is caught).
_SUSPECT = np.zeros(256, np.uint8)
_SUSPECT[[*range(0x20), 0x7F, 0xC2, 0xD8, 0xDB, 0xDC, 0xE0, 0xE1, 0xF0, 0xF3]] = 1
_SUSPECT[0xE2], _SUSPECT[0xEF] = 2, 3
_SUSPECT_IN_TEXT = _SUSPECT.copy()
_SUSPECT_IN_TEXT[[0x09, 0x0A, 0x0D]] = 0  # tab and line breaks are free text's own


def _suspect_bytes(b: np.ndarray, free_text: bool) -> np.ndarray:
    """Positions in UTF-8 text `b` where a hidden character may start."""
    kind = (_SUSPECT_IN_TEXT if free_text else _SUSPECT)[b]
    found = np.flatnonzero(kind)
    kind = kind[found]
    second, third = (
        np.where(found + k < len(b), b[np.minimum(found + k, len(b) - 1)], 0) for k in (1, 2)
    )
    in_2000 = ((third >= 0x8B) & (third <= 0x8F)) | ((third >= 0xA8) & (third <= 0xAE))
    return found[
        (kind == 1)
        | ((kind == 2) & (((second == 0x80) & in_2000) | (second == 0x81)))
        | ((kind == 3) & ((second == 0xBB) | (second == 0xBF)))
    ]


def hidden(cells: pa.Array, field: str) -> np.ndarray:
    """exports.check_cells' hidden-character test of every cell of a field (as a mask): the
    regex only for cells holding a suspect byte."""
    free_text = field in FREE_TEXT
    mask = np.zeros(len(cells), bool)
    if not len(cells):
        return mask
    offsets = np.frombuffer(cells.buffers()[1], np.int32)[
        cells.offset : cells.offset + len(cells) + 1
    ]
    if offsets[-1] == offsets[0]:
        return mask
    data = np.frombuffer(cells.buffers()[2], np.uint8)[offsets[0] : offsets[-1]]
    found = _suspect_bytes(data, free_text) + offsets[0]
    suspects = np.unique(np.searchsorted(offsets, found, side="right") - 1)
    if len(suspects):
        pattern = re2_of(HIDDEN_IN_TEXT if free_text else HIDDEN)
        taken = pc.match_substring_regex(cells.take(pa.array(suspects)), pattern)
        mask[suspects] = taken.to_numpy(zero_copy_only=False)
    return mask


def prepare(chunk: Chunk, fields: list[str | None]) -> pa.Table:
    """What `query` reads: each mapped field's cell stripped (s_<field>), whether every cell
    passes exports.check_cells (cells_ok), whether the code's checksums hold (code_checksums),
    row_no and blank."""
    mapped = {f: i for i, f in enumerate(fields) if f}  # a repeated field: the last column
    ok = np.ones(chunk.cells.num_rows, bool)
    columns, names = [], []
    for field, i in mapped.items():
        cells = chunk.cells.column(i).combine_chunks()
        ok &= pc.less_equal(pc.utf8_length(cells), MAX_CELL_CHARS).to_numpy(zero_copy_only=False)
        ok &= ~hidden(cells, field)
        columns.append(stripped(cells))
        names.append(f"s_{field}")
    code = columns[names.index("s_credit_code")] if "credit_code" in mapped else pa.array([])
    first = chunk.first
    columns += [
        pa.array(ok),
        pa.array(checksums(code) if len(code) else np.zeros(chunk.cells.num_rows, bool)),
        pa.array(range(first, first + chunk.cells.num_rows), pa.int64()),
        chunk.blank,
    ]
    return pa.table(columns, names=[*names, "cells_ok", "code_checksums", "row_no", "blank"])


def query(fields: list[str | None]) -> str:
    """SQL over `chunk` (`prepare`'s table): every non-blank row with `plain` and, for plain
    rows, the record's columns, `row_no` and `legacy_code`. Parameters: $domain,
    $default_kind, $today."""
    mapped = {f for f in fields if f}
    v = lambda f: f"s_{f}" if f in mapped else "''"  # noqa: E731
    penalty = _vocab(PENALTY_BY_ZH, PenaltyType)
    serious = _in([PenaltyType.LICENSE_REVOCATION, PenaltyType.CLOSURE, PenaltyType.DETENTION])
    mild = _in([PenaltyType.WARNING, PenaltyType.CRITICISM])
    code = v("credit_code")
    first = [
        "cells_ok",
        *(f"{v(f)} <> ''" for f in TEXT),
        f"regexp_full_match({code}, '{_CODE}')",
        f"substr({code}, 1, 2) IN {_in(a + e for a, types in codes.ENTITY_TYPES.items() for e in types)}",
        f"substr({code}, 3, 2) IN {_in(sorted(codes.PROVINCE_PREFIXES))}",
        f"regexp_full_match(substr({code}, 3, 6), '[0-9]{{6}}')",
        f"len(list_filter(parts, lambda x: x NOT IN {_in(penalty)})) = 0",
    ]
    fine = (
        f"CASE WHEN {v('fine_wan')} <> '' THEN CASE WHEN regexp_full_match({v('fine_wan')}, "
        f"'[0-9]{{1,8}}(\\.[0-9]{{1,6}})?') THEN CAST(try_cast({v('fine_wan')} AS DECIMAL(18, 6)) "
        "* 10000 AS DECIMAL(14, 2)) END "
        f"WHEN {v('fine_yuan')} <> '' THEN CASE WHEN regexp_full_match({v('fine_yuan')}, "
        f"'[0-9]{{1,12}}(\\.[0-9]{{1,2}})?') THEN try_cast({v('fine_yuan')} AS DECIMAL(14, 2)) END "
        "END"
    )
    digest = f"$domain || ':' || substr(sha256($domain || '|' || {code} || '|' || {v('decision_no')}), 1, 24)"
    return f"""
WITH a AS (
  SELECT row_no, {" AND ".join(first)} AS plain_cells,
    {code} AS credit_code,
    {", ".join(f"{v(f)} AS {f}" for f in (*TEXT, *OPTIONAL_TEXT))},
    CASE WHEN {v("kind")} = '' THEN $default_kind ELSE {_case(v("kind"), _vocab(KIND_BY_ZH, Kind))} END AS kind,
    {", ".join(f"{_bool(v(f))} AS {f}" for f in ("simplified", "revoked", "disputed"))},
    {_date_parts(v("decision_date"))} AS decided_parts,
    {_date_parts(v("publicity_end"))} AS publicity_parts, {v("publicity_end")} = '' AS no_publicity_end,
    {_date_parts(v("repair_date"))} AS repair_parts, {v("repair_date")} = '' AS no_repair_date,
    list_transform(parts, lambda x: {_case("x", penalty)}) AS listed,
    {fine} AS fine_amount, {v("fine_wan")} = '' AND {v("fine_yuan")} = '' AS no_fine,
    {v("tier")} AS tier_text, {_case(v("tier"), _vocab(TIER_BY_ZH, Tier))} AS given_tier,
    CASE WHEN {v("record_id")} = '' THEN {digest} ELSE {v("record_id")} END AS record_id,
    NOT code_checksums AS legacy_code
  FROM (SELECT *, list_filter(string_split_regex({v("penalty_types")}, '[;；、,，/|]+'),
      lambda x: x <> '') AS parts
    FROM chunk WHERE NOT blank)
), b AS (
  SELECT *, list_filter(listed, lambda x, i: list_position(listed, x) = i) AS penalty_types,
    {_date("decided_parts")} AS decision_date, {_date("publicity_parts")} AS publicity_end,
    {_date("repair_parts")} AS repair_date
  FROM a
)
SELECT record_id, credit_code, subject_name, $domain AS domain, kind,
  CASE WHEN tier_text <> '' THEN given_tier
    WHEN kind IN ('serious-dishonesty', 'criminal') THEN 'serious'
    WHEN simplified OR (len(penalty_types) > 0
      AND len(list_filter(penalty_types, lambda x: x NOT IN {mild})) = 0) THEN 'minor'
    WHEN list_has_any(penalty_types, [{serious[1:-1]}]) OR coalesce(fine_amount >= 200000, false)
      THEN 'serious'
    ELSE 'general' END AS tier,
  simplified, decision_no, authority, source_unit, decision_date, penalty_types,
  penalty_content, fine_amount, facts, legal_basis, publicity_end, repair_date, revoked, disputed,
  row_no, legacy_code,
  coalesce(plain_cells AND kind IS NOT NULL AND simplified IS NOT NULL AND revoked IS NOT NULL
    AND disputed IS NOT NULL
    AND decision_date BETWEEN DATE '1990-01-01' AND $today
    AND (no_publicity_end OR publicity_end IS NOT NULL)
    AND (no_repair_date OR repair_date IS NOT NULL)
    AND NOT (kind = 'penalty' AND len(penalty_types) = 0)
    AND (no_fine OR fine_amount IS NOT NULL)
    AND NOT (list_contains(penalty_types, 'fine') AND fine_amount IS NULL)
    AND (tier_text = '' OR given_tier IS NOT NULL), false) AS plain
FROM b
"""
