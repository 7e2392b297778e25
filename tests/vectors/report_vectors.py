"""Generate the report-format vectors (tests/vectors/report/), DCC test-data style.

    python tests/vectors/report_vectors.py

Each case is one JSON file: the document (JSON), every encoding stage as hex or text (document
CBOR, envelope COSE_Sign1, QR claims CBOR, QR COSE_Sign1, zlib, base45, digits, and both QR
texts: CC1: + base45 and the URL under the context's base URL), a context
(the signer certificate and the root in PEM, the validation clock in RFC 3339 UTC, a description
starting VALID: or INVALID:) and the expected result of each verification step (true must
succeed, false must fail, absent is not tested). `stages` always show the valid encoding of the
document; `qr_text` is what a verifier is handed (spoiled in the INVALID cases). A fresh test PKI is made on each run; ECDSA
signatures are randomised, so regenerating changes signatures but never the rules.
"""

from __future__ import annotations

import base64
import json
import zlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import base45
import cbor2
from cryptography.hazmat.primitives import serialization

from creditcert.envelope import qr as qr_format
from creditcert.envelope import report as report_envelope
from creditcert.issue.render import qr_png
from creditcert.model.clock import SHANGHAI
from creditcert.model.document import DomainSection, Period, RecordEntry, ReportDocument
from creditcert.trust.keys import KeyStore

OUT = Path(__file__).resolve().parent / "report"
ISSUED = datetime(2026, 7, 1, 10, 30, tzinfo=SHANGHAI)
BASE_URL = "https://credit.shenyang.gov.cn"
CATALOG = ("market-regulation", "taxation", "transport")


def document(number: str, kid: bytes, *, name: str = "沈阳恒达建材有限公司") -> ReportDocument:
    cutoff = datetime(2026, 6, 30, 2, 0, tzinfo=SHANGHAI)
    period = Period(date(2023, 7, 2), date(2026, 7, 1))
    record = RecordEntry(
        record_id="market-regulation:1",
        kind="penalty",
        tier="general",
        simplified=False,
        decision_no="沈市监罚〔2025〕7号",
        authority="沈阳市市场监督管理局",
        source_unit="沈阳市市场监督管理局",
        decision_date=date(2025, 3, 1),
        penalty_types=("fine",),
        penalty_content="罚款人民币5000元",
        fine_amount="5000.00",
        facts="超出核准登记的经营范围从事经营活动",
        legal_basis="《中华人民共和国市场主体登记管理条例》第43条",
        publicity_end=date(2026, 3, 1),
        repaired=True,
        repair_date=date(2025, 9, 1),
        disputed=False,
    )
    sections = tuple(
        DomainSection(code, zh, en, dept, period, False, cutoff, recs, left)
        for code, zh, en, dept, recs, left in (
            (
                "market-regulation",
                "市场监管",
                "Market regulation",
                "市场监督管理局",
                (record,),
                (("outside-period", 2),),
            ),
            ("taxation", "税务", "Taxation", "税务局", (), ()),
        )
    )
    return ReportDocument(
        number=number,
        issuer_code="210100",
        issuer_name="沈阳市",
        issuer_name_en="Shenyang",
        key_id=kid.hex(),
        subject_code="91210102MA0P4E8X0T",
        subject_name=name,
        entity_type="91",
        purpose=None,
        purpose_zh=None,
        purpose_en=None,
        domains_requested=("market-regulation", "taxation"),
        requested=period,
        period=period,
        clipped_to_complete_from=False,
        complete_from=date(2020, 9, 1),
        data_cutoff=cutoff,
        issued_at=ISSUED,
        valid_until=ISSUED + timedelta(days=30),
        catalog_id="vector",
        catalog_version="1",
        catalog_digest="sha256:" + "0" * 64,
        repair_policy="show-marked",
        code_warnings=(),
        domains=sections,
    )


