"""A city's two-level PKI: a long-lived root certifies short-lived signing keys (ECDSA P-256).

Files under <home>/keys/ (docs/report.md §5):

    root.key, root.crt            the city root (keep root.key offline in a real deployment)
    signer-<kid>.key, .crt        signing keys, one per rotation; old ones stay for verification
    current                       the kid of the signing key new reports use

A kid is the first 8 bytes of SHA-256 over the certificate's DER, as in the EU certificate.
Private keys are written 0600 and never printed, logged or put into an error message; a key file
that others can read is refused.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from creditcert.errors import KeyFileError

ROOT_YEARS = 10
SIGNER_DAYS = 400  # a signer certifies reports for a year; its certificate outlives that a little


@dataclass(frozen=True, slots=True)
class Signer:
    """The current signing key with its certificate and chain. Never printed: no repr of the key."""

    kid: bytes
    certificate: x509.Certificate
    root: x509.Certificate
    key_path: Path

    def private_key(self) -> ec.EllipticCurvePrivateKey:
        return _load_private(self.key_path)

    def private_pem(self) -> bytes:
        return self.key_path.read_bytes()


@dataclass(frozen=True, slots=True)
class KeyInfo:
    kid: str
    role: str  # root | signer
    subject: str
    not_before: datetime
    not_after: datetime
    fingerprint: str  # SHA-256 of the DER, hex
    current: bool


def kid_of(cert: x509.Certificate) -> bytes:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()[:8]


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def _write_private(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)


def _load_private(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise KeyFileError(f"private key missing: {path}; run `creditcert keys init`") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"{path} can be read by others; run `chmod 600 {path}`")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        raise KeyFileError(f"{path} is not a readable unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise KeyFileError(f"{path} is not an ECDSA P-256 key")
    return key


def _load_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except FileNotFoundError:
        raise KeyFileError(f"certificate missing: {path}; run `creditcert keys init`") from None
    except ValueError:
        raise KeyFileError(f"{path} is not a PEM certificate") from None


def _name(admin_code: str, city: str, role: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"{city}公共信用信息中心"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, admin_code),
            x509.NameAttribute(NameOID.COMMON_NAME, f"creditcert {role} {admin_code}"),
        ]
    )


class KeyStore:
    """The keys directory of a city's home."""

    def __init__(self, directory: Path, admin_code: str, city: str):
        self.dir = directory
        self.admin_code = admin_code
        self.city = city

    @property
    def root_key(self) -> Path:
        return self.dir / "root.key"

    @property
    def root_cert(self) -> Path:
        return self.dir / "root.crt"

    def init(self, now: datetime) -> KeyInfo:
        """Create the root and a first signing key; refuses to overwrite existing keys."""
        if self.root_key.exists() or self.root_cert.exists():
            raise KeyFileError(f"{self.dir} already holds a root; use `creditcert keys rotate`")
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        key = ec.generate_private_key(ec.SECP256R1())
        name = _name(self.admin_code, self.city, "root")
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=365 * ROOT_YEARS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        _write_private(self.root_key, key)
        self.root_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return self.rotate(now)

    def rotate(self, now: datetime) -> KeyInfo:
        """Certify a new signing key with the root and make it current."""
        root = _load_cert(self.root_cert)
        root_key = _load_private(self.root_key)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(self.admin_code, self.city, f"signer {now:%Y%m%d%H%M%S}"))
            .issuer_name(root.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=SIGNER_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(True, True, False, False, False, False, False, False, False),
                critical=True,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(root.public_key()), False
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(root_key, hashes.SHA256())
        )
        kid = kid_of(cert).hex()
        _write_private(self.dir / f"signer-{kid}.key", key)
        (self.dir / f"signer-{kid}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        tmp = self.dir / "current.tmp"
        tmp.write_text(kid + "\n")
        os.replace(tmp, self.dir / "current")
        return self._info(cert, "signer", current=True)

    def signer(self, now: datetime) -> Signer:
        """The current signing key, checked usable at `now` before any work is done."""
        current = self.dir / "current"
        if not current.exists():
            raise KeyFileError(f"no signing key in {self.dir}; run `creditcert keys init`")
        kid = current.read_text().strip()
        cert = _load_cert(self.dir / f"signer-{kid}.crt")
        root = _load_cert(self.root_cert)
        key_path = self.dir / f"signer-{kid}.key"
        key = _load_private(key_path)
        if key.public_key().public_numbers() != cert.public_key().public_numbers():
            raise KeyFileError(f"{key_path} does not match its certificate")
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise KeyFileError(
                f"signing certificate {kid} is valid {cert.not_valid_before_utc:%Y-%m-%d} to "
                f"{cert.not_valid_after_utc:%Y-%m-%d}, not at {now:%Y-%m-%d}; run `creditcert keys rotate`"
            )
        return Signer(bytes.fromhex(kid), cert, root, key_path)

    def root_signer(self) -> Signer:
        """The root as a signer: only for what the root signs itself (partner bundles)."""
        root = _load_cert(self.root_cert)
        _load_private(self.root_key)  # present, 0600 and P-256, or a clear error
        return Signer(kid_of(root), root, root, self.root_key)

    def certificates(self) -> list[x509.Certificate]:
        """Every signing certificate ever made here (old ones verify old reports)."""
        return [_load_cert(p) for p in sorted(self.dir.glob("signer-*.crt"))]

    def root(self) -> x509.Certificate:
        return _load_cert(self.root_cert)

    def list(self) -> list[KeyInfo]:
        current = (
            (self.dir / "current").read_text().strip() if (self.dir / "current").exists() else ""
        )
        infos = [self._info(self.root(), "root", current=False)]
        for cert in self.certificates():
            infos.append(self._info(cert, "signer", current=kid_of(cert).hex() == current))
        return infos

    @staticmethod
    def _info(cert: x509.Certificate, role: str, current: bool) -> KeyInfo:
        return KeyInfo(
            kid=kid_of(cert).hex(),
            role=role,
            subject=cert.subject.rfc4514_string(),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            fingerprint=fingerprint(cert),
            current=current,
        )
