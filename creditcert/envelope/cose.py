"""COSE_Sign1 (RFC 9052, CBOR tag 18) as creditcert writes and reads it: reports, QR payloads and
partner bundles all use it.

The profile: ES256 only (`{1: -7}`), the kid in the protected header, a byte-string payload, a
single CBOR item. Writing and signature checks go through python-cwt; the structural reading
before a signature is checked is here, bounded and strict, so a hostile input ends in a coded
DecodeError instead of whatever a CBOR library raises. docs/verify.md lists the rules.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Protocol

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cwt import COSE, COSEKey

from creditcert.errors import DecodeError, Reason

ES256 = -7
HEADER_ALG, HEADER_KID = 1, 4
TAG_SIGN1 = 18


class Signer(Protocol):
    """What signing needs: the key id and the private key (PEM, read only when signing)."""

    @property
    def kid(self) -> bytes: ...

    def private_pem(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Sign1:
    """A structurally valid COSE_Sign1 whose signature has not been checked yet."""

    raw: bytes
    kid: bytes
    payload: bytes


def sign1(payload: bytes, signer: Signer) -> bytes:
    """COSE_Sign1 over `payload`, kid in the protected header, tagged (18)."""
    key = COSEKey.from_pem(signer.private_pem(), alg="ES256", kid=signer.kid)
    return COSE.new().encode(
        payload, key, protected={HEADER_ALG: ES256, HEADER_KID: signer.kid}, unprotected={}
    )


def decode_unverified(data: bytes) -> Sign1:
    """The structure and header rules of a COSE_Sign1; raises DecodeError with stage `cbor` or
    `cose`. Nothing it returns may be trusted until `verify_with` says so."""
    try:
        obj = cbor2.loads(data)
    except Exception as exc:  # cbor2 raises many types on hostile input, RecursionError too
        raise DecodeError("cbor", Reason.BAD_CBOR, f"not CBOR ({type(exc).__name__})") from None
    if not (isinstance(obj, cbor2.CBORTag) and obj.tag == TAG_SIGN1):
        raise DecodeError(
            "cose",
            Reason.NOT_COSE_SIGN1,
            f"got {type(obj).__name__}, expected a COSE_Sign1 (CBOR tag 18)",
        )
    body = obj.value
    if not (
        isinstance(body, list)
        and len(body) == 4
        and isinstance(body[0], bytes)
        and isinstance(body[1], dict)
        and isinstance(body[2], bytes)
        and isinstance(body[3], bytes)
    ):
        raise DecodeError(
            "cose",
            Reason.BAD_COSE_STRUCTURE,
            "expected [protected bstr, unprotected map, payload bstr, signature bstr]",
        )
    try:
        protected = cbor2.loads(body[0]) if body[0] else {}
    except Exception:
        protected = None
    if not isinstance(protected, dict):
        raise DecodeError("cose", Reason.BAD_PROTECTED_HEADER, "protected header is not a CBOR map")
    if protected.get(HEADER_ALG) != ES256:
        raise DecodeError(
            "cose",
            Reason.UNSUPPORTED_ALGORITHM,
            f"algorithm {protected.get(HEADER_ALG)!r}, expected -7 (ES256)",
        )
    kid = protected.get(HEADER_KID)
    if not isinstance(kid, bytes):
        where = "only in the unprotected header" if HEADER_KID in body[1] else "missing"
        raise DecodeError(
            "cose", Reason.KID_NOT_PROTECTED, f"kid {where}; expected it in the protected header"
        )
    return Sign1(data, kid, body[2])


@functools.lru_cache(maxsize=256)
def _cose_key(certificate: x509.Certificate, kid: bytes) -> COSEKey:
    """The certificate's public key as a COSE key: made once per certificate, not per
    verification (loading a P-256 point costs milliseconds; the service verifies thousands)."""
    pem = certificate.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return COSEKey.from_pem(pem, alg="ES256", kid=kid)


def verify_with(message: Sign1, certificate: x509.Certificate) -> bool:
    """Does the signature verify with this certificate's public key?"""
    try:
        key = _cose_key(certificate, message.kid)
        COSE.new().decode(message.raw, keys=[key])
    except Exception:  # python-cwt raises VerifyError, and others on keys it cannot use
        return False
    return True
