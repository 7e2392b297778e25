"""Errors the library raises for bad input. Each message names the file, field or code at fault."""

from __future__ import annotations

from enum import StrEnum


class CreditcertError(Exception):
    """Base of every error creditcert raises on purpose; the CLI prints it and exits non-zero."""


class ConfigError(CreditcertError):
    """A city's creditcert.toml is missing or has a bad setting."""


class CatalogError(CreditcertError):
    """A domain catalog is malformed."""


class SubjectError(CreditcertError):
    """A credit code is malformed or not in the subject register."""


class RequestError(CreditcertError):
    """A lookup or report request names an unknown domain or purpose, or a bad period."""


class DataError(CreditcertError):
    """A dataset is missing, corrupt or out of step with its index."""


class IngestError(CreditcertError):
    """An input file cannot be read at all (rows that are merely bad go to quarantine)."""


class KeyFileError(CreditcertError):
    """A key or certificate is missing, unreadable or not usable (never shows key material)."""


class IssueError(CreditcertError):
    """A report cannot be issued (rate limit, registry)."""


class RegistryError(CreditcertError):
    """The registry file cannot be read or written (full disk, read-only home, damage)."""


class PartnerError(CreditcertError):
    """A partner's bundle or agreement is refused; `reason` is a stable code."""

    def __init__(self, message: str, reason: Reason | None = None):
        super().__init__(message)
        self.reason = reason or Reason.REFUSED


class TokenError(CreditcertError):
    """An API token is refused, or cannot be added or revoked; `reason` is a stable code
    (docs/service.md lists them). Never carries the secret."""

    def __init__(self, message: str, reason: TokenReason):
        super().__init__(message)
        self.reason = reason


class RenderError(CreditcertError):
    """The PDF cannot be rendered as it should look (missing fonts, bad language)."""


class VerificationFailed(CreditcertError):
    """Raised by Verification.raise_for_status() when the verdict is not an acceptance."""


class DecodeError(CreditcertError):
    """A wire format could not be decoded: `stage` names the decoding stage that failed (e.g.
    `zlib`, `cose`), `reason` the coded cause. Verifiers turn it into a failed check."""

    def __init__(self, stage: str, reason: Reason, message: str):
        super().__init__(message)
        self.stage = stage
        self.reason = reason


class CodedReason(StrEnum):
    """A stable code with its one-line meaning: `Member = "code", "meaning"`. The base of every
    reason enum (verification, tokens, batch outcomes), each listed in its document."""

    meaning: str

    def __new__(cls, value: str, meaning: str) -> CodedReason:
        member = str.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning
        return member


