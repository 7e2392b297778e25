"""The fixed vocabulary of credit records: kinds, tiers, penalty types and left-out reasons.

Codes are stable (they are stored in datasets and signed into reports); names are for people.
"""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    """Record kinds a special credit report covers (565号 minimum plus the abnormal list)."""

    PENALTY = "penalty"  # 行政处罚 (incl. simplified procedure)
    ENFORCEMENT = "enforcement"  # 行政强制
    SERIOUS_DISHONESTY = "serious-dishonesty"  # 严重失信主体名单
    CRIMINAL = "criminal"  # 刑事裁判
    ABNORMAL_OPERATION = "abnormal-operation"  # 经营异常名录


class Tier(StrEnum):
    """Decree 36 tiers: minor is generally not publicised."""

    MINOR = "minor"  # 轻微
    GENERAL = "general"  # 一般
    SERIOUS = "serious"  # 严重


class PenaltyType(StrEnum):
    WARNING = "warning"
    CRITICISM = "criticism"
    FINE = "fine"
    CONFISCATION = "confiscation"
    LICENSE_SUSPENSION = "license-suspension"
    LICENSE_REVOCATION = "license-revocation"
    QUALIFICATION_DOWNGRADE = "qualification-downgrade"
    PRODUCTION_SUSPENSION = "production-suspension"
    CLOSURE = "closure"
    PRACTICE_RESTRICTION = "practice-restriction"
    DETENTION = "detention"
    OTHER = "other"


class LeftOut(StrEnum):
    """Why a record of the subject is not in the report, in the order the rules are applied."""

    REVOKED = "revoked"  # decision revoked on review or in court: never appears
    OUTSIDE_PERIOD = "outside-period"  # decided outside the domain's covered period
    KIND_NOT_COUNTED = "kind-not-counted"
    TIER_NOT_COUNTED = "tier-not-counted"
    EXCLUDED_PENALTY_ALONE = "excluded-penalty-alone"  # e.g. a warning alone
    BELOW_FINE_THRESHOLD = "below-fine-threshold"
    PUBLICITY_ENDED = "publicity-ended"  # only where the domain's rules say so
    REPAIRED = "repaired"  # credit repair done and the city's policy is `omit`


KIND_NAMES: dict[Kind, tuple[str, str]] = {
    Kind.PENALTY: ("行政处罚", "Administrative penalty"),
    Kind.ENFORCEMENT: ("行政强制", "Administrative enforcement"),
    Kind.SERIOUS_DISHONESTY: ("严重失信主体名单", "Serious dishonesty list"),
    Kind.CRIMINAL: ("刑事裁判", "Criminal judgment"),
    Kind.ABNORMAL_OPERATION: ("经营异常名录", "Abnormal operation list"),
}

TIER_NAMES: dict[Tier, tuple[str, str]] = {
    Tier.MINOR: ("轻微", "Minor"),
    Tier.GENERAL: ("一般", "General"),
    Tier.SERIOUS: ("严重", "Serious"),
}

PENALTY_NAMES: dict[PenaltyType, tuple[str, str]] = {
    PenaltyType.WARNING: ("警告", "Warning"),
    PenaltyType.CRITICISM: ("通报批评", "Notice of criticism"),
    PenaltyType.FINE: ("罚款", "Fine"),
    PenaltyType.CONFISCATION: ("没收违法所得", "Confiscation of illegal gains"),
    PenaltyType.LICENSE_SUSPENSION: ("暂扣许可证", "Licence suspended"),
    PenaltyType.LICENSE_REVOCATION: ("吊销许可证", "Licence revoked"),
    PenaltyType.QUALIFICATION_DOWNGRADE: ("降低资质等级", "Qualification downgraded"),
    PenaltyType.PRODUCTION_SUSPENSION: ("责令停产停业", "Ordered to suspend production"),
    PenaltyType.CLOSURE: ("责令关闭", "Ordered to close"),
    PenaltyType.PRACTICE_RESTRICTION: ("限制从业", "Restricted from practice"),
    PenaltyType.DETENTION: ("行政拘留", "Administrative detention"),
    PenaltyType.OTHER: ("其他", "Other"),
}

LEFT_OUT_NAMES: dict[LeftOut, tuple[str, str]] = {
    LeftOut.REVOKED: ("已撤销", "revoked on review or in court"),
    LeftOut.OUTSIDE_PERIOD: ("不在报告期内", "outside the period covered"),
    LeftOut.KIND_NOT_COUNTED: ("该类别不计入", "kind not counted in this domain"),
    LeftOut.TIER_NOT_COUNTED: ("该等级不计入", "tier not counted in this domain"),
    LeftOut.EXCLUDED_PENALTY_ALONE: ("仅警告或通报批评", "only a penalty this domain leaves out"),
    LeftOut.BELOW_FINE_THRESHOLD: ("罚款低于计入标准", "fine below this domain's threshold"),
    LeftOut.PUBLICITY_ENDED: ("公示期已满", "publicity period ended"),
    LeftOut.REPAIRED: ("已信用修复", "credit repaired (policy: omit)"),
}

PENALTY_BY_ZH: dict[str, PenaltyType] = {zh: code for code, (zh, _) in PENALTY_NAMES.items()}
PENALTY_BY_ZH.update(
    {
        "吊销许可证件": PenaltyType.LICENSE_REVOCATION,
        "吊销营业执照": PenaltyType.LICENSE_REVOCATION,
        "暂扣许可证件": PenaltyType.LICENSE_SUSPENSION,
        "没收违法所得、没收非法财物": PenaltyType.CONFISCATION,
        "没收非法财物": PenaltyType.CONFISCATION,
        "限制开展生产经营活动": PenaltyType.PRODUCTION_SUSPENSION,
    }
)
KIND_BY_ZH: dict[str, Kind] = {zh: code for code, (zh, _) in KIND_NAMES.items()}
TIER_BY_ZH: dict[str, Tier] = {zh: code for code, (zh, _) in TIER_NAMES.items()}