def utc(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def case(
    name: str,
    doc: ReportDocument,
    signer,
    root,
    *,
    clock: datetime,
    description: str,
    text: str | None = None,
    expected: dict,
) -> None:
    envelope = report_envelope.seal(doc, signer)
    qr = qr_format.encode(doc, signer, CATALOG)
    cose = qr.cose
    compressed = zlib.compress(cose, 9)
    url = qr_format.text_of(compressed, BASE_URL)
    text = text if text is not None else qr.text
    pem = lambda c: c.public_bytes(serialization.Encoding.PEM).decode()  # noqa: E731
    body = {
        "format": 1,
        "description": description,
        "document": doc.to_data(),
        "stages": {
            "document_cbor": doc.to_cbor().hex(),
            "document_sha256": doc.digest().hex(),
            "envelope_cose": envelope.hex(),
            "qr_claims_cbor": cbor2.loads(cose).value[2].hex(),
            "qr_cose": cose.hex(),
            "qr_zlib": compressed.hex(),
            "qr_base45": qr.text[4:],
            "qr_digits": qr_format.to_digits(compressed),
            "qr_url": url,
            "qr_text": text,
            "qr_png_base64": base64.b64encode(qr_png(text)).decode(),
        },
        "context": {
            "signer_certificate": pem(signer.certificate),
            "root_certificate": pem(root),
            "validation_clock": utc(clock),
            "base_url": BASE_URL,
        },
        "expected": {step: ok for step, ok in expected.items() if ok is not None},
    }
    (OUT / f"{name}.json").write_text(
        json.dumps(body, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )


def main() -> None:
    import tempfile

    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.json"):
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        keys = KeyStore(Path(tmp) / "keys", "210100", "沈阳市")
        keys.init(ISSUED - timedelta(days=1))
        signer = keys.signer(ISSUED)
        root = keys.root()
        ok = {
            "prefix": True,
            "base45_decode": True,
            "decompress": True,
            "verify_signature": True,
            "cbor_decode": True,
            "expiry_check": True,
            "digest_match": True,
        }
        doc = document("210100-2607-TESTTEST-6", signer.kid)
        inside = ISSUED + timedelta(days=1)
        case(
            "valid-records",
            doc,
            signer,
            root,
            clock=inside,
            expected=ok,
            description="VALID: a two-domain report with one repaired record",
        )
        long = document(
            "210100-2607-TESTTEST-6",
            signer.kid,
            name="沈阳恒达国际供应链管理与跨境电子商务综合服务(集团)股份有限公司第一分公司",
        )
        case(
            "valid-long-name",
            long,
            signer,
            root,
            clock=inside,
            expected=ok,
            description="VALID: a long subject name",
        )
        case(
            "invalid-expired",
            doc,
            signer,
            root,
            clock=doc.valid_until,
            expected={**ok, "expiry_check": False},
            description="INVALID: clock equals exp (valid iff iat <= clock < exp)",
        )
        case(
            "invalid-before-iat",
            doc,
            signer,
            root,
            clock=ISSUED - timedelta(seconds=1),
            expected={**ok, "expiry_check": False},
            description="INVALID: clock one second before iat",
        )
        qr = qr_format.encode(doc, signer, CATALOG).text
        case(
            "invalid-prefix",
            doc,
            signer,
            root,
            clock=inside,
            text="HC1:" + qr[4:],
            expected={"prefix": False},
            description="INVALID: wrong prefix HC1:",
        )
        case(
            "invalid-base45",
            doc,
            signer,
            root,
            clock=inside,
            text=qr[:-1] + "a",
            expected={"prefix": True, "base45_decode": False},
            description="INVALID: a character outside the base45 alphabet",
        )
        cose = bytearray(zlib.decompress(base45.b45decode(qr[4:])))
        cose[-1] ^= 1
        bad_sig = "CC1:" + base45.b45encode(zlib.compress(bytes(cose), 9)).decode()
        case(
            "invalid-signature",
            doc,
            signer,
            root,
            clock=inside,
            text=bad_sig,
            expected={
                **ok,
                "verify_signature": False,
                "cbor_decode": None,
                "expiry_check": None,
                "digest_match": None,
            },
            description="INVALID: last byte of the signature flipped",
        )
        bad_zlib = "CC1:" + base45.b45encode(b"\x78\x9c" + bytes(cose[:40])).decode()
        case(
            "invalid-zlib",
            doc,
            signer,
            root,
            clock=inside,
            text=bad_zlib,
            expected={"prefix": True, "base45_decode": True, "decompress": False},
            description="INVALID: not a zlib stream",
        )
        url_cases(doc, signer, root, inside, ok)


def url_cases(doc, signer, root, inside: datetime, ok: dict) -> None:
    """The URL form (docs/report.md §3): what an issuer with a base URL prints, and how its
    digits go wrong."""
    url = qr_format.encode(doc, signer, CATALOG, base_url=BASE_URL).text
    head, _, digits = url.rpartition("/CC1/")
    head += "/CC1/"
    valid = {"prefix": True, "digits_decode": True}
    valid |= {step: v for step, v in ok.items() if step not in ("prefix", "base45_decode")}
    case(
        "valid-url",
        doc,
        signer,
        root,
        clock=inside,
        text=url,
        expected=valid,
        description="VALID: the URL form: upper-case scheme and host, /CC1/, 17 digits per 7 bytes",
    )
    case(
        "valid-url-lower-case-query",
        doc,
        signer,
        root,
        clock=inside,
        text=f"https://credit.shenyang.gov.cn/cc1/{digits}?lang=en#qr",
        expected=valid,
        description="VALID: the URL as a browser shows it: lower case, /cc1/, a query and a "
        "fragment after the digits (both ignored)",
    )
    case(
        "valid-url-other-host",
        doc,
        signer,
        root,
        clock=inside,
        text=f"https://example.invalid/x/CC1/0/CC1/{digits}",
        expected=valid,
        description="VALID: another host and path, /CC1/ twice: the digits after the last one "
        "count, the host is not trusted for anything (the signature decides)",
    )
    fail = {"prefix": True, "digits_decode": False}
    case(
        "invalid-url-prefix",
        doc,
        signer,
        root,
        clock=inside,
        text=head.replace("/CC1/", "/CC2/") + digits,
        expected={"prefix": False},
        description="INVALID: /CC2/ where /CC1/ belongs (and no CC1: at the start)",
    )
    case(
        "invalid-url-digit-count",
        doc,
        signer,
        root,
        clock=inside,
        text=head + digits[:-1],
        expected=fail,
        description=f"INVALID: the last digit dropped: {len(digits) - 1} digits leave "
        f"{(len(digits) - 1) % 17} after the 17-digit chunks, a count no chunk has",
    )
    case(
        "invalid-url-chunk-overflow",
        doc,
        signer,
        root,
        clock=inside,
        text=head + "9" * 17 + digits[17:],
        expected=fail,
        description="INVALID: the first chunk is 99999999999999999, over 2^56 - 1 "
        "(72057594037927935), the most 7 bytes hold",
    )
    middle = len(digits) // 2
    case(
        "invalid-url-non-digit",
        doc,
        signer,
        root,
        clock=inside,
        text=head + digits[:middle] + "O" + digits[middle + 1 :],
        expected=fail,
        description="INVALID: a letter O in place of a digit",
    )
    cut = len(digits) // 2 // 17 * 17
    case(
        "invalid-url-truncated",
        doc,
        signer,
        root,
        clock=inside,
        text=head + digits[:cut],
        expected={"prefix": True, "digits_decode": True, "decompress": False},
        description=f"INVALID: cut after {cut} digits ({cut // 17} whole chunks): they decode, "
        "but to half a zlib stream",
    )


if __name__ == "__main__":
    main()
