"""The plain lines of the verify page, from checks (no server needed)."""

from creditcert.errors import Reason
from creditcert.service.present import plain_lines
from creditcert.verify.result import Checklist


def lines_of(checklist: Checklist, number: str = "230700-2611-ABCDEFGH-J"):
    result = checklist.result(number=number)
    return [
        (line.state, line.zh, line.en)
        for line in plain_lines(result, own_code="210100", issuer_name=("伊春市", "Yichun"))
    ]


def test_a_partner_report_recognised_for_some_domains():
    cl = Checklist()
    cl.ok("format.qr-text", "read")
    cl.ok("integrity.signature", "valid")
    cl.ok("issuer.chain.qr", "a signing key of 230700")
    cl.ok("validity.period", "valid")
    cl.ok("agreement.live", "agreement runs")
    cl.partial = True
    cl.ok("scope.domains", "3 of 5 domains recognised; not covered: a, b")
    assert lines_of(cl) == [
        ("ok", "文件未被篡改", "Not tampered with"),
        ("ok", "由伊春市签发（互认城市）", "Issued by Yichun (a recognised partner city)"),
        ("ok", "在有效期内、未撤销", "Valid and not revoked"),
        ("ok", "互认 3 / 5 个领域", "3 of 5 domains recognised"),
    ]


def test_each_line_takes_the_colour_of_its_worst_check_and_lines_without_checks_are_left_out():
    cl = Checklist()
    cl.ok("format.pdf", "parsed")
    cl.fail("integrity.pades", Reason.PADES_INVALID, "the signature does not cover the file")
    cl.undecided("status.registry", Reason.NO_REGISTRY, "no registry")
    cl.ok("validity.period", "valid")
    lines = plain_lines(
        cl.result(number="210100-2611-ABCDEFGH-J"),
        own_code="210100",
        issuer_name=("沈阳市", "Shenyang"),
    )
    assert [(line.state, line.detail) for line in lines] == [
        ("bad", "the signature does not cover the file"),
        ("unknown", "no registry"),
    ]


def test_every_reason_but_ok_has_plain_words_in_both_languages():
    from creditcert.service.present import PLAIN

    assert set(Reason) - set(PLAIN) == {Reason.OK}
    assert all(zh and en and zh != en for zh, en in PLAIN.values())


def test_a_red_line_says_in_plain_words_what_went_wrong():
    cl = Checklist()
    cl.fail("integrity.pades", Reason.PADES_INVALID, "intact=False, valid=True")
    [line] = plain_lines(
        cl.result(number=None), own_code="210100", issuer_name=("沈阳市", "Shenyang")
    )
    assert line.why_zh.startswith("签名与内容不符") and "altered" in line.why_en
    assert line.detail == "intact=False, valid=True"  # the checklist keeps the technical message


def test_a_stale_partner_is_named_with_since_when_in_plain_words():
    cl = Checklist()
    cl.ok("format.qr-text", "read")
    cl.undecided(
        "issuer.key-known.qr",
        Reason.PARTNER_UNAVAILABLE,
        "kid 5f0c is not a key we can use now; partner 230700: bundle expired: valid "
        "2026-06-01 09:00 to 2026-07-01 09:00; stale since 2026-07-01 09:00; sync failing since "
        "2026-06-28T10:15:00+08:00 (last good sync 2026-06-28T10:10:00+08:00): refused",
    )
    issuer = plain_lines(cl.result(), own_code="210100", issuer_name=("伊春市", "Yichun"))[1]
    assert issuer.state == "unknown"
    assert (
        issuer.why_zh
        == "无法取得互认城市 230700 的有效信任数据（自 2026-07-01 09:00 起未能更新），请联系信用中心"
    )
    assert issuer.why_en == (
        "No usable trust data for partner city 230700 (stale since 2026-07-01 09:00): "
        "ask the credit centre"
    )
    cl = Checklist()
    cl.undecided(
        "issuer.number",
        Reason.PARTNER_UNAVAILABLE,
        "230700-2611-ABCDEFGH-J was issued by partner 230700: stored bundle refused: "
        "bad-signature (x); sync failing since 2026-06-28T10:15:00+08:00 (never synced): y",
    )
    (issuer,) = plain_lines(cl.result(), own_code="210100", issuer_name=("伊春市", "Yichun"))
    assert "(stale since 2026-06-28T10:15:00+08:00)" in issuer.why_en
