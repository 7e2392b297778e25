"""Deterministic sample data for a city: a subject register and every domain's dataset.

Generation is vectorised: subjects with numpy (creditcert.data.sample_register), records in DuckDB
SQL over `range(n)` with hash-derived pseudo-random columns: one query for all domains (a row of
parameters each, table `domain_params`; a query per domain would cost more than its rows), whose
result, ordered by domain, streams into one dataset after another, so memory stays bounded. The same seed, sizes and as-of date give the same rows (for a given
DuckDB version); each file's id (docs/data.md) is new every time. The register and all datasets
are published as one set, like any writer's (creditcert.data.index): readers see the old city or
the new one, never a mix.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from creditcert.config import Issuer
from creditcert.data.index import Sync, writing
from creditcert.data.sample_register import generate_codes, register
from creditcert.data.schema import RECORD_COLUMNS, select_list
from creditcert.data.staging import bounded
from creditcert.data.store import SUBJECTS_KEY, subjects_path
from creditcert.model.clock import SHANGHAI
from creditcert.rules import codes
from creditcert.rules.catalog import Catalog

__all__ = ["SampleSummary", "default_as_of", "export_department_file", "generate", "generate_codes"]

# Relative record frequency per domain; domains not listed weigh 1.
DOMAIN_WEIGHTS = {
    "market-regulation": 40,
    "taxation": 26,
    "transport": 24,
    "ecology-environment": 16,
    "urban-management": 12,
    "work-safety": 10,
    "fire-safety": 8,
    "housing-construction": 8,
    "social-security": 6,
    "health": 6,
    "public-security": 5,
    "culture-tourism": 4,
    "drug-regulation": 4,
    "natural-resources": 4,
    "agriculture": 3,
    "medical-insurance": 3,
}

_FACTS = [
    "未按规定公示年度报告",
    "超出核准登记的经营范围从事经营活动",
    "未按期办理纳税申报和报送纳税资料",
    "违反规定排放大气污染物",
    "未落实安全生产主体责任",
    "消防设施、器材未保持完好有效",
    "车辆超限超载运输",
    "未取得施工许可证擅自施工",
    "销售不符合食品安全标准的食品",
    "未按规定为职工缴纳社会保险费",
    "占用城市道路从事经营活动",
    "未按规定建立安全生产教育培训档案",
    "发布虚假违法广告",
    "未依法履行环境影响评价程序",
    "违规处置建筑垃圾",
    "无证经营",
]
# (facts, law) typical of a domain; other domains draw from the generic lists.
_DOMAIN_FACTS: dict[str, tuple[list[str], str]] = {
    "market-regulation": (
        [
            "超出核准登记的经营范围从事经营活动",
            "销售不符合食品安全标准的食品",
            "发布虚假违法广告",
            "未按规定公示年度报告",
            "无证经营",
        ],
        "中华人民共和国市场主体登记管理条例",
    ),
    "taxation": (
        ["未按期办理纳税申报和报送纳税资料", "未按规定开具发票", "逃避追缴欠税"],
        "中华人民共和国税收征收管理法",
    ),
    "transport": (
        ["车辆超限超载运输", "未取得道路运输经营许可擅自从事经营", "未按规定进行车辆维护检测"],
        "中华人民共和国道路运输条例",
    ),
    "ecology-environment": (
        ["违反规定排放大气污染物", "未依法履行环境影响评价程序", "未按规定贮存危险废物"],
        "中华人民共和国大气污染防治法",
    ),
    "urban-management": (
        ["占用城市道路从事经营活动", "违规处置建筑垃圾", "擅自设置户外广告"],
        "城市市容和环境卫生管理条例",
    ),
    "work-safety": (
        [
            "未落实安全生产主体责任",
            "未按规定建立安全生产教育培训档案",
            "未如实记录安全生产隐患排查治理情况",
        ],
        "中华人民共和国安全生产法",
    ),
    "fire-safety": (
        ["消防设施、器材未保持完好有效", "占用、堵塞、封闭疏散通道、安全出口"],
        "中华人民共和国消防法",
    ),
    "housing-construction": (
        ["未取得施工许可证擅自施工", "未按照工程建设强制性标准施工"],
        "建设工程质量管理条例",
    ),
    "social-security": (
        ["未按规定为职工缴纳社会保险费", "拖欠劳动者劳动报酬"],
        "中华人民共和国社会保险法",
    ),
    "health": (
        ["未取得卫生许可证从事公共场所经营", "从业人员未取得健康合格证明"],
        "公共场所卫生管理条例",
    ),
}

_LAWS = [
    "中华人民共和国行政处罚法",
    "中华人民共和国安全生产法",
    "中华人民共和国税收征收管理法",
    "中华人民共和国大气污染防治法",
    "中华人民共和国消防法",
    "中华人民共和国食品安全法",
    "中华人民共和国道路运输条例",
    "中华人民共和国广告法",
    "城市市容和环境卫生管理条例",
]

# Penalty combinations for administrative penalties, with weights (per 100).
_PENALTY_MIX = [
    (["warning"], 14),
    (["fine"], 44),
    (["warning", "fine"], 10),
    (["fine", "confiscation"], 10),
    (["criticism"], 5),
    (["fine", "license-suspension"], 5),
    (["fine", "production-suspension"], 4),
    (["license-revocation"], 2),
    (["fine", "qualification-downgrade"], 3),
    (["closure"], 1),
    (["fine", "practice-restriction"], 2),
]
_PENALTY_ZH = {
    "warning": "警告",
    "criticism": "通报批评",
    "confiscation": "没收违法所得",
    "license-suspension": "暂扣许可证",
    "license-revocation": "吊销许可证",
    "qualification-downgrade": "降低资质等级",
    "production-suspension": "责令停产停业",
    "closure": "责令关闭",
    "practice-restriction": "限制从业",
    "detention": "行政拘留",
    "other": "查封、扣押财物",
}


@dataclass(frozen=True, slots=True)
class SampleSummary:
    subjects: int
    records: int
    per_domain: dict[str, int]
    data_dir: Path


def _slots(weighted: list[tuple[object, int]]) -> list[object]:
    """A list where each item appears `weight` times: index it with a uniform integer."""
    return [item for item, weight in weighted for _ in range(weight)]


def generate(
    data_dir: Path,
    catalog: Catalog,
    issuer: Issuer,
    *,
    subjects: int,
    records: int,
    seed: int,
    as_of: date,
    sync: Sync | None = None,
) -> SampleSummary:
    """Write the register and all datasets under data_dir and publish them, with an index built
    whole, as one set (under the writers' lock; with `sync`, to the object store too)."""
    rng = np.random.default_rng(seed)
    cutoff = datetime.combine(as_of, time(2, 0), SHANGHAI)
    subjects_table = register(rng, issuer, subjects, as_of)
    per_domain = {}
    with writing(data_dir, catalog, "sample", rebuild=True, sync=sync) as writer:
        con = bounded(duckdb.connect(), writer.scratch)
        try:
            con.register("register_src", subjects_table)
            writer.stage(
                SUBJECTS_KEY,
                con,
                "SELECT * FROM register_src ORDER BY credit_code",
                [],
                data_cutoff=cutoff,
            )
            dirty = _offenders(con, seed)
            weights = np.array(
                [DOMAIN_WEIGHTS.get(d.code, 1) for d in catalog.domains], dtype=float
            )
            counts = np.floor(records * weights / weights.sum()).astype(int)
            counts[0] += records - counts.sum()  # keep the exact total
            city_short = issuer.name[:1]
            _register_domains(
                con,
                [
                    _domain_params(domain, issuer, city_short, n, seed)
                    for n, domain in zip(counts.tolist(), catalog.domains, strict=True)
                ],
            )
            params = _record_params(dirty, as_of)
            for first, last in _chunks(counts.tolist(), CHUNK_RECORDS):
                con.execute(
                    f"CREATE OR REPLACE TEMP TABLE generated AS {_RECORDS_SQL}",
                    {**params, "first": first, "last": last},
                )
                for dx in range(first, last + 1):
                    domain = catalog.domains[dx]
                    per_domain[domain.code] = writer.stage(
                        domain.dataset, con, _DOMAIN_RECORDS_SQL, {"dx": dx}, data_cutoff=cutoff
                    )
        finally:
            con.close()
    return SampleSummary(subjects, sum(per_domain.values()), per_domain, data_dir)


# Records are generated a run of domains at a time into a table, then each domain is written from
# it. One query per domain would take 20 ms each to plan (a second for 52 domains, most of the
# time for a test city); one table of all 10 M records spills, and 52 scans of it read it back
# 52 times (2 M records: 56 s in all, against 28 s in runs of domains).
CHUNK_RECORDS = 500_000


def _chunks(counts: list[int], limit: int) -> Iterator[tuple[int, int]]:
    """Runs of consecutive domain numbers (first, last) of at most `limit` records together, or
    of one domain that alone has more."""
    first, total = 0, 0
    for dx, n in enumerate(counts):
        if dx > first and total + n > limit:
            yield first, dx - 1
            first, total = dx, 0
        total += n
    if counts:
        yield first, len(counts) - 1


def _offenders(con: duckdb.DuckDBPyConnection, seed: int) -> int:
    """Pick the subjects records fall on (table `dirty`) from the view `register_src`.

    Most subjects are clean: records fall on about a sixth of them, and half of all records on
    the first fifth of those (the repeat offenders).
    """
    con.execute(
        "CREATE TEMP TABLE dirty AS SELECT row_number() OVER (ORDER BY credit_code) - 1 AS ix, "
        "credit_code, name FROM register_src WHERE hash(credit_code, ?) % 6 = 0",
        [seed],
    ).fetchall()
    return con.execute("SELECT count(*) FROM dirty").fetchall()[0][0]


def _domain_params(
    domain, issuer: Issuer, city_short: str, n: int, seed: int, *, penalties_only: bool = False
) -> dict[str, object]:
    """A domain's row of `domain_params`: what its records are drawn from."""
    kinds = [("penalty", 88), ("enforcement", 6), ("serious-dishonesty", 2)]
    if domain.code == "market-regulation":
        kinds.append(("abnormal-operation", 8))
    if domain.code == "public-security":
        kinds.append(("criminal", 3))
    if penalties_only:
        kinds = [("penalty", 1)]
    return {
        "p_n": n,
        "p_salt": f"{seed}:{domain.code}",
        "p_domain": domain.code,
        "p_kind_slots": _slots(kinds),
        "p_facts": _DOMAIN_FACTS[domain.code][0] if domain.code in _DOMAIN_FACTS else _FACTS,
        "p_laws": [_DOMAIN_FACTS[domain.code][1]] if domain.code in _DOMAIN_FACTS else _LAWS,
        "p_authority": f"{issuer.name}{domain.department.split('/')[0].strip()}",
        "p_decision_prefix": f"{city_short}{domain.abbr}",
        "p_id_prefix": f"{issuer.admin_code}-{domain.code}-",
    }


_DOMAIN_SCHEMA = pa.schema(
    [("p_dx", pa.int64()), ("p_n", pa.int64()), ("p_salt", pa.string())]
    + [("p_domain", pa.string()), ("p_kind_slots", pa.list_(pa.string()))]
    + [("p_facts", pa.list_(pa.string())), ("p_laws", pa.list_(pa.string()))]
    + [(name, pa.string()) for name in ("p_authority", "p_decision_prefix", "p_id_prefix")]
)


def _register_domains(con: duckdb.DuckDBPyConnection, rows: list[dict[str, object]]) -> None:
    """Table `domain_params`: the domains' rows, numbered (p_dx) in the given order."""
    table = pa.Table.from_pylist(
        [{"p_dx": dx, **row} for dx, row in enumerate(rows)], schema=_DOMAIN_SCHEMA
    )
    con.register("domain_params", table)


def _record_params(dirty: int, as_of: date, *, serial_base: int = 0) -> dict[str, object]:
    """The parameters all domains' records share."""
    return {
        "serial_base": serial_base,
        "dirty": dirty,
        "as_of": as_of,
        "days": 6 * 365,
        "penalty_slots": _slots(_PENALTY_MIX),
        "penalty_codes": list(_PENALTY_ZH),
        "penalty_zh": list(_PENALTY_ZH.values()),
    }


# u(k): the k-th uniform in [0, 1) for row i, derived from a hash so any row is reproducible alone.
# Each domain's parameters (p_*) come from its row of `domain_params`, the rest are bound ($).
_U = "((hash(i, p_salt, {k}) % 1000000007) / 1000000007.0)"
_RECORDS_SQL = f"""
WITH base AS (
    SELECT p.*, i,
        {_U.format(k=1)} AS u_subject, {_U.format(k=2)} AS u_date, {_U.format(k=3)} AS u_kind,
        {_U.format(k=4)} AS u_pen, {_U.format(k=5)} AS u_fine, {_U.format(k=6)} AS u_simple,
        {_U.format(k=7)} AS u_repair, {_U.format(k=8)} AS u_flag, {_U.format(k=9)} AS u_text,
        {_U.format(k=10)} AS u_pub
    FROM domain_params p, range(p.p_n) t(i)
    WHERE p.p_dx BETWEEN $first AND $last
), shaped AS (
    SELECT b.*,
        CAST(floor(CASE WHEN u_subject < 0.5 THEN u_subject * 2 * $dirty / 5
                        ELSE (u_subject - 0.5) * 2 * $dirty END) AS BIGINT) AS subject_ix,
        CAST($as_of AS DATE) - CAST(floor(u_date * $days) AS INTEGER) AS decision_date,
        p_kind_slots[1 + CAST(floor(u_kind * len(p_kind_slots)) AS INTEGER)] AS kind,
        u_simple < 0.15 AS simple_pick
    FROM base b
), typed AS (
    SELECT s.*,
        CASE WHEN kind <> 'penalty' THEN []::VARCHAR[]
             WHEN simple_pick THEN CASE WHEN u_pen < 0.5 THEN ['warning'] ELSE ['fine'] END
             ELSE $penalty_slots[1 + CAST(floor(u_pen * len($penalty_slots)) AS INTEGER)]
        END AS penalty_types,
        kind = 'penalty' AND simple_pick AS simplified
    FROM shaped s
), fined AS (
    SELECT t.*,
        CASE WHEN NOT list_contains(penalty_types, 'fine') THEN NULL
             WHEN simplified THEN round(50 + u_fine * 150)
             WHEN u_fine < 0.4 THEN round((50 + u_fine * 4000) / 10) * 10
             WHEN u_fine < 0.9 THEN round((2000 + (u_fine - 0.4) * 96000) / 100) * 100
             ELSE round((50000 + (u_fine - 0.9) * 9500000) / 1000) * 1000
        END AS fine
    FROM typed t
), tiered AS (
    SELECT f.*,
        CASE WHEN kind IN ('serious-dishonesty', 'criminal') THEN 'serious'
             WHEN simplified OR (len(penalty_types) > 0 AND list_has_all(['warning', 'criticism'], penalty_types)) THEN 'minor'
             WHEN list_has_any(penalty_types, ['license-revocation', 'closure', 'detention'])
                  OR fine >= 200000 THEN 'serious'
             ELSE 'general'
        END AS tier
    FROM fined f
)
SELECT {select_list(RECORD_COLUMNS)}, dx FROM (
    SELECT
        p_id_prefix || lpad(CAST(i AS VARCHAR), 9, '0') AS record_id,
        d.credit_code,
        d.name AS subject_name,
        p_domain AS domain,
        kind,
        tier,
        simplified,
        p_decision_prefix || CASE kind WHEN 'penalty' THEN '罚' WHEN 'enforcement' THEN '强' ELSE '决' END
            || '〔' || year(decision_date) || '〕'
            || CASE WHEN $serial_base > 0 THEN $serial_base + i ELSE 1 + hash(i, p_salt, 20) % 4000 END
            || '号' AS decision_no,
        p_authority AS authority,
        p_authority AS source_unit,
        decision_date,
        penalty_types,
        CASE kind
            WHEN 'penalty' THEN array_to_string(list_transform(penalty_types, lambda p:
                CASE WHEN p = 'fine' THEN '罚款人民币' || CAST(CAST(fine AS BIGINT) AS VARCHAR) || '元'
                     ELSE $penalty_zh[list_position($penalty_codes, p)] END), '；')
            WHEN 'enforcement' THEN '查封、扣押场所、设施或者财物'
            WHEN 'serious-dishonesty' THEN '列入严重失信主体名单'
            WHEN 'abnormal-operation' THEN '列入经营异常名录'
            ELSE '判处罚金'
        END AS penalty_content,
        fine AS fine_amount,
        CASE kind WHEN 'abnormal-operation' THEN '通过登记的住所或者经营场所无法联系'
                  ELSE p_facts[1 + CAST(floor(u_text * len(p_facts)) AS INTEGER)] END AS facts,
        '《' || p_laws[1 + CAST(floor(u_pub * len(p_laws)) AS INTEGER)] || '》第'
            || (10 + hash(i, p_salt, 21) % 90) || '条' AS legal_basis,
        CASE tier WHEN 'minor' THEN NULL
                  WHEN 'general' THEN decision_date + CAST(90 + floor(u_pub * 275) AS INTEGER)
                  ELSE decision_date + CAST(365 + floor(u_pub * 730) AS INTEGER) END AS publicity_end,
        CASE WHEN u_repair < 0.2 AND kind NOT IN ('criminal')
             AND decision_date + CAST(90 + floor(u_repair * 3000) AS INTEGER) <= CAST($as_of AS DATE)
             THEN decision_date + CAST(90 + floor(u_repair * 3000) AS INTEGER) END AS repair_date,
        u_flag < 0.02 AS revoked,
        u_flag BETWEEN 0.02 AND 0.03 AS disputed,
        p_dx AS dx
    FROM tiered JOIN dirty d ON d.ix = tiered.subject_ix
)
"""
# One domain's records (`dx`: its p_dx) as its dataset holds them.
_DOMAIN_RECORDS_SQL = (
    "SELECT * EXCLUDE (dx) FROM generated WHERE dx = $dx ORDER BY credit_code, record_id"
)


def default_as_of(now: datetime) -> date:
    """Sample data is current as of yesterday in Shanghai, so today's reports see all of it."""
    return (now.astimezone(SHANGHAI) - timedelta(days=1)).date()


# Columns of a department's 双公示 penalty export, as ingest's column map knows them.
EXPORT_HEADER = [
    "行政相对人名称",
    "统一社会信用代码",
    "行政处罚决定书文号",
    "违法事实",
    "处罚依据",
    "处罚类别",
    "处罚内容",
    "罚款金额（万元）",
    "处罚决定日期",
    "公示截止期",
    "处罚机关",
    "数据来源单位",
    "是否简易程序",
]
_EXPORT_SQL = f"""
SELECT subject_name, credit_code, decision_no, facts, legal_basis,
    array_to_string(list_transform(penalty_types, lambda p: CASE WHEN p = 'fine' THEN '罚款'
        ELSE $penalty_zh[list_position($penalty_codes, p)] END), ';'),
    penalty_content, CAST(fine_amount / 10000 AS VARCHAR), CAST(decision_date AS VARCHAR),
    coalesce(CAST(publicity_end AS VARCHAR), ''), authority, source_unit,
    CASE WHEN simplified THEN '是' ELSE '否' END
FROM ({_RECORDS_SQL})
ORDER BY credit_code, record_id
"""

# Faults a real export contains; bad rows cycle through them (ingest must quarantine each).
FAULTS = (
    "check-character",
    "unregistered",
    "no-decision-number",
    "bad-date",
    "unknown-penalty",
    "negative-fine",
    "duplicate",
    "future-date",
)


def export_department_file(
    data_dir: Path,
    catalog: Catalog,
    issuer: Issuer,
    *,
    domain_code: str,
    rows: int,
    bad_rows: int,
    seed: int,
    as_of: date,
    path: Path,
    encoding: str = "utf-8",
) -> int:
    """Write a department's penalty export (CSV or .xlsx) of new records for registered subjects,
    with `bad_rows` of them spoiled by the FAULTS above. Returns the number of data rows."""
    domain = catalog.domain(domain_code)
    con = duckdb.connect()
    con.register("register_src", con.read_parquet(str(subjects_path(data_dir))).to_arrow_table())
    dirty = _offenders(con, seed)
    params = _domain_params(domain, issuer, issuer.name[:1], rows, seed + 1, penalties_only=True)
    _register_domains(con, [{**params, "p_id_prefix": "export-"}])
    sql_params = {**_record_params(dirty, as_of, serial_base=100_000), "first": 0, "last": 0}
    body = [list(r) for r in con.sql(_EXPORT_SQL, params=sql_params).fetchall()]
    con.close()
    step = max(1, len(body) // max(1, bad_rows))
    for k in range(min(bad_rows, len(body))):
        _spoil(body, k * step, FAULTS[k % len(FAULTS)])
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".xlsx":
        import openpyxl

        book = openpyxl.Workbook(write_only=True)
        sheet = book.create_sheet("行政处罚")
        sheet.append(EXPORT_HEADER)
        for row in body:
            sheet.append(row)
        book.save(path)
    else:
        import csv

        with open(path, "w", encoding=encoding, newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(EXPORT_HEADER)
            writer.writerows(body)
    return len(body)


def _spoil(body: list[list], i: int, fault: str) -> None:
    row = body[i]
    code = row[1]
    if fault == "check-character":
        row[1] = code[:17] + ("0" if code[17] != "0" else "1")
    elif fault == "unregistered":
        first17 = "91110101" + code[8:17]
        row[1] = first17 + codes.check_character(first17)
    elif fault == "no-decision-number":
        row[2] = ""
    elif fault == "bad-date":
        row[8] = "2025-13-45"
    elif fault == "unknown-penalty":
        row[5] = "罚酒三杯"
    elif fault == "negative-fine":
        row[5], row[7] = "罚款", "-0.5"
    elif fault == "duplicate" and i > 0:
        body[i] = list(body[i - 1])
    elif fault == "future-date":
        row[8] = "2099-01-01"
