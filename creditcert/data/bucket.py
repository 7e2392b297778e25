"""One bucket of an S3-compatible object store, as creditcert uses it (docs/scale-out.md):
immutable Parquet objects, and one manifest replaced only by a conditional write.

boto3, not pyarrow's S3FileSystem nor DuckDB's httpfs: publishing a generation needs a
conditional PutObject (If-Match / If-None-Match), so that two instances writing at once cannot
silently overwrite one another's manifest; pyarrow's file system has no such call and does not
show ETags, and httpfs is not loadable offline for the DuckDB we pin (its PyPI packages exist for
DuckDB 1.4 only), and cannot write conditionally either.

Every failure is a DataError of one line naming the endpoint, the bucket and the key, never the
credentials (only the server's error code is shown, never its message or request).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from creditcert.config import ObjectStore
from creditcert.data.manifest import MANIFEST_NAME, MAX_BYTES, Entry, Manifest
from creditcert.errors import DataError

_CHUNK = 1 << 20
_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "Forbidden"}
_CONFLICT = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}


class ManifestConflict(DataError):
    """Another instance published a generation after this writer read the manifest: nothing of
    this writer was published (run it again: City.write_data does, up to three times)."""


@dataclass(frozen=True, slots=True)
class Fetched:
    """The bucket's manifest as fetched: None when the bucket holds none yet."""

    manifest: Manifest | None
    etag: str | None


