"""PAdES signature over the whole PDF (pyHanko), as its last incremental revision.

Invisible (no stamp appearance, whose default font would not be embedded and break PDF/A): a
widget with a zero-area /Rect and the Print flag, which PDF/A-3 allows without an appearance
(ISO 19005-3 6.3.3). The signing certificate and the city root travel in the signature so
poppler's `pdfsig` and Adobe Reader can build the chain (trust still comes from pinning the
root). The file stays PDF 1.7, as PDF/A-3 requires (docs/report.md §PDF).
"""

from __future__ import annotations

import io
from functools import cache

from creditcert.trust.keys import Signer


def sign_pdf(pdf: bytes, signer: Signer, *, field: str = "CreditcertSignature") -> bytes:
    """The PDF with a PAdES B-B signature appended (signing time: pyHanko reads the clock), in
    a new signature field `field`."""
    from asn1crypto import keys as asn1_keys
    from asn1crypto import x509 as asn1_x509
    from cryptography.hazmat.primitives import serialization
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    def asn1_cert(cert):
        return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))

    key = asn1_keys.PrivateKeyInfo.load(
        signer.private_key().private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pdf_signer = signers.SimpleSigner(
        signing_cert=asn1_cert(signer.certificate),
        signing_key=key,
        cert_registry=SimpleCertificateStore.from_certs([asn1_cert(signer.root)]),
    )
    meta = signers.PdfSignatureMetadata(
        field_name=field,
        subfilter=fields.SigSeedSubFilter.PADES,
        md_algorithm="sha256",
        reason="专项信用报告 / Special credit report",
    )
    out = io.BytesIO()
    _pdf17_signer_class()(meta, signer=pdf_signer).sign_pdf(
        IncrementalPdfFileWriter(io.BytesIO(pdf)), output=out
    )
    return out.getvalue()


@cache
def _pdf17_signer_class():
    from pyhanko.sign import signers
    from pyhanko.sign.signers.constants import ESIC_EXTENSION_1

    class Pdf17Signer(signers.PdfSigner):
        """pyHanko's PdfSigner, declaring PAdES as the ESIC extension of PDF 1.7 only.

        For an ECDSA P-256 key pyHanko also declares ISO/TS 32002 (ECDSA in PDF 2.0), which sets
        the catalog's /Version to 2.0: no longer the PDF 1.7 that PDF/A-3 is built on. PAdES
        (ETSI EN 319 142-1) on PDF 1.7 signs with ECDSA under the ESIC extension alone, which
        is what pyHanko declares for RSA keys."""

        def register_extensions(self, pdf_out, *, md_algorithm: str) -> None:
            pdf_out.ensure_output_version(version=(1, 7))
            pdf_out.register_extension(ESIC_EXTENSION_1)

    return Pdf17Signer
