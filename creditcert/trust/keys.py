"""A city's two-level PKI: a long-lived root certifies short-lived signing keys (ECDSA P-256).

Files under <home>/keys/ (docs/report.md §5), each written whole (tmp, fsync, rename):

    root.key, root.crt            the city root (keep root.key offline in a real deployment)
    signer-<kid>.key, .crt        signing keys, one per rotation; old ones stay for verification
    signer-<kid>.state            when that key was retired (rotated out) or compromised
    current                       the kid of the signing key new reports use; written last by
                                  `keys init`, so a home without it was never initialised
    bundle-sequence               the counter of our partner bundles (docs/partners.md)

A kid is the first 8 bytes of SHA-256 over the certificate's DER, as in the EU certificate.
Private keys are written 0600 and never printed, logged or put into an error message; a key file
that others can read is refused. Each signer file is read alone: a damaged one makes only that key
unusable, named, and never stops the others from verifying.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from creditcert.errors import KeyFileError, Reason
from creditcert.files import remove_debris, write_atomically
from creditcert.stages import reached

ROOT_YEARS = 10
SIGNER_DAYS = 400  # a signer certifies reports for a year; its certificate outlives that a little
STATE_FORMAT = "creditcert.key-state/1"
_KID = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True, slots=True)
class Signer:
    """The current signing key with its certificate and chain. Never printed: no repr of the key."""

    kid: bytes
    certificate: x509.Certificate
    root: x509.Certificate
    key_path: Path

    def private_key(self) -> ec.EllipticCurvePrivateKey:
        return _load_private(self.key_path, "a new signing key: `creditcert keys rotate`")

    def private_pem(self) -> bytes:
        return self.key_path.read_bytes()


@dataclass(frozen=True, slots=True)
class KeyState:
    """When a signing key stopped being trusted. Reports it signed are judged by their own issue
    time: after `retired_at` (rotated out) or `compromised_at` they are rejected. `problem` says
    the state could not be read, so nothing it signed can be decided."""

    retired_at: datetime | None = None
    compromised_at: datetime | None = None
    problem: str | None = None

    def refusal(self, issued: datetime) -> tuple[Reason, str] | None:
        """Why a document issued at `issued` and signed by this key is refused, if it is."""
        if self.compromised_at is not None and issued > self.compromised_at:
            return Reason.KEY_COMPROMISED, f"key compromised {self.compromised_at.isoformat()}"
        if self.retired_at is not None and issued > self.retired_at:
            return Reason.KEY_RETIRED, f"key retired {self.retired_at.isoformat()}"
        return None


@dataclass(frozen=True, slots=True)
class SignerEntry:
    """One signer-*.crt as found: its certificate and state, or what is wrong with it."""

    path: Path
    kid: bytes | None  # the certificate's, else the file name's when that is a kid
    certificate: x509.Certificate | None
    state: KeyState
    problem: str | None
    refused: bool = False  # not a signing certificate at all: ignored, never a key in doubt


@dataclass(frozen=True, slots=True)
class KeyInfo:
    kid: str
    role: str  # root | signer
    subject: str
    not_before: datetime | None
    not_after: datetime | None
    fingerprint: str  # SHA-256 of the DER, hex
    current: bool
    state: KeyState = KeyState()
    problem: str | None = None  # the file is damaged or not a certificate of this role


def kid_of(cert: x509.Certificate) -> bytes:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()[:8]


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def role_problem(cert: x509.Certificate, role: str) -> str | None:
    """Why `cert` cannot serve as a root ("root") or a signing key ("signer"), judged by its basic
    constraints and key usage, never by its file name."""
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except (x509.ExtensionNotFound, ValueError):
        return "has no readable basic constraints and key usage"
    if role == "root" and not (bc.ca and ku.key_cert_sign):
        return "is not a CA certificate (basic constraints CA, key usage keyCertSign)"
    if role == "signer" and (bc.ca or not ku.digital_signature):
        return "is not a signing certificate (CA false, key usage digitalSignature)"
    return None


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _load_private(path: Path, remedy: str) -> ec.EllipticCurvePrivateKey:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise KeyFileError(f"private key missing: {path}; {remedy}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"{path} can be read by others; run `chmod 600 {path}`")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        raise KeyFileError(
            f"{path} is not a readable unencrypted PEM private key; {remedy}"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise KeyFileError(f"{path} is not an ECDSA P-256 key; {remedy}")
    return key


def _load_cert(path: Path, role: str, remedy: str) -> x509.Certificate:
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except FileNotFoundError:
        raise KeyFileError(f"certificate missing: {path}; {remedy}") from None
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not a PEM certificate"
        raise KeyFileError(f"{path}: {why}; {remedy}") from None
    problem = role_problem(cert, role)
    if problem:
        raise KeyFileError(f"{path} {problem}; {remedy}")
    return cert


def _name(admin_code: str, city: str, role: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"{city}公共信用信息中心"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, admin_code),
            x509.NameAttribute(NameOID.COMMON_NAME, f"creditcert {role} {admin_code}"),
        ]
    )


def _usage(*, signer: bool) -> x509.KeyUsage:
    # digital_signature, content_commitment, …, key_cert_sign, crl_sign, …
    return x509.KeyUsage(signer, signer, False, False, False, not signer, not signer, False, False)


RESTORE = "restore it from a backup"


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

    # --- writing ---------------------------------------------------------------------------------

    def init(self, now: datetime) -> KeyInfo:
        """Create the root and a first signing key, together: `current` is written last, and a
        re-run after a crash reuses what an earlier run left (never a key that was in use)."""
        if self._current() is not None:
            raise KeyFileError(
                f"{self.dir} already holds a root and a signing key; `creditcert keys rotate` makes a new one"
            )
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        remove_debris(self.dir)
        if self.root_key.exists():
            key = _load_private(
                self.root_key, f"delete {self.root_key} and run `creditcert keys init`"
            )
        elif self.root_cert.exists():
            raise KeyFileError(
                f"{self.root_cert} is there but {self.root_key} is not: put the offline root key "
                "back, then run `creditcert keys init`"
            )
        else:
            key = ec.generate_private_key(ec.SECP256R1())
            write_atomically(self.root_key, _pem(key), mode=0o600)
            reached("keys.init.root-key")
        try:
            root = _load_cert(self.root_cert, "root", "")
            if root.public_key().public_numbers() != key.public_key().public_numbers():
                raise KeyFileError("another key")
        except KeyFileError:  # never finished by an earlier run: nothing ever used it
            root = self._self_sign(key, now)
            write_atomically(self.root_cert, root.public_bytes(serialization.Encoding.PEM))
            reached("keys.init.root-cert")
        return self._new_signer(root, key, now, stage="keys.init")

    def rotate(self, now: datetime) -> KeyInfo:
        """Certify a new signing key and make it current; the key it replaces is retired now, so
        anything it signs later is refused, here and by partners (its bundle carries that)."""
        root = self.root()
        root_key = _load_private(
            self.root_key, "put the offline root key back at that path to rotate"
        )
        remove_debris(self.dir)
        return self._new_signer(root, root_key, now, stage="keys.rotate")

    def revoke(self, kid: str, *, compromised_at: datetime, now: datetime) -> KeyState:
        """Record that a signing key was compromised at a time: whatever it signed with a later
        issue time is refused. The earliest time given is kept."""
        kid = kid.strip().lower()
        root = self.root()
        if kid == kid_of(root).hex():
            raise KeyFileError(
                "the root cannot be revoked: set up a new root (`creditcert keys init` in a new "
                "home) and give partners its fingerprint"
            )
        if not _KID.fullmatch(kid) or not (self.dir / f"signer-{kid}.crt").exists():
            raise KeyFileError(
                f"{kid!r} is not a signing key here; `creditcert keys list` shows them"
            )
        if compromised_at > now:
            raise KeyFileError(f"--compromised-at {compromised_at.isoformat()} is in the future")
        state = self.state(kid)
        if state.problem is None and state.compromised_at is not None:
            compromised_at = min(compromised_at, state.compromised_at)
        new = KeyState(state.retired_at, compromised_at)
        self._write_state(kid, new)
        return new

    def _self_sign(self, key: ec.EllipticCurvePrivateKey, now: datetime) -> x509.Certificate:
        name = _name(self.admin_code, self.city, "root")
        return (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=365 * ROOT_YEARS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_usage(signer=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )

    def _new_signer(
        self, root: x509.Certificate, root_key: ec.EllipticCurvePrivateKey, now: datetime, *, stage
    ) -> KeyInfo:
        """New key, its certificate, then every other signer retired, then `current`: a crash
        leaves the old current key (retired: issuing asks for a rotate) or the new one."""
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
            .add_extension(_usage(signer=True), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(root.public_key()), False
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(root_key, hashes.SHA256())
        )
        kid = kid_of(cert).hex()
        write_atomically(self.dir / f"signer-{kid}.key", _pem(key), mode=0o600)
        write_atomically(
            self.dir / f"signer-{kid}.crt", cert.public_bytes(serialization.Encoding.PEM)
        )
        reached(f"{stage}.signer-written")
        for e in self.entries():  # a damaged entry keeps its file as it is, for repair
            retire = e.certificate is not None and e.problem is None and e.kid.hex() != kid
            if retire and e.state.retired_at is None:
                self._write_state(e.kid.hex(), replace(e.state, retired_at=now))
        reached(f"{stage}.others-retired")
        write_atomically(self.dir / "current", (kid + "\n").encode())
        reached(f"{stage}.current-written")
        return self._info(cert, "signer", current=True)

    def _write_state(self, kid: str, state: KeyState) -> None:
        body = {
            "format": STATE_FORMAT,
            "retired_at": state.retired_at.isoformat() if state.retired_at else None,
            "compromised_at": state.compromised_at.isoformat() if state.compromised_at else None,
        }
        write_atomically(self.dir / f"signer-{kid}.state", json.dumps(body).encode() + b"\n")

    def next_sequence(self, now: datetime) -> int:
        """The next partner-bundle sequence: a counter kept here, raised under a lock and stored
        before the bundle is signed. A home without one starts from the clock once, above any
        sequence it published when sequences were seconds."""
        path = self.dir / "bundle-sequence"
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                text = path.read_text().strip()
            except FileNotFoundError:
                text = str(int(now.timestamp()))
            if not text.isdigit():
                raise KeyFileError(
                    f"{path} holds {text[:20]!r}, not a number: write the last sequence you "
                    "exported (partner list on a partner's side shows it) into it"
                )
            value = int(text) + 1
            write_atomically(path, f"{value}\n".encode())
            return value
        finally:
            os.close(fd)

    # --- reading ---------------------------------------------------------------------------------

    def _current(self) -> str | None:
        try:
            return (self.dir / "current").read_text().strip() or None
        except (FileNotFoundError, NotADirectoryError):
            return None

    def signer(self, now: datetime) -> Signer:
        """The current signing key, checked usable at `now` before any work is done."""
        kid = self._current()
        if kid is None:
            if self.root_key.exists() or self.root_cert.exists():
                raise KeyFileError(
                    f"keys init did not finish in {self.dir}; run `creditcert keys init`"
                )
            raise KeyFileError(f"no signing key in {self.dir}; run `creditcert keys init`")
        rotate = "run `creditcert keys rotate` for a new signing key"
        if not _KID.fullmatch(kid):
            raise KeyFileError(f"{self.dir / 'current'} names no key ({kid[:20]!r}); {rotate}")
        cert = _load_cert(self.dir / f"signer-{kid}.crt", "signer", rotate)
        root = self.root()
        key_path = self.dir / f"signer-{kid}.key"
        key = _load_private(key_path, rotate)
        if key.public_key().public_numbers() != cert.public_key().public_numbers():
            raise KeyFileError(f"{key_path} does not match its certificate; {rotate}")
        state = self.state(kid)
        if state.problem:
            raise KeyFileError(f"{state.problem}; {rotate}")
        refused = state.refusal(now)
        if refused:
            raise KeyFileError(f"signing key {kid}: {refused[1]}; {rotate}")
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise KeyFileError(
                f"signing certificate {kid} is valid {cert.not_valid_before_utc:%Y-%m-%d} to "
                f"{cert.not_valid_after_utc:%Y-%m-%d}, not at {now:%Y-%m-%d}; {rotate}"
            )
        return Signer(bytes.fromhex(kid), cert, root, key_path)

    def root_signer(self) -> Signer:
        """The root as a signer: only for what the root signs itself (partner bundles)."""
        root = self.root()
        _load_private(self.root_key, "put the offline root key back at that path")
        return Signer(kid_of(root), root, root, self.root_key)

    def root(self) -> x509.Certificate:
        if not self.root_cert.exists() and not self.root_key.exists():
            raise KeyFileError(f"no keys in {self.dir}; run `creditcert keys init`")
        return _load_cert(self.root_cert, "root", f"{RESTORE} (partners pin its fingerprint)")

    def state(self, kid: str) -> KeyState:
        """A signer's retirement and compromise, or the problem reading them."""
        path = self.dir / f"signer-{kid}.state"
        try:
            raw = json.loads(path.read_bytes())
            if not isinstance(raw, dict) or raw.get("format") != STATE_FORMAT:
                raise ValueError(f"not {STATE_FORMAT}")
            times = []
            for field in ("retired_at", "compromised_at"):
                value = raw.get(field)
                when = datetime.fromisoformat(value) if value is not None else None
                if when is not None and when.tzinfo is None:
                    raise ValueError(f"{field} has no UTC offset")
                times.append(when)
            return KeyState(*times)
        except FileNotFoundError:
            return KeyState()
        except (OSError, ValueError, TypeError) as exc:
            return KeyState(
                problem=f"{path} is damaged ({exc}); {RESTORE}, or record the key "
                f"compromised with `creditcert keys revoke {kid} --compromised-at TIME`"
            )

    def entries(self) -> list[SignerEntry]:
        """Every signer-*.crt, each read alone: a damaged file is an entry with its problem, and
        a certificate that is not a signing one (a copied root) is an entry never trusted."""
        found = []
        for path in sorted(self.dir.glob("signer-*.crt")):
            named = path.name[len("signer-") : -len(".crt")]
            try:
                cert = x509.load_pem_x509_certificate(path.read_bytes())
            except (OSError, ValueError) as exc:
                why = exc.strerror if isinstance(exc, OSError) else "not a PEM certificate"
                kid = bytes.fromhex(named) if _KID.fullmatch(named) else None
                problem = f"{path}: {why}; {RESTORE}"
                found.append(SignerEntry(path, kid, None, KeyState(), problem))
                continue
            kid = kid_of(cert)
            role = role_problem(cert, "signer")
            if role:
                problem = f"{path} {role}: never trusted; move it out of {self.dir}"
                found.append(SignerEntry(path, kid, None, KeyState(), problem, refused=True))
                continue
            state = self.state(kid.hex())
            found.append(SignerEntry(path, kid, cert, state, state.problem))
        return found

    def certificates(self) -> list[x509.Certificate]:
        """Every readable signing certificate ever made here (old ones verify old reports)."""
        return [e.certificate for e in self.entries() if e.certificate is not None]

    def list(self) -> list[KeyInfo]:
        """The root and every signer; a damaged file is listed with its problem, not raised."""
        current = self._current() or ""
        if not (self.root_cert.exists() or self.root_key.exists() or current):
            raise KeyFileError(f"no keys in {self.dir}; run `creditcert keys init`")
        try:
            infos = [self._info(self.root(), "root", current=False)]
        except KeyFileError as exc:
            infos = [KeyInfo("", "root", "", None, None, "", False, problem=str(exc))]
        for e in self.entries():
            kid = e.kid.hex() if e.kid else ""
            if e.certificate is None:
                infos.append(
                    KeyInfo(kid, "signer", "", None, None, "", kid == current, problem=e.problem)
                )
            else:
                info = self._info(e.certificate, "signer", current=kid == current)
                infos.append(replace(info, state=e.state, problem=e.problem))
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
