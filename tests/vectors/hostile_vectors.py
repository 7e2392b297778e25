"""Generate the hostile-input catalogue (tests/vectors/hostile/): one JSON file per case.

    python -m tests.vectors.hostile_vectors

Each case: `description` (VALID:/INVALID:), `kind` (qr, image, number, pdf), `input` (text, or
base64 for files), `clock` (RFC 3339 UTC), `trust` (file name of the trust context in this folder)
and `expected`: the verdict and steps that did not pass, with their reason codes (the verifier may
report more; these must be among them). tests/vectors/README.md describes the files. A partner's verifier is tested by feeding it every case.
The test PKI is made anew on each run; regenerating changes keys and signatures, never the rules.
"""

from __future__ import annotations

import base64
import io
import json
import tempfile
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import base45
import cbor2
import pikepdf
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from PIL import Image

from creditcert.envelope import cose
from creditcert.envelope import qr as qr_format
from creditcert.envelope import report as report_envelope
from creditcert.issue import pades
from creditcert.issue.render import Renderer, qr_png
from creditcert.model import report_number as numbers
from creditcert.trust.keys import KeyStore, Signer, kid_of

from .report_vectors import CATALOG, ISSUED, document

FORMAT = (
    2  # 2: unique step ids (issuer.*.qr), unreadable inputs are cannot-decide, bundles as checks
)
OUT = Path(__file__).resolve().parent / "hostile"
CLOCK = ISSUED + timedelta(days=1)
PEM = serialization.Encoding.PEM


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(PEM).decode()


