"""A verification in the few plain lines a reviewer reads (the OpenCerts way): not tampered, who
issued it, valid and not revoked, and for partners the domains we recognise. Each line is green,
red or grey, from the checks whose step ids start with its prefixes (docs/verify.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from creditcert.errors import Reason as R
from creditcert.verify.result import Check, Status, Verdict, Verification


@dataclass(frozen=True, slots=True)
class Line:
    state: str  # "ok" (green), "bad" (red), "unknown" (grey)
    zh: str
    en: str
    detail: str  # the message of the check that decided the colour (technical, English)
    why_zh: str = ""  # what it means, in plain words (for a red or grey line)
    why_en: str = ""


# (step prefixes, Chinese, English) per line; the issuer line's text names the issuer.
_LINES = [
    (("format.", "integrity."), ("文件未被篡改", "Not tampered with")),
    (("issuer.",), None),
    (("validity.", "status."), ("在有效期内、未撤销", "Valid and not revoked")),
    (("scope.", "agreement."), ("互认领域", "Recognised domains")),
]


def plain_lines(result: Verification, *, own_code: str, issuer_name: tuple[str, str]) -> list[Line]:
    """The lines for `result`; a line none of whose checks ran is left out."""
    lines = []
    for prefixes, words in _LINES:
        checks = [c for c in result.checks if c.step.startswith(prefixes)]
        if not checks:
            continue
        decided = _deciding(checks)
        if words is None:  # the issuer line names the city
            zh_name, en_name = issuer_name
            partner = _issuer_code(result) not in (None, own_code)
            words = (
                f"由{zh_name}签发" + ("（互认城市）" if partner else ""),
                f"Issued by {en_name}" + (" (a recognised partner city)" if partner else ""),
            )
        if prefixes[0] == "scope.":
            words = _recognised(checks) or words
        why = (
            PLAIN.get(decided.reason, ("", "")) if decided.status is not Status.PASSED else ("", "")
        )
        if decided.reason is R.PARTNER_UNAVAILABLE:
            why = _stale_partner(decided.message) or why
        lines.append(Line(_state(decided), *words, decided.message, *why))
    return lines


def _stale_partner(message: str) -> tuple[str, str] | None:
    """The partner an unusable bundle belongs to, and since when it has been stale (its expiry,
    else the first failed sync), from the check's message (creditcert/trust/store.py)."""
    code = re.search(r"partner (\d{6})", message)
    if code is None:
        return None
    since = re.search(r"stale since ([^;]+)", message) or re.search(
        r"sync failing since ([^ ;]+)", message
    )
    zh = f"无法取得互认城市 {code[1]} 的有效信任数据"
    en = f"No usable trust data for partner city {code[1]}"
    if since:
        zh, en = f"{zh}（自 {since[1]} 起未能更新）", f"{en} (stale since {since[1]})"
    return f"{zh}，请联系信用中心", f"{en}: ask the credit centre"


def _recognised(checks: list[Check]) -> tuple[str, str] | None:
    """互认 N / M 个领域, from the scope.domains check of a partner's report."""
    for c in checks:
        found = re.match(r"(\d+) of (\d+) domains recognised", c.message)
        if c.step == "scope.domains" and found:
            n, m = found.groups()
            return f"互认 {n} / {m} 个领域", f"{n} of {m} domains recognised"
    return None


def _deciding(checks: list[Check]) -> Check:
    """The first failed check, else the first undecided one, else the last passed."""
    for status in (Status.FAILED, Status.INDETERMINATE):
        for c in checks:
            if c.status is status:
                return c
    passed = [c for c in checks if c.status is Status.PASSED]
    return passed[-1] if passed else checks[-1]


def _state(check: Check) -> str:
    return {Status.PASSED: "ok", Status.FAILED: "bad"}.get(check.status, "unknown")


def _issuer_code(result: Verification) -> str | None:
    if result.document is not None:
        return result.document.issuer_code
    return result.number[:6] if result.number else None


VERDICT_WORDS = {
    Verdict.ACCEPTED: ("报告真实有效", "Authentic and valid"),
    Verdict.ACCEPTED_FOR_SOME_DOMAINS: (
        "报告真实有效（部分领域互认）",
        "Authentic and valid for the recognised domains",
    ),
    Verdict.REJECTED: ("报告无效或被篡改", "Not valid: forged, altered, expired or revoked"),
    Verdict.CANNOT_DECIDE: ("无法判断", "Cannot decide"),
}


_UNREADABLE = (
    "无法读取：不是完整的报告、照片或二维码内容",
    "Cannot be read: not a whole report, photo or QR text",
)
_ALTERED = (
    "签名与内容不符：报告在签发后被改动，或并非由此签发",
    "The signature does not match: altered after issue, or not issued this way",
)
_KEY = (
    "签名密钥不被认可：不是本中心或互认城市的有效签章",
    "The signing key is not recognised: not a valid seal of this centre or a partner city",
)
_PARTNER = (
    "无法取得互认城市的有效信任数据，请联系信用中心",
    "No usable trust data for the partner city: ask the credit centre",
)
_NOT_ISSUED = (
    "该编号的报告未完成签发，不存在有效报告",
    "This number's report was never completed: no valid report exists",
)

