"""PAdES signature over the whole PDF (pyHanko), as its last incremental revision.

Invisible (no stamp appearance, whose default font would not be embedded and break PDF/A); the
signing certificate and the city root travel in the signature so poppler's `pdfsig` and Adobe
Reader can build the chain (trust still comes from pinning the root).
"""

from __future__ import annotations

import io

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
    signers.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(pdf)), meta, signer=pdf_signer, output=out)
    return out.getvalue()