def utc(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def wrap(cose: bytes) -> str:
    return "CC1:" + base45.b45encode(zlib.compress(cose, 9)).decode()


def unwrap(text: str) -> bytes:
    return zlib.decompress(base45.b45decode(text[4:]))


def resign(payload: bytes, signer: Signer) -> bytes:
    return cose.sign1(payload, signer)


def expired_signer(store: KeyStore, tmp: Path) -> Signer:
    """A signing certificate from the right root whose validity ended before the report's issue."""
    root_key = serialization.load_pem_private_key(store.root_key.read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "expired")]))
        .issuer_name(store.root().subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(ISSUED - timedelta(days=400))
        .not_valid_after(ISSUED - timedelta(days=30))
        .sign(root_key, hashes.SHA256())
    )
    path = tmp / "expired.key"
    path.write_bytes(
        key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)
    return Signer(kid_of(cert), cert, store.root(), path)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.json"):
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        ours = KeyStore(tmp / "ours", "210100", "沈阳市")
        ours.init(ISSUED - timedelta(days=1))
        other = KeyStore(tmp / "other", "440900", "茂名市")
        other.init(ISSUED - timedelta(days=1))
        signer, stranger = ours.signer(ISSUED), other.signer(ISSUED)
        old_signer = expired_signer(ours, tmp)

        def trust_file(name: str, root, signers) -> None:
            body = {
                "issuers": [
                    {"code": "210100", "root": pem(root), "signers": [pem(c) for c in signers]}
                ]
            }
            (OUT / f"{name}.trust.json").write_text(json.dumps(body, indent=1) + "\n")

        trust_file("trust", ours.root(), [signer.certificate, old_signer.certificate])
        trust_file("trust-wrong-root", other.root(), [signer.certificate])

        doc = document("210100-2607-TESTTEST-6", signer.kid)
        good = qr_format.encode(doc, signer, CATALOG)
        cose = good.cose
        tag = cbor2.loads(cose)
        protected, _, payload, signature = tag.value
        claims = cbor2.loads(payload)
        n = 0

        def case(
            name, description, kind, data, verdict, failed=None, *, clock=CLOCK, trust="trust"
        ):
            nonlocal n
            n += 1
            value = data if isinstance(data, str) else base64.b64encode(data).decode()
            body = {
                "format": FORMAT,
                "description": description,
                "kind": kind,
                "input": value,
                "clock": utc(clock),
                "trust": f"{trust}.trust.json",
                "expected": {"verdict": verdict, "failed": failed or {}},
            }
            (OUT / f"{n:02d}-{name}.json").write_text(
                json.dumps(body, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
            )

        def cose_with(protected_=protected, unprotected=None, payload_=payload, sig=signature):
            return cbor2.dumps(cbor2.CBORTag(18, [protected_, unprotected or {}, payload_, sig]))

        # --- QR text -----------------------------------------------------------------------
        text = good.text
        case("qr-valid", "VALID: a genuine QR text", "qr", text, "accepted")
        case(
            "qr-prefix-hc1",
            "INVALID: EU certificate prefix HC1:",
            "qr",
            "HC1:" + text[4:],
            "rejected",
            {"format.prefix": "bad-prefix"},
        )
        case(
            "qr-prefix-missing",
            "INVALID: no prefix",
            "qr",
            text[4:],
            "rejected",
            {"format.prefix": "bad-prefix"},
        )
        case(
            "qr-prefix-lowercase",
            "INVALID: lower-case prefix",
            "qr",
            "cc1:" + text[4:],
            "rejected",
            {"format.prefix": "bad-prefix"},
        )
        case(
            "qr-empty", "INVALID: empty text", "qr", "", "rejected", {"format.prefix": "bad-prefix"}
        )
        case(
            "qr-not-base45",
            "INVALID: a character outside base45",
            "qr",
            text[:-1] + "a",
            "rejected",
            {"format.base45": "bad-base45"},
        )
        cut = 4 + (len(text) - 4) // 6 * 3 + 1
        case(
            "qr-truncated",
            "INVALID: truncated to an impossible base45 length",
            "qr",
            text[:cut],
            "rejected",
            {"format.base45": "bad-base45"},
        )
        case(
            "qr-oversized",
            "INVALID: 5,000 characters",
            "qr",
            "CC1:" + "0" * 4996,
            "rejected",
            {"format.size": "too-long"},
        )
        case(
            "qr-bad-zlib",
            "INVALID: not a zlib stream",
            "qr",
            "CC1:" + base45.b45encode(b"plain bytes, no zlib").decode(),
            "rejected",
            {"format.zlib": "bad-zlib"},
        )
        case(
            "qr-zlib-bomb",
            "INVALID: zlib inflating to 1 MB",
            "qr",
            "CC1:" + base45.b45encode(zlib.compress(b"\0" * 1_000_000, 9)).decode(),
            "rejected",
            {"format.zlib": "bad-zlib"},
        )
        case(
            "qr-zlib-truncated",
            "INVALID: zlib stream cut short",
            "qr",
            "CC1:" + base45.b45encode(zlib.compress(cose, 9)[:-10]).decode(),
            "rejected",
            {"format.zlib": "bad-zlib"},
        )
        case(
            "qr-not-cbor",
            "INVALID: zlib of bytes that are not CBOR",
            "qr",
            wrap(b"\x1c\x1d\x1e"),
            "rejected",
            {"format.qr-cbor": "bad-cbor"},
        )
        case(
            "qr-untagged",
            "INVALID: COSE_Sign1 without tag 18",
            "qr",
            wrap(cbor2.dumps(tag.value)),
            "rejected",
            {"format.qr-cose": "not-cose-sign1"},
        )
        case(
            "qr-three-items",
            "INVALID: COSE array of three items",
            "qr",
            wrap(cbor2.dumps(cbor2.CBORTag(18, tag.value[:3]))),
            "rejected",
            {"format.qr-cose": "bad-cose-structure"},
        )
        case(
            "qr-deep-cbor",
            "INVALID: 100,000 nested arrays",
            "qr",
            wrap(b"\x81" * 100_000 + b"\x00")[:4000],
            "rejected",
            {},
        )
        case(
            "qr-huge-cbor-length",
            "INVALID: a byte string claiming 4 GiB",
            "qr",
            wrap(b"\xd2\x84\x5a\xff\xff\xff\xff"),
            "rejected",
            {"format.qr-cbor": "bad-cbor"},
        )
        es384 = cbor2.dumps({1: -35, 4: signer.kid})
        case(
            "qr-alg-es384",
            "INVALID: unsupported algorithm ES384",
            "qr",
            wrap(cose_with(protected_=es384)),
            "rejected",
            {"format.qr-cose": "unsupported-algorithm"},
        )
        alg_only = cbor2.dumps({1: -7})
        case(
            "qr-kid-unprotected",
            "INVALID: kid only in the unprotected header",
            "qr",
            wrap(cose_with(protected_=alg_only, unprotected={4: signer.kid})),
            "rejected",
            {"format.qr-cose": "kid-not-protected"},
        )
        case(
            "qr-kid-missing",
            "INVALID: no kid at all",
            "qr",
            wrap(cose_with(protected_=alg_only)),
            "rejected",
            {"format.qr-cose": "kid-not-protected"},
        )
        case(
            "qr-unknown-city",
            "INVALID: signed by a city we do not know",
            "qr",
            qr_format.encode(
                document("440900-2607-TESTTEST-0", stranger.kid), stranger, CATALOG
            ).text,
            "rejected",
            {"issuer.key-known.qr": "unknown-key"},
        )
        flipped = signature[:-1] + bytes([signature[-1] ^ 1])
        case(
            "qr-bad-signature",
            "INVALID: one bit of the signature flipped",
            "qr",
            wrap(cose_with(sig=flipped)),
            "rejected",
            {"integrity.qr-signature": "bad-signature"},
        )
        other_doc = document("210100-2607-OTHEROTH-0", signer.kid, name="另一家公司")
        other_payload = cbor2.loads(qr_format.encode(other_doc, signer, CATALOG).cose).value[2]
        case(
            "qr-swapped-payload",
            "INVALID: another report's claims under this signature",
            "qr",
            wrap(cose_with(payload_=other_payload)),
            "rejected",
            {"integrity.qr-signature": "bad-signature"},
        )
        case(
            "qr-expired",
            "INVALID: clock equals exp (valid iff iat <= clock < exp)",
            "qr",
            text,
            "rejected",
            {"validity.period": "expired"},
            clock=doc.valid_until,
        )
        case(
            "qr-before-iat",
            "INVALID: clock one second before iat",
            "qr",
            text,
            "rejected",
            {"validity.period": "not-yet-valid"},
            clock=ISSUED - timedelta(seconds=1),
        )
        case(
            "qr-wrong-root",
            "INVALID: signing certificate not issued by the pinned root",
            "qr",
            text,
            "rejected",
            {"issuer.chain.qr": "not-issued-by-root"},
            trust="trust-wrong-root",
        )
        case(
            "qr-expired-key",
            "INVALID: signed with a key whose certificate had expired",
            "qr",
            qr_format.encode(
                document("210100-2607-TESTTEST-6", old_signer.kid), old_signer, CATALOG
            ).text,
            "rejected",
            {"issuer.key-valid-at-issue.qr": "key-not-valid-at-issue"},
        )
        no_summary = {k: v for k, v in claims.items() if k != qr_format.Claim.SUMMARY}
        case(
            "qr-no-summary",
            "INVALID: CWT without the summary claim",
            "qr",
            wrap(resign(cbor2.dumps(no_summary), signer)),
            "rejected",
            {"format.claims": "bad-claims"},
        )
        case(
            "qr-payload-not-map",
            "INVALID: payload is a CBOR text, not claims",
            "qr",
            wrap(resign(cbor2.dumps("hello"), signer)),
            "rejected",
            {"format.claims": "bad-claims"},
        )
        case(
            "qr-wrong-iss",
            "INVALID: iss names another city than the signing key's",
            "qr",
            wrap(resign(cbor2.dumps({**claims, 1: "110000"}), signer)),
            "rejected",
            {"issuer.iss.qr": "issuer-mismatch"},
        )

        # --- images ------------------------------------------------------------------------
        def png(image: Image.Image) -> bytes:
            buf = io.BytesIO()
            image.save(buf, format="PNG")
            return buf.getvalue()

        def qr_image(t: str) -> Image.Image:
            return Image.open(io.BytesIO(qr_png(t))).resize((400, 400), Image.NEAREST)

        case("image-valid", "VALID: a photo of the QR", "image", png(qr_image(text)), "accepted")
        case(
            "image-no-qr",
            "INVALID: a blank page",
            "image",
            png(Image.new("L", (500, 500), 255)),
            "cannot-decide",
            {"format.qr-found": "no-qr"},
        )
        both = Image.new("L", (900, 450), 255)
        both.paste(qr_image(text), (10, 20))
        both.paste(qr_image(qr_format.encode(other_doc, signer, CATALOG).text), (470, 20))
        case(
            "image-two-reports",
            "INVALID: QR codes of two different reports",
            "image",
            png(both),
            "cannot-decide",
            {"format.qr-found": "several-qr"},
        )
        case(
            "image-huge",
            "INVALID: 20,000 × 20,000 pixels",
            "image",
            png(Image.new("1", (20_000, 20_000), 1)),
            "cannot-decide",
            {"format.image": "image-too-large"},
        )
        case(
            "image-not-image",
            "INVALID: bytes that are no image",
            "image",
            b"GIF89a\x00junk",
            "cannot-decide",
            {"format.image": "not-an-image"},
        )

        # --- numbers -----------------------------------------------------------------------
        own19, other19 = "2101002607TESTTEST", "4409002607TESTTEST"
        good_check = numbers.check_character(own19)
        typo = numbers.ALPHABET[(numbers.ALPHABET.index(good_check) + 1) % len(numbers.ALPHABET)]
        case(
            "number-typo",
            "INVALID: one character mistyped",
            "number",
            numbers.format_number(own19 + typo),
            "rejected",
            {"format.number": "bad-number"},
        )
        case(
            "number-other-city",
            "INVALID (cannot decide): another city's number",
            "number",
            numbers.format_number(other19 + numbers.check_character(other19)),
            "cannot-decide",
            {"issuer.number": "other-issuer"},
        )
        case(
            "number-garbage",
            "INVALID: not a number at all",
            "number",
            "'; DROP TABLE reports;--",
            "rejected",
            {"format.number": "bad-number"},
        )

        # --- PDF ---------------------------------------------------------------------------
        renderer = Renderer()
        envelope = report_envelope.seal(doc, signer)
        pdf = pades.sign_pdf(renderer.render(doc, text, envelope), signer)
        case("pdf-valid", "VALID: a genuine report PDF", "pdf", pdf, "accepted")
        body = bytearray(pdf)
        body[len(body) // 3] ^= 1
        case(
            "pdf-flipped-body",
            "INVALID: one bit flipped in the body",
            "pdf",
            bytes(body),
            "rejected",
            {"integrity.pades": "pades-invalid"},
        )
        sig_at = pdf.index(b"/Contents <") + 20
        sig = bytearray(pdf)
        sig[sig_at] = ord("0") if sig[sig_at] != ord("0") else ord("1")
        case(
            "pdf-flipped-signature",
            "INVALID: a digit of the signature changed",
            "pdf",
            bytes(sig),
            "rejected",
            {"integrity.pades": "pades-invalid"},
        )
        with pikepdf.open(io.BytesIO(pdf)) as p:
            p.docinfo["/Title"] = "edited after signing"
            buf = io.BytesIO()
            p.save(buf)
        case(
            "pdf-resaved",
            "INVALID: visible metadata edited and re-saved",
            "pdf",
            buf.getvalue(),
            "rejected",
            {},
        )
        extra = pdf + b"\n% an extra incremental update after signing\n"
        case(
            "pdf-appended",
            "INVALID: bytes appended after the signed revision",
            "pdf",
            extra,
            "rejected",
            {"integrity.pades": "pades-invalid"},
        )
        with pikepdf.open(io.BytesIO(pdf)) as p:
            buf = io.BytesIO()
            p.save(buf, encryption=pikepdf.Encryption(owner="o", user="", R=6))
        case(
            "pdf-encrypted",
            "INVALID: an encrypted PDF",
            "pdf",
            buf.getvalue(),
            "rejected",
            {"format.pdf": "encrypted"},
        )
        case(
            "pdf-not-pdf",
            "INVALID: a file that is not a PDF",
            "pdf",
            b"PK\x03\x04 a zip",
            "cannot-decide",
            {"format.pdf": "not-pdf"},
        )
        other_pdf = pades.sign_pdf(
            renderer.render(doc, qr_format.encode(other_doc, signer, CATALOG).text, envelope),
            signer,
        )
        case(
            "pdf-foreign-qr",
            "INVALID: signed PDF whose QR is another report's",
            "pdf",
            other_pdf,
            "rejected",
            {"consistency.qr-envelope": "qr-envelope-mismatch"},
        )
        stranger_pdf = pades.sign_pdf(renderer.render(doc, text, envelope), stranger)
        case(
            "pdf-unknown-signer",
            "INVALID: PDF signed by a key of an unknown city",
            "pdf",
            stranger_pdf,
            "rejected",
            {"issuer.pades-signer": "unknown-key"},
        )
        # a genuine PDF whose attached envelope is swapped for another subject's
        with pikepdf.open(io.BytesIO(pdf)) as p:
            other_envelope = report_envelope.seal(other_doc, signer)
            for spec in p.Root.AF:
                if str(spec.get("/F", "")) == "report.cose":
                    spec.EF.F.write(other_envelope)
            buf = io.BytesIO()
            p.save(buf)
        case(
            "pdf-envelope-swapped",
            "INVALID: report.cose replaced by another subject's",
            "pdf",
            buf.getvalue(),
            "rejected",
            {"integrity.pades": "pades-invalid", "consistency.qr-envelope": "qr-envelope-mismatch"},
        )
        pasted = pades.sign_pdf(
            renderer.render(
                doc,
                qr_format.encode(
                    document("440900-2607-TESTTEST-0", stranger.kid), stranger, CATALOG
                ).text,
                envelope,
            ),
            signer,
        )
        case(
            "pdf-foreign-city-qr",
            "INVALID: our signed PDF carrying another city's QR",
            "pdf",
            pasted,
            "rejected",
            {"issuer.key-known.qr": "unknown-key"},
        )

        # --- partner bundles (kind "bundle": `pin` and `sequence_after` say how to import) ----
        BUNDLE_STEPS = {
            "pin-mismatch": "trust.pin",
            "bad-signature": "integrity.bundle-signature",
            "not-valid-now": "validity.bundle",
            "stale-sequence": "status.sequence",
            "malformed": "format.bundle",
        }

        def bundle_case(name, description, data, pin, reason, *, clock=CLOCK, after=0):
            nonlocal n
            n += 1
            body = {
                "format": FORMAT,
                "description": description,
                "kind": "bundle",
                "input": base64.b64encode(data).decode(),
                "pin": pin,
                "sequence_after": after,
                "clock": utc(clock),
                "expected": {
                    "verdict": "accepted" if reason is None else "rejected",
                    "failed": {BUNDLE_STEPS[reason]: reason} if reason else {},
                },
            }
            (OUT / f"{n:02d}-{name}.json").write_text(json.dumps(body, indent=1) + "\n")

        from creditcert.config import Issuer, RepairPolicy, Settings
        from creditcert.registry import SqliteRegistry
        from creditcert.resources import default_catalog_path
        from creditcert.rules import catalog as catalog_mod
        from creditcert.trust.bundles import export_bundle

        settings = Settings(
            tmp,
            Issuer("210100", "沈阳市", "Shenyang"),
            catalog_mod.load(default_catalog_path()),
            tmp,
            ISSUED.date(),
            RepairPolicy.SHOW_MARKED,
            0,
        )
        registry = SqliteRegistry(tmp / "registry.sqlite")
        bundle = export_bundle(settings, ours, registry, now=ISSUED, sequence=7)
        registry.close()
        from creditcert.trust.keys import fingerprint

        pin = fingerprint(ours.root())
        bundle_case("bundle-valid", "VALID: our bundle, pinned root", bundle, pin, None)
        bundle_case(
            "bundle-wrong-pin",
            "INVALID: pinned fingerprint of another root",
            bundle,
            fingerprint(other.root()),
            "pin-mismatch",
        )
        spoiled = bytearray(bundle)
        spoiled[-3] ^= 1
        bundle_case(
            "bundle-bad-signature",
            "INVALID: last bytes of the signature changed",
            bytes(spoiled),
            pin,
            "bad-signature",
        )
        bundle_case(
            "bundle-expired",
            "INVALID: clock after the bundle's expiry",
            bundle,
            pin,
            "not-valid-now",
            clock=ISSUED + timedelta(days=31),
        )
        bundle_case(
            "bundle-older-sequence",
            "INVALID: sequence not newer than the one held",
            bundle,
            pin,
            "stale-sequence",
            after=7,
        )
        bundle_case(
            "bundle-not-cose", "INVALID: not a COSE_Sign1", b"\x82\x01\x02", pin, "malformed"
        )
    print(f"wrote {n} cases to {OUT}")


if __name__ == "__main__":
    main()