# What each reason means to a reviewer, in plain words (every reason but `ok`; a test checks).
PLAIN: dict[R, tuple[str, str]] = {
    **dict.fromkeys(
        [
            R.TOO_LONG,
            R.TOO_LARGE,
            R.BAD_PREFIX,
            R.BAD_BASE45,
            R.BAD_DIGITS,
            R.BAD_DIGIT_COUNT,
            R.DIGIT_CHUNK_OVERFLOW,
            R.BAD_ZLIB,
            R.BAD_CBOR,
            R.NOT_COSE_SIGN1,
            R.BAD_COSE_STRUCTURE,
            R.BAD_PROTECTED_HEADER,
            R.UNSUPPORTED_ALGORITHM,
            R.KID_NOT_PROTECTED,
            R.BAD_CLAIMS,
            R.BAD_DOCUMENT,
            R.NOT_PDF,
            R.BAD_PDF,
            R.NO_ENVELOPE,
            R.BAD_ENVELOPE,
            R.NOT_AN_IMAGE,
            R.IMAGE_TOO_LARGE,
            R.MALFORMED,
            R.BAD_CONTENT,
        ],
        _UNREADABLE,
    ),
    **dict.fromkeys(
        [
            R.BAD_SIGNATURE,
            R.SIGNATURE_COUNT,
            R.PADES_INVALID,
            R.SIGNER_MISMATCH,
            R.QR_PAGES_DIFFER,
            R.QR_ENVELOPE_MISMATCH,
            R.DIGEST_MISMATCH,
            R.ENCRYPTED,
        ],
        _ALTERED,
    ),
    **dict.fromkeys(
        [
            R.UNKNOWN_KEY,
            R.NOT_ISSUED_BY_ROOT,
            R.KEY_NOT_VALID_AT_ISSUE,
            R.ISSUER_MISMATCH,
            R.KEY_UNUSABLE,
            R.PIN_MISMATCH,
        ],
        _KEY,
    ),
    **dict.fromkeys(
        [
            R.PARTNER_UNAVAILABLE,
            R.CATALOG_MISMATCH,
            R.BAD_CATALOG,
            R.NOT_VALID_NOW,
            R.STALE_SEQUENCE,
            R.REFUSED,
        ],
        _PARTNER,
    ),
    **dict.fromkeys([R.NOT_COMPLETED, R.VOIDED], _NOT_ISSUED),
    R.NO_QR: ("照片中未识别到二维码", "No QR code could be read in the photo"),
    R.SEVERAL_QR: ("照片中有多个不同的二维码", "The photo shows several different QR codes"),
    R.BAD_NUMBER: (
        "不是有效的报告编号（格式或校验位不符）",
        "Not a report number (its shape or check character is wrong)",
    ),
    R.OTHER_ISSUER: (
        "该编号属于其他城市，请向出具城市核验",
        "The number belongs to another city: verify it there",
    ),
    R.STATUS_UNREACHABLE: (
        "暂时无法向出具城市查询该编号，请核验 PDF 或二维码",
        "The issuing city cannot be asked about this number now: verify the PDF or QR code",
    ),
    R.EXPIRED: ("报告已过有效期", "The report's validity has ended"),
    R.NOT_YET_VALID: ("报告的签发时间晚于核验时间", "The report was issued after the time checked"),
    R.UNKNOWN_NUMBER: (
        "出具机构的登记簿中没有该报告",
        "The issuer's registry holds no such report",
    ),
    R.REVOKED: ("报告已被出具机构撤销", "The issuer has revoked the report"),
    R.NO_REGISTRY: ("无法查询报告状态", "The report's status cannot be looked up here"),
    R.NO_AGREEMENT: (
        "与出具城市尚无互认协议",
        "No mutual-recognition agreement with the issuing city",
    ),
    R.NOT_LIVE_AT_ISSUE: (
        "报告签发时互认协议尚未生效",
        "The agreement was not in force when it was issued",
    ),
    R.AGREEMENT_ENDED: ("互认协议已终止", "The mutual-recognition agreement has ended"),
    R.NO_DOMAIN_RECOGNISED: (
        "互认协议不涵盖该报告的任何领域",
        "The agreement covers none of the report's domains",
    ),
    R.KEY_RETIRED: (
        "签发时该签章密钥已停用",
        "The key had been retired before the report's issue time",
    ),
    R.KEY_COMPROMISED: (
        "签章密钥已报告泄露，此后签发的报告无效",
        "The key was reported compromised before the issue time",
    ),
    # a partner's remote application (shown to the enterprise that applied at the partner)
    R.BAD_APPLICATION: ("申请格式不完整", "The application is not complete"),
    R.NOT_FROM_A_PARTNER: ("申请并非来自互认城市", "The application does not come from a partner"),
    R.SENDER_MISMATCH: (
        "申请所称城市与签名城市不符",
        "The application names another city than its signer",
    ),
    R.NOT_ADDRESSED_TO_US: (
        "申请的受理城市不是本市",
        "The application is addressed to another city",
    ),
    R.OUTSIDE_TIME_WINDOW: (
        "申请已超时，请重新提交",
        "The application is too old or from the future: send it again",
    ),
    R.DOMAIN_NOT_AGREED: (
        "所选领域不在两市互认协议之内",
        "A chosen domain is outside the agreement",
    ),
    R.REPLAYED: ("该申请已受理过，不能重复提交", "This application was received before"),
}