class Reason(CodedReason):
    """Every coded reason a check or a refusal carries, with its one-line meaning
    (docs/verify.md lists them all; a test keeps the two in step)."""

    OK = "ok", "the check passed"
    # reading the input
    TOO_LONG = "too-long", "the QR text is longer than any report's"
    TOO_LARGE = "too-large", "the file is larger than any report's"
    BAD_PREFIX = "bad-prefix", "the QR text neither starts with CC1: nor holds /CC1/"
    BAD_BASE45 = "bad-base45", "the QR text is not base45 (RFC 9285)"
    BAD_DIGITS = "bad-digits", "the QR URL has no decimal digits alone after /CC1/"
    BAD_DIGIT_COUNT = "bad-digit-count", "the QR URL's digit count fits no whole number of bytes"
    DIGIT_CHUNK_OVERFLOW = (
        "digit-chunk-overflow",
        "a chunk of the QR URL's digits exceeds its bytes",
    )
    BAD_ZLIB = "bad-zlib", "not one complete zlib stream within the size limit"
    BAD_CBOR = "bad-cbor", "not a single well-formed CBOR item"
    NOT_COSE_SIGN1 = "not-cose-sign1", "the CBOR is not a COSE_Sign1 (tag 18)"
    BAD_COSE_STRUCTURE = "bad-cose-structure", "not [protected, unprotected, payload, signature]"
    BAD_PROTECTED_HEADER = "bad-protected-header", "the protected header is not a CBOR map"
    UNSUPPORTED_ALGORITHM = "unsupported-algorithm", "the algorithm is not ES256 (-7)"
    KID_NOT_PROTECTED = "kid-not-protected", "the key id is missing from the protected header"
    BAD_CLAIMS = "bad-claims", "the QR payload is not a creditcert CWT with a complete summary"
    BAD_DOCUMENT = "bad-document", "the envelope payload is not a creditcert.report/1 document"
    NOT_PDF = "not-pdf", "the file is not a PDF"
    BAD_PDF = "bad-pdf", "the PDF cannot be parsed"
    ENCRYPTED = "encrypted", "the PDF is encrypted; issued reports never are"
    NO_ENVELOPE = "no-envelope", "the PDF carries no report.cose attachment"
    BAD_ENVELOPE = "bad-envelope", "the report.cose attachment cannot be read"
    NOT_AN_IMAGE = "not-an-image", "the file is not an image we can read"
    IMAGE_TOO_LARGE = "image-too-large", "the image has more pixels than a 300-dpi A4 scan"
    NO_QR = "no-qr", "no QR code could be read from the image"
    SEVERAL_QR = "several-qr", "the image shows more than one different QR code"
    BAD_NUMBER = "bad-number", "not a report number (shape or check character wrong)"
    # who signed
    UNKNOWN_KEY = "unknown-key", "the key id is not a signing key of any city we trust"
    BAD_SIGNATURE = "bad-signature", "the signature does not verify"
    NOT_ISSUED_BY_ROOT = "not-issued-by-root", "the signing certificate is not signed by the root"
    KEY_NOT_VALID_AT_ISSUE = "key-not-valid-at-issue", "the signing key was not valid at issue"
    ISSUER_MISMATCH = "issuer-mismatch", "the report names another city than the one that signed"
    OTHER_ISSUER = "other-issuer", "the number belongs to another city's registry"
    PARTNER_UNAVAILABLE = "partner-unavailable", "the partner's bundle is expired or unusable"
    STATUS_UNREACHABLE = (
        "status-unreachable",
        "the issuing partner's service could not be asked the number's status",
    )
    # the PDF as a whole
    SIGNATURE_COUNT = "signature-count", "the PDF does not carry exactly one signature"
    PADES_INVALID = "pades-invalid", "the PAdES signature is broken or does not cover the file"
    SIGNER_MISMATCH = "signer-mismatch", "the PDF and its envelope were signed by different keys"
    QR_PAGES_DIFFER = "qr-pages-differ", "not the same single QR on every page"
    QR_ENVELOPE_MISMATCH = "qr-envelope-mismatch", "the QR and the envelope describe other reports"
    # time and status
    EXPIRED = "expired", "the report's validity ended before the time checked"
    NOT_YET_VALID = "not-yet-valid", "the report was issued after the time checked"
    UNKNOWN_NUMBER = "unknown-number", "the issuer's registry has no such report"
    REVOKED = "revoked", "the issuer revoked the report"
    DIGEST_MISMATCH = "digest-mismatch", "the registry holds another document under this number"
    NO_REGISTRY = "no-registry", "no registry is at hand to check the number's status"
    # partners
    CATALOG_MISMATCH = "catalog-mismatch", "the report names another catalog than the partner's"
    NO_AGREEMENT = "no-agreement", "we have no mutual-recognition agreement with the issuer"
    NOT_LIVE_AT_ISSUE = "not-live-at-issue", "the agreement was not in force when it was issued"
    AGREEMENT_ENDED = "agreement-ended", "the agreement is no longer in force"
    NO_DOMAIN_RECOGNISED = "no-domain-recognised", "the agreement covers none of its domains"
    # partner bundles
    MALFORMED = "malformed", "not a creditcert.bundle/1 COSE_Sign1"
    PIN_MISMATCH = "pin-mismatch", "the bundle's root is not the pinned fingerprint"
    BAD_CONTENT = "bad-content", "a field of the bundle is missing, mistyped or out of range"
    BAD_CATALOG = "bad-catalog", "the bundle's catalog is refused or does not match its digest"
    NOT_VALID_NOW = "not-valid-now", "the bundle is not within its validity"
    STALE_SEQUENCE = "stale-sequence", "the bundle is not newer than the one we hold"
    REFUSED = "refused", "an agreement or bundle was refused (the message says why)"
    # key lifecycle (docs/verify.md, "Retired and compromised keys")
    KEY_RETIRED = "key-retired", "the key had been rotated out before the report's issue time"
    KEY_COMPROMISED = "key-compromised", "the key was reported compromised before its issue time"
    KEY_UNUSABLE = "key-unusable", "a file of the city's own keys is damaged; the key is unknown"
    # issuance that did not complete (docs/report.md §7)
    NOT_COMPLETED = "not-completed", "the number was drawn but its report was never completed"
    VOIDED = "voided", "the number was voided: its issuance failed and no report exists"
    # remote applications from partners (docs/partners.md, "Remote application")
    BAD_APPLICATION = "bad-application", "the request is not a complete creditcert.application/1"
    NOT_FROM_A_PARTNER = (
        "not-from-a-partner",
        "the request is signed by our own key, not a partner's",
    )
    SENDER_MISMATCH = "sender-mismatch", "the request names another city than the one that signed"
    NOT_ADDRESSED_TO_US = "not-addressed-to-us", "the request is addressed to another city"
    OUTSIDE_TIME_WINDOW = "outside-time-window", "the request was sent too long before or after now"
    DOMAIN_NOT_AGREED = "domain-not-agreed", "a requested domain is outside the agreement"
    REPLAYED = "replayed", "a request with this nonce was received before"


class TokenReason(CodedReason):
    """Why a TokenError was raised, with its one-line meaning (docs/service.md lists them
    all; a test keeps the two in step). The first three are what a request's token can get."""

    UNKNOWN = "unknown", "no token has this secret, or no token has this name"
    REVOKED = "revoked", "the token was revoked"
    SCOPE = "scope", "the token does not carry the scope the call needs"
    DUPLICATE = "duplicate", "a token of that name exists already (revoked ones included)"
    BAD_NAME = "bad-name", "the name is not [a-z0-9][a-z0-9._-]{0,63}"
    BAD_SCOPES = "bad-scopes", "the scopes are not a non-empty subset of issue, lookup, verify"