class Bucket:
    """The bucket and prefix of a city's datasets, through boto3 (made on first use)."""

    def __init__(self, store: ObjectStore):
        self.store = store
        self._client: Any = None

    # --- naming ------------------------------------------------------------------------------

    def key(self, relative: str) -> str:
        return f"{self.store.prefix}/{relative}" if self.store.prefix else relative

    def where(self, relative: str) -> str:
        endpoint = self.store.endpoint or "AWS S3"
        return f"s3://{self.store.bucket}/{self.key(relative)} (endpoint {endpoint})"

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config
            from botocore.exceptions import BotoCoreError

            config = Config(
                connect_timeout=3,
                read_timeout=30,
                retries={"max_attempts": 2, "mode": "standard"},
                s3={"addressing_style": "path" if self.store.endpoint else "auto"},
            )
            try:
                session = boto3.session.Session(profile_name=self.store.profile)
                self._client = session.client(
                    "s3",
                    endpoint_url=self.store.endpoint,
                    region_name=self.store.region or "us-east-1",
                    config=config,
                )
            except BotoCoreError as exc:
                raise DataError(f"{self.where('')}: {type(exc).__name__}") from None
        return self._client

    # --- the manifest ------------------------------------------------------------------------

    def fetch_manifest(self, *, unless_etag: str | None = None) -> Fetched | None:
        """The bucket's manifest, checked; None when it still has the ETag `unless_etag` (a
        conditional GET: no body is sent then)."""
        where = self.where(MANIFEST_NAME)
        args = {"Bucket": self.store.bucket, "Key": self.key(MANIFEST_NAME)}
        if unless_etag:
            args["IfNoneMatch"] = unless_etag
        try:
            answer = self.client.get_object(**args)
        except Exception as exc:
            code = _code(exc)
            if code in ("304", "NotModified"):
                return None
            if code == "NoSuchKey":
                return Fetched(None, None)
            raise _failure(exc, where) from None
        body = answer["Body"]
        try:
            if answer.get("ContentLength", 0) > MAX_BYTES:
                raise DataError(f"{where}: refused manifest: larger than {MAX_BYTES} bytes")
            data = self._read(body, MAX_BYTES + 1, where)
        finally:
            body.close()
        return Fetched(Manifest.from_bytes(data, where=where), answer.get("ETag"))

    def put_manifest(self, manifest: Manifest, *, replaces: str | None) -> str:
        """Publish `manifest` if the bucket's is still the one with ETag `replaces` (None: if the
        bucket has none); ManifestConflict otherwise. Returns the new ETag."""
        args: dict[str, Any] = {
            "Bucket": self.store.bucket,
            "Key": self.key(MANIFEST_NAME),
            "Body": manifest.to_bytes(),
            "ContentType": "application/json",
        }
        if replaces:
            args["IfMatch"] = replaces
        else:
            args["IfNoneMatch"] = "*"
        try:
            return self.client.put_object(**args)["ETag"]
        except Exception as exc:
            if _code(exc) in _CONFLICT:
                raise ManifestConflict(
                    f"{self.where(MANIFEST_NAME)}: another instance published a newer generation "
                    "while this one was writing; nothing of this run was published: run it again"
                ) from None
            raise _failure(exc, self.where(MANIFEST_NAME)) from None

    # --- objects -----------------------------------------------------------------------------

    def upload(self, path: Path, entry: Entry) -> None:
        """Store one version of a file under its own key (never replacing another version)."""
        from boto3.s3.transfer import TransferConfig

        try:
            self.client.upload_file(
                str(path),
                self.store.bucket,
                self.key(entry.key),
                Config=TransferConfig(multipart_threshold=64 << 20, max_concurrency=4),
            )
        except Exception as exc:
            cause = getattr(exc, "__context__", None) or exc
            raise _failure(cause, self.where(entry.key)) from None

    def download(self, entry: Entry, dest: Path) -> None:
        """Write the object of `entry` to `dest` (a temporary file), refusing one whose size or
        SHA-256 differs from the manifest's; never reads more than the manifest's size."""
        where = self.where(entry.key)
        try:
            answer = self.client.get_object(Bucket=self.store.bucket, Key=self.key(entry.key))
        except Exception as exc:
            raise _failure(exc, where) from None
        body = answer["Body"]
        digest = hashlib.sha256()
        try:
            if answer.get("ContentLength") != entry.size:
                raise DataError(
                    f"{where}: {answer.get('ContentLength')} bytes, the manifest says {entry.size}"
                )
            with open(dest, "wb") as fh:
                for chunk in self._chunks(body, entry.size + 1, where):
                    digest.update(chunk)
                    fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
        finally:
            body.close()
        if digest.hexdigest() != entry.sha256:
            dest.unlink(missing_ok=True)
            raise DataError(f"{where}: content differs from the manifest's SHA-256; not taken in")

    def put_bytes(self, relative: str, data: bytes, content_type: str) -> None:
        """Store a small object whole (a kept report's PDF)."""
        try:
            self.client.put_object(
                Bucket=self.store.bucket, Key=self.key(relative), Body=data,
                ContentType=content_type,
            )  # fmt: skip
        except Exception as exc:
            raise _failure(exc, self.where(relative)) from None

    def get_bytes(self, relative: str, limit: int) -> bytes | None:
        """A small object whole, at most `limit` bytes; None when there is no such object."""
        where = self.where(relative)
        try:
            answer = self.client.get_object(Bucket=self.store.bucket, Key=self.key(relative))
        except Exception as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                return None
            raise _failure(exc, where) from None
        body = answer["Body"]
        try:
            if answer.get("ContentLength", 0) > limit:
                raise DataError(f"{where}: larger than {limit} bytes; refused")
            return self._read(body, limit + 1, where)
        finally:
            body.close()

    def _read(self, body, limit: int, where: str) -> bytes:
        return b"".join(self._chunks(body, limit, where))

    def _chunks(self, body, limit: int, where: str):
        """The body's bytes, refusing it once it passes `limit` (a bound on every download)."""
        from botocore.exceptions import BotoCoreError

        seen = 0
        try:
            while chunk := body.read(_CHUNK):
                seen += len(chunk)
                if seen > limit - 1:
                    raise DataError(f"{where}: longer than announced; refused")
                yield chunk
        except BotoCoreError as exc:
            raise DataError(f"{where}: download interrupted ({type(exc).__name__})") from None


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    code = str(response.get("Error", {}).get("Code", ""))
    return code or str(response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))


def _failure(exc: BaseException, where: str) -> DataError:
    """One line for what the object store or the network did: the endpoint, bucket and key, what
    went wrong, and what to check. Never the credentials, the request or the server's prose."""
    from botocore.exceptions import (
        BotoCoreError,
        ConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
        ProfileNotFound,
    )

    if isinstance(exc, NoCredentialsError | PartialCredentialsError | ProfileNotFound):
        return DataError(
            f"{where}: no usable credentials ({type(exc).__name__}); set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or data.profile"
        )
    if isinstance(exc, ConnectionError):
        return DataError(f"{where}: cannot reach the object store ({type(exc).__name__})")
    if isinstance(exc, BotoCoreError):
        return DataError(f"{where}: object store client error ({type(exc).__name__})")
    code = _code(exc)
    if code == "NoSuchBucket":
        return DataError(f"{where}: no such bucket")
    if code in _DENIED:
        return DataError(
            f"{where}: access refused ({code}); check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY "
            "(or data.profile) and the bucket's policy"
        )
    if code in ("NoSuchKey", "404"):
        return DataError(f"{where}: missing from the bucket")
    if code:
        return DataError(f"{where}: the object store answered {code}")
    if isinstance(exc, OSError):
        return DataError(f"{where}: {exc.strerror or type(exc).__name__}")
    return DataError(f"{where}: {type(exc).__name__}")
