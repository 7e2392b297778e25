"""A verification in the few plain lines a reviewer reads (the OpenCerts way): not tampered, who
issued it, valid and not revoked, and for partners the domains we recognise. Each line is green,
red or grey, from the checks whose step ids start with its prefixes (docs/verify.md)."""

from __future__ import annotations

from dataclasses import dataclass

from creditcert.verify.result import Check, Status, Verdict, Verification


@dataclass(frozen=True, slots=True)
class Line:
    state: str  # "ok" (green), "bad" (red), "unknown" (grey)
    zh: str
    en: str
    detail: str  # the message of the check that decided the colour


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
        lines.append(Line(_state(decided), *words, decided.message))
    return lines


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
