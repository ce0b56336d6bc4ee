"""S3 and S3-compatible object stores (AWS, Aliyun OSS, UCloud US3, Tencent COS, MinIO, Ceph RGW) via boto3.

Parts are streamed: ``put`` reads its stream in chunks and uploads them as a multipart upload with a
few chunks in flight, so memory stays bounded whatever the part size; a failed upload is aborted so
no partial object ever appears. Every chunk carries its Content-MD5 (the server refuses a corrupted
body) and, unless server-side encryption changes ETags, the ETag the server returns is compared to
the MD5 computed here as a second end-to-end check.
"""

from __future__ import annotations

import base64
import builtins
import configparser
import copy
import hashlib
import io
import logging
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ncbackup.config.settings import GeneralSettings, SectionSettings
from ncbackup.config.types import LegacyBool, LegacyFloat, LegacyInt, LegacyPath
from ncbackup.engine.logs import add_secret
from ncbackup.errors import ConfigError, StorageError
from ncbackup.extras import import_extra
from ncbackup.sources.base import CheckLine
from ncbackup.storage.base import ObjectInfo, storage_options

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

log = logging.getLogger(__name__)

MIB = 1024 * 1024
DELETE_BATCH_KEYS = 1000   # DeleteObjects takes at most 1000 keys a request
READ_WORKERS = 16          # manifests read at once by list_sets (a boto3 client is thread-safe)
RESTORE_PARALLEL_PARTS = 4  # parts a restore downloads at once (engine/prefetch.py bounds the memory they take)
# S3 allows at most 10000 parts of at least 5 MiB (the last may be smaller); chunks grow after every
# GROWTH_EVERY_PARTS parts so an unsplit stream of any size still fits.
MIN_CHUNK_BYTES = 5 * MIB
GROWTH_EVERY_PARTS = 2000

# Keys a user might be tempted to put in ARGS_DICT; credentials never live in the config.
_CREDENTIAL_KEYS = {
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "ACCESS_KEY", "SECRET_KEY",
    "ACCESS_KEY_ID", "SECRET_ACCESS_KEY", "ACCESSKEYID", "ACCESSKEYSECRET", "PASSWORD",
}


class S3Options(BaseModel):
    """ARGS_DICT keys of DESTINATION s3 / oss."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    bucket: str = Field(
        alias="BUCKET", min_length=1,
        description="bucket name (the original's top-level `BUCKET_NAME` is accepted too)",
    )
    prefix: str | None = Field(
        default=None, alias="PREFIX", json_schema_extra={"shown_default": "`<HOSTNAME>/`"},
        description="base inside the bucket; `/` for none",
    )
    endpoint_url: str | None = Field(
        default=None, alias="ENDPOINT_URL", json_schema_extra={"shown_default": "AWS"},
        description="endpoint of an S3-compatible store, e.g. `https://minio.example:9000`",
    )
    region: str | None = Field(
        default=None, alias="REGION", json_schema_extra={"shown_default": "the AWS chain's"},
        description="region (the signing region for other stores)",
    )
    addressing_style: Literal["virtual", "path", "auto"] | None = Field(
        default=None, alias="ADDRESSING_STYLE", json_schema_extra={"shown_default": "boto3's choice; `virtual` for oss"},
        description="`virtual`: the bucket in the host name; `path`: in the path; `auto`: boto3 decides",
    )
    storage_class: str | None = Field(
        default=None, alias="STORAGE_CLASS", json_schema_extra={"shown_default": "the bucket's default"},
        description="e.g. `STANDARD_IA`, `GLACIER_IR`, `DEEP_ARCHIVE` (restoring from archive classes needs a "
                    "restore request first)",
    )
    sse: str | None = Field(
        default=None, alias="SSE", json_schema_extra={"allowed": "`AES256`, `aws:kms`"},
        description="server-side encryption",
    )
    sse_kms_key_id: str | None = Field(
        default=None, alias="SSE_KMS_KEY_ID", json_schema_extra={"shown_default": "the account's default"},
        description="KMS key for `aws:kms`",
    )
    profile: str | None = Field(
        default=None, alias="PROFILE", json_schema_extra={"shown_default": "the default chain"},
        description="AWS profile from the credentials/config files",
    )
    credentials_file: LegacyPath | None = Field(
        default=None, alias="CREDENTIALS_FILE", json_schema_extra={"shown_default": "`~/.aws/credentials`"},
        description="an AWS credentials file (INI, `[profile]` sections) used instead of `~/.aws/credentials`",
    )
    chunk_size_mib: LegacyInt = Field(
        default=8, alias="CHUNK_SIZE_MB", ge=5, le=5120,
        description="multipart chunk size in MiB; chunks double every 2000 parts so any stream fits in 10000 parts",
    )
    concurrency: LegacyInt = Field(
        default=4, alias="CONCURRENCY", ge=1, le=32,
        description="chunks uploaded at once (memory used: about (CONCURRENCY + 1) x CHUNK_SIZE_MB)",
    )
    max_attempts: LegacyInt = Field(
        default=8, alias="MAX_ATTEMPTS", ge=1, le=20,
        description="attempts per request, with botocore's \"standard\" retry mode (exponential backoff with "
                    "jitter on throttling, 5xx and connection errors)",
    )
    connect_timeout_seconds: LegacyFloat = Field(
        default=20, alias="CONNECT_TIMEOUT", gt=0, description="seconds to wait for a connection",
    )
    read_timeout_seconds: LegacyFloat = Field(
        default=120, alias="READ_TIMEOUT", gt=0, description="seconds to wait for an answer",
    )
    # None: on for AWS, off for other endpoints (see is_aws_endpoint).
    flexible_checksums: LegacyBool | None = Field(
        default=None, alias="FLEXIBLE_CHECKSUMS", json_schema_extra={"shown_default": "yes for AWS, no elsewhere"},
        description="send CRC32 checksums (x-amz-checksum-*) in addition to Content-MD5",
    )

    object_lock_days: LegacyInt | None = Field(
        default=None, alias="OBJECT_LOCK_DAYS", ge=1, le=36500, json_schema_extra={"shown_default": "no lock"},
        description="write every object with an S3 Object Lock retain-until date this many days ahead (the bucket "
                    "must have Object Lock enabled); prune skips sets whose lock has not expired",
    )
    object_lock_mode: Literal["governance", "compliance"] = Field(
        default="governance", alias="OBJECT_LOCK_MODE",
        description="`governance`: users with s3:BypassGovernanceRetention may still delete; `compliance`: nobody "
                    "can, not even the account root, until the date passes",
    )

    @field_validator("object_lock_mode", mode="before")
    @classmethod
    def _lower_mode(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="before")
    @classmethod
    def _no_credentials(cls, values: Any) -> Any:
        if isinstance(values, dict):
            found = sorted(k for k in values if str(k).upper() in _CREDENTIAL_KEYS)
            if found:
                raise ValueError(
                    f"credentials ({', '.join(found)}) must not be in the config; use CREDENTIALS_FILE, "
                    "PROFILE or the AWS environment variables"
                )
        return values


def register_aws_secrets(credentials_file: Path | None) -> None:
    """Mask the secret keys and session tokens boto3 may use: the credentials file's (every profile) and the environment's."""
    path = credentials_file or Path(os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or Path.home() / ".aws" / "credentials")
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(path.expanduser().read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, configparser.Error):
        pass  # a missing file is reported by _make_client; nothing to mask then
    for profile in parser.sections():
        for key in ("aws_secret_access_key", "aws_session_token"):
            add_secret(parser.get(profile, key, fallback="").strip(), where=f"{key} of [{profile}] in {path}")
    for variable in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        add_secret(os.environ.get(variable, ""), where=f"the {variable} environment variable")


def is_aws_endpoint(endpoint_url: str | None) -> bool:
    """True when requests go to Amazon S3 itself (no ENDPOINT_URL, or an amazonaws.com host)."""
    if not endpoint_url:
        return True
    host = (urlparse(endpoint_url).hostname or "").lower()
    return host.endswith(".amazonaws.com") or host.endswith(".amazonaws.com.cn")


def oss_defaults(options: S3Options) -> S3Options:
    """Aliyun OSS: endpoint from REGION (oss-<region>.aliyuncs.com) and virtual-host addressing."""
    region = (options.region or "").removeprefix("oss-") or None
    endpoint = options.endpoint_url
    if endpoint is None:
        if region is None:
            raise ConfigError(
                "DESTINATION oss needs REGION (e.g. 'cn-hangzhou') or ENDPOINT_URL in ARGS_DICT",
                key="REGION",
            )
        endpoint = f"https://oss-{region}.aliyuncs.com"
    return options.model_copy(update={
        "endpoint_url": endpoint,
        "region": region,
        "addressing_style": options.addressing_style or "virtual",
    })


def normalise_prefix(prefix: str) -> str:
    """'web1' -> 'web1/', '/a/b/' -> 'a/b/', '' -> ''."""
    prefix = prefix.strip().strip("/")
    return f"{prefix}/" if prefix else ""


def _read_up_to(stream: BinaryIO, size_bytes: int) -> bytes:
    """Read exactly size_bytes unless EOF comes first (pipes return short reads)."""
    buffer = io.BytesIO()
    remaining = size_bytes
    while remaining > 0:
        data = stream.read(min(remaining, 1 << 20))
        if not data:
            break
        buffer.write(data)
        remaining -= len(data)
    # getbuffer-free copy-out: BytesIO.getvalue() shares the buffer when nothing else references it.
    return buffer.getvalue()


def _md5(data: bytes) -> hashlib._Hash:
    return hashlib.md5(data, usedforsecurity=False)


def _add_content_md5(request: Any, **_: Any) -> None:  # a botocore AWSRequest, from the before-sign event
    body = request.body
    if isinstance(body, str):
        body = body.encode("utf-8")
    if isinstance(body, bytes) and "Content-MD5" not in request.headers:
        request.headers["Content-MD5"] = base64.b64encode(_md5(body).digest()).decode("ascii")


def batches(keys: builtins.list[str], size: int) -> Iterator[builtins.list[str]]:
    """keys in slices of at most size, in order."""
    for start in range(0, len(keys), size):
        yield keys[start:start + size]


class S3Storage:
    """One bucket and prefix; keys ``<set-id>/<file>`` live at ``<prefix><key>``."""

    def __init__(self, options: S3Options, *, base_prefix: str, section_name: str = "STORAGE") -> None:
        self.options = options
        self.section_name = section_name
        self.base_prefix = normalise_prefix(base_prefix)
        self.bucket = options.bucket
        self.name = f"s3://{self.bucket}/{self.base_prefix}"
        self.endpoint_text = options.endpoint_url or f"AWS S3 ({options.region or 'default region'})"
        self.is_aws = is_aws_endpoint(options.endpoint_url)
        self.uses_flexible_checksums = (
            options.flexible_checksums if options.flexible_checksums is not None else self.is_aws
        )
        # With server-side encryption by KMS (AWS) or any SSE (MinIO) the ETag is not the body's MD5.
        self.etag_is_md5 = options.sse is None
        self._lock_state_known = False            # _bucket_lock_state asks the bucket once
        self._lock_state: bool | None = None
        self._client = self._make_client()

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def from_section(cls, section: SectionSettings, general: GeneralSettings) -> S3Storage:
        destination = str((section.parameters or {}).get("DESTINATION", "s3")).strip().lower()
        options = storage_options(S3Options, section, legacy_keys={"BUCKET_NAME": "BUCKET"})
        if destination == "oss":
            options = oss_defaults(options)
        prefix = options.prefix if options.prefix is not None else f"{general.hostname}/"
        return cls(options, base_prefix=prefix, section_name=section.name)

    def _make_client(self) -> Any:  # a botocore S3 client; boto3 has no type information
        boto3 = import_extra("boto3", needed_by=f"section {self.section_name} uses S3 storage")
        import botocore.session
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError

        options = self.options
        core = botocore.session.Session()
        if options.credentials_file is not None:
            path = options.credentials_file.expanduser()
            if not path.is_file():
                raise ConfigError(
                    f"CREDENTIALS_FILE {path} does not exist; create it (AWS credentials file format) or fix the path",
                    key="CREDENTIALS_FILE",
                )
            core.set_config_variable("credentials_file", str(path))
        register_aws_secrets(options.credentials_file)
        try:
            session = boto3.Session(botocore_session=core, profile_name=options.profile)
        except BotoCoreError as error:  # ProfileNotFound
            raise ConfigError(f"{error}; fix PROFILE in ARGS_DICT of section {self.section_name}", key="PROFILE") from None
        s3_config: dict[str, str] = {}
        if options.addressing_style:
            s3_config["addressing_style"] = options.addressing_style
        checksum_mode = "when_supported" if self.uses_flexible_checksums else "when_required"
        config = Config(
            region_name=options.region,
            # total_max_attempts counts the first request; botocore's max_attempts would count retries only.
            retries={"mode": "standard", "total_max_attempts": options.max_attempts},
            connect_timeout=options.connect_timeout_seconds,
            read_timeout=options.read_timeout_seconds,
            max_pool_connections=max(options.concurrency + 2, READ_WORKERS),
            s3=s3_config or None,
            # boto3 >= 1.36 adds CRC checksums (aws-chunked bodies, x-amz-checksum-* headers) to every
            # upload by default; many S3-compatible stores reject them (XAmzContentSHA256Mismatch,
            # "Unsupported header x-amz-sdk-checksum-algorithm"), so outside AWS we send only
            # Content-MD5, which they all verify.
            request_checksum_calculation=checksum_mode,
            response_checksum_validation=checksum_mode,
        )
        try:
            client = session.client("s3", endpoint_url=options.endpoint_url, config=config)
        except (BotoCoreError, ValueError) as error:
            raise ConfigError(
                f"cannot set up the S3 client for {self.endpoint_text}: {error}; check ENDPOINT_URL and REGION",
                key="ENDPOINT_URL",
            ) from None
        # boto3 >= 1.36 sends DeleteObjects with a CRC32 checksum instead of Content-MD5, and its request shape
        # has no ContentMD5 member; S3-compatible stores that predate it answer MissingContentMD5. AWS takes both.
        client.meta.events.register("before-sign.s3.DeleteObjects", _add_content_md5)
        return client

    # -- errors ---------------------------------------------------------------------------------

    def _error(self, error: Exception, *, action: str, key: str | None = None) -> StorageError:
        """Turn a boto3 exception into one sentence naming the bucket, endpoint and fix."""
        from botocore import exceptions as bx

        where = f"s3://{self.bucket}/{self.base_prefix}{key or ''} at {self.endpoint_text}"
        if isinstance(error, bx.ClientError):
            info = error.response.get("Error", {})
            code = str(info.get("Code", ""))
            message = info.get("Message") or code
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code == "NoSuchBucket":
                return StorageError(
                    f"bucket {self.bucket!r} does not exist at {self.endpoint_text}; create it or fix BUCKET "
                    f"in section {self.section_name}", is_permanent=True,
                )
            if code in {"NoSuchKey", "404", "NotFound"}:
                return StorageError(f"{where} does not exist; list the sets to see what is stored", is_permanent=True)
            if code in {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken",
                        "InvalidClientTokenId", "AuthorizationHeaderMalformed"}:
                return StorageError(
                    f"{self.endpoint_text} refused the S3 credentials ({code}) for {action}; check the AWS "
                    f"environment variables, PROFILE or CREDENTIALS_FILE of section {self.section_name}",
                    is_permanent=True,
                )
            if code in {"AccessDenied", "403", "AllAccessDisabled"} or status == 403:
                return StorageError(
                    f"access denied for {action} on {where}: the credentials are wrong or lack permissions; "
                    "check them and grant s3:PutObject, s3:GetObject, s3:ListBucket and s3:DeleteObject on the bucket",
                    is_permanent=True,
                )
            return StorageError(f"S3 {action} of {where} failed: {code} {message}; retry later or check the endpoint")
        if isinstance(error, bx.NoCredentialsError | bx.PartialCredentialsError):
            return StorageError(
                f"no S3 credentials were found for {action} on {where}; set AWS_ACCESS_KEY_ID and "
                f"AWS_SECRET_ACCESS_KEY, or PROFILE / CREDENTIALS_FILE in section {self.section_name}",
                is_permanent=True,
            )
        if isinstance(error, bx.EndpointConnectionError | bx.ConnectTimeoutError | bx.ConnectionClosedError
                      | bx.ReadTimeoutError | bx.ProxyConnectionError | bx.HTTPClientError):
            return StorageError(
                f"cannot reach the S3 endpoint {self.endpoint_text} for {action} ({type(error).__name__}); "
                "check ENDPOINT_URL, REGION and the network"
            )
        if isinstance(error, StorageError):
            return error
        return StorageError(f"S3 {action} of {where} failed: {error}")

    def _key(self, key: str) -> str:
        return f"{self.base_prefix}{key.lstrip('/')}"

    # -- the four operations --------------------------------------------------------------------

    def put(self, key: str, stream: BinaryIO) -> None:
        """Read stream to EOF and store it at key; the object appears only when complete and verified."""
        from botocore.exceptions import BotoCoreError, ClientError

        full_key = self._key(key)
        first = _read_up_to(stream, self._chunk_bytes(1))
        try:
            if len(first) < self._chunk_bytes(1):
                self._put_small(full_key, first)
            else:
                self._put_multipart(full_key, first, stream)
        except (BotoCoreError, ClientError) as error:
            raise self._error(error, action="upload", key=key) from None

    def _chunk_bytes(self, part_number: int) -> int:
        base = self.options.chunk_size_mib * MIB
        return max(MIN_CHUNK_BYTES, base) << ((part_number - 1) // GROWTH_EVERY_PARTS)

    def _object_args(self) -> dict[str, str]:
        args: dict[str, str] = {}
        if self.options.storage_class:
            args["StorageClass"] = self.options.storage_class
        if self.options.sse:
            args["ServerSideEncryption"] = self.options.sse
        if self.options.sse_kms_key_id:
            args["SSEKMSKeyId"] = self.options.sse_kms_key_id
        return args

    def _lock_args(self) -> dict[str, Any]:
        """ObjectLockMode and a retain-until date OBJECT_LOCK_DAYS from now; empty without OBJECT_LOCK_DAYS."""
        if self.options.object_lock_days is None:
            return {}
        return {
            "ObjectLockMode": self.options.object_lock_mode.upper(),
            "ObjectLockRetainUntilDate": datetime.now(timezone.utc) + timedelta(days=self.options.object_lock_days),
        }

    def _checksum_args(self, data: bytes) -> tuple[dict[str, str], str]:
        digest = _md5(data)
        args = {"ContentMD5": base64.b64encode(digest.digest()).decode("ascii")}
        if self.uses_flexible_checksums:
            args["ChecksumAlgorithm"] = "CRC32"
        return args, digest.hexdigest()

    def _check_etag(self, etag: str | None, md5_hex: str, what: str) -> None:
        if self.etag_is_md5 and etag and etag.strip('"').lower() != md5_hex:
            raise StorageError(
                f"{self.endpoint_text} stored different bytes than were sent for {what} (MD5 {md5_hex}, "
                f"ETag {etag}); the upload was discarded: check the network path to the endpoint"
            )

    def _put_small(self, full_key: str, data: bytes) -> None:
        checksum_args, md5_hex = self._checksum_args(data)
        response = self._client.put_object(
            Bucket=self.bucket, Key=full_key, Body=data, **checksum_args, **self._object_args(), **self._lock_args(),
        )
        try:
            self._check_etag(response.get("ETag"), md5_hex, full_key)
        except StorageError:
            self._remove_bad_object(full_key)
            raise

    def _remove_bad_object(self, full_key: str) -> None:
        """Remove an object whose stored bytes differ from those sent; the mismatch is what the user must see."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.delete_object(Bucket=self.bucket, Key=full_key)
        except (BotoCoreError, ClientError) as error:
            # A write-only backup server may not delete: the set stays incomplete, and prune removes it.
            log.warning("%s: could not remove the damaged object %s: %s", self.name, full_key, error)

    def _put_multipart(self, full_key: str, first: bytes, stream: BinaryIO) -> None:
        create_args: dict[str, Any] = {**self._object_args(), **self._lock_args()}
        if self.uses_flexible_checksums:
            create_args["ChecksumAlgorithm"] = "CRC32"
        upload_id = self._client.create_multipart_upload(Bucket=self.bucket, Key=full_key, **create_args)["UploadId"]
        try:
            parts = self._upload_parts(full_key, upload_id, first, stream)
            self._client.complete_multipart_upload(
                Bucket=self.bucket, Key=full_key, UploadId=upload_id, MultipartUpload={"Parts": parts},
            )
        except BaseException:
            self._abort(full_key, upload_id)
            raise

    def _upload_parts(self, full_key: str, upload_id: str, first: bytes, stream: BinaryIO) -> list[dict]:
        """Upload chunks with at most CONCURRENCY in flight (memory: CONCURRENCY+1 chunks)."""
        done: list[dict] = []
        in_flight: deque[Future] = deque()
        pool = ThreadPoolExecutor(max_workers=self.options.concurrency, thread_name_prefix="s3-part")
        try:
            part_number, chunk = 1, first
            while True:
                in_flight.append(pool.submit(self._upload_part, full_key, upload_id, part_number, chunk))
                chunk = b""  # drop our reference: the worker owns the buffer now
                if len(in_flight) >= self.options.concurrency:
                    done.append(in_flight.popleft().result())
                part_number += 1
                chunk = _read_up_to(stream, self._chunk_bytes(part_number))
                if not chunk:
                    break
            while in_flight:
                done.append(in_flight.popleft().result())
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return done

    def _upload_part(self, full_key: str, upload_id: str, part_number: int, data: bytes) -> dict:
        checksum_args, md5_hex = self._checksum_args(data)
        response = self._client.upload_part(
            Bucket=self.bucket, Key=full_key, UploadId=upload_id, PartNumber=part_number, Body=data,
            **checksum_args,
        )
        self._check_etag(response.get("ETag"), md5_hex, f"{full_key} chunk {part_number}")
        part = {"PartNumber": part_number, "ETag": response["ETag"]}
        if self.uses_flexible_checksums and response.get("ChecksumCRC32"):
            part["ChecksumCRC32"] = response["ChecksumCRC32"]
        return part

    def _abort(self, full_key: str, upload_id: str) -> None:
        try:
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=full_key, UploadId=upload_id)
        except Exception as error:  # noqa: BLE001 - the original failure is what the user must see
            # A lifecycle rule (AbortIncompleteMultipartUpload) cleans up what we could not.
            log.warning("%s: could not abort the multipart upload of %s: %s", self.name, full_key, error)

    def get(self, key: str) -> BinaryIO:
        """Return a readable stream of the object; StorageError if it is missing or unreachable."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self._client.get_object(Bucket=self.bucket, Key=self._key(key))
        except (BotoCoreError, ClientError) as error:
            raise self._error(error, action="download", key=key) from None
        return io.BufferedReader(_BodyReader(response["Body"], self, key), buffer_size=MIB)

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """Bytes [start, start + length) of key (fewer where it ends), by one Range GET."""
        from botocore.exceptions import BotoCoreError, ClientError

        if length <= 0:
            return b""
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=self._key(key), Range=f"bytes={start}-{start + length - 1}")
            return bytes(response["Body"].read())
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "InvalidRange":
                return b""   # start is past the end of the object
            raise self._error(error, action="download", key=key) from None
        except BotoCoreError as error:
            raise self._error(error, action="download", key=key) from None

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Yield the objects under the base prefix whose key starts with prefix."""
        from botocore.exceptions import BotoCoreError, ClientError

        paginator = self._client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
                for item in page.get("Contents", []):
                    yield ObjectInfo(key=item["Key"][len(self.base_prefix):], size_bytes=int(item["Size"]))
        except (BotoCoreError, ClientError) as error:
            raise self._error(error, action="listing", key=prefix) from None

    def host_storages(self) -> builtins.list[tuple[str, S3Storage]] | None:
        """Every host folder beside the base prefix (``<parent>/*/``) as a storage sharing this one's client
        (botocore clients are thread-safe); None when the base is the bucket's root (no host folders)."""
        from botocore.exceptions import BotoCoreError, ClientError

        if not self.base_prefix:
            return None
        parent = self.base_prefix.rstrip("/").rpartition("/")[0]
        parent = f"{parent}/" if parent else ""
        names: builtins.list[str] = []
        paginator = self._client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=parent, Delimiter="/"):
                for item in page.get("CommonPrefixes", []):
                    name = item["Prefix"][len(parent):].rstrip("/")
                    if name:
                        names.append(name)
        except (BotoCoreError, ClientError) as error:
            raise self._error(error, action="listing of the host folders") from None
        return [(name, self._sibling(f"{parent}{name}/")) for name in sorted(names)]

    def _sibling(self, base_prefix: str) -> S3Storage:
        sibling = copy.copy(self)   # same options and client: no new connection pool per host
        sibling.base_prefix = base_prefix
        sibling.name = f"s3://{self.bucket}/{base_prefix}"
        return sibling

    def delete(self, key: str) -> None:
        """Remove key; a missing key is not an error."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (BotoCoreError, ClientError) as error:
            raise self._error(error, action="removal", key=key) from None

    # -- retention capabilities (storage/base.py) -------------------------------------------------

    def delete_many(self, keys: builtins.list[str]) -> dict[str, str]:
        """Delete keys with DeleteObjects, 1000 a request, in order; {key: why} for each one not deleted (never raises)."""
        from botocore.exceptions import BotoCoreError, ClientError

        failures: dict[str, str] = {}
        for batch in batches(keys, DELETE_BATCH_KEYS):
            by_full_key = {self._key(key): key for key in batch}
            try:
                response = self._client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": full_key} for full_key in by_full_key], "Quiet": True},
                )
            except (BotoCoreError, ClientError) as error:
                for key in batch:
                    failures[key] = str(self._error(error, action="removal", key=key))
                continue
            for item in response.get("Errors", []):
                key = by_full_key.get(item.get("Key", ""), item.get("Key", ""))
                failures[key] = self._delete_failure(key, str(item.get("Code", "")), str(item.get("Message", "")))
        return failures

    def _delete_failure(self, key: str, code: str, message: str) -> str:
        where = f"s3://{self.bucket}/{self._key(key)}"
        if code == "AccessDenied":
            return (f"{where} was not removed: access denied ({message or code}); these credentials may not delete "
                    f"(s3:DeleteObject), which is right on a write-only backup server: run prune with the prune "
                    f"machine's credentials")
        return f"{where} was not removed: {code} {message}; the next prune retries it"

    def bucket_location(self) -> tuple[str, str]:
        """(bucket, base prefix), to match CLEANUP's BUCKET/PREFIX."""
        return self.bucket, self.base_prefix

    def prune_support(self) -> str | None:
        """S3 lists and deletes (DeleteObjects)."""
        return None

    def read_workers(self) -> int:
        """A boto3 client is thread-safe: list_sets reads this many manifests at once."""
        return READ_WORKERS

    def parallel_part_reads(self) -> int:
        """A restore downloads this many parts at once: each GET's latency and one connection's speed are hidden."""
        return RESTORE_PARALLEL_PARTS

    def retained_until(self, key: str) -> datetime | None:
        """The object's Object Lock retain-until date; None when it has none (or the bucket has no Object Lock)."""
        from botocore.exceptions import BotoCoreError, ClientError

        if self._bucket_lock_state() is False:
            return None   # no object in a bucket without Object Lock can be locked: spare a HEAD per object
        try:
            response = self._client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code")) in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise self._error(error, action="lock query", key=key) from None
        except BotoCoreError as error:
            raise self._error(error, action="lock query", key=key) from None
        until = response.get("ObjectLockRetainUntilDate")
        return until if isinstance(until, datetime) else None

    def _bucket_lock_state(self) -> bool | None:
        """True / False: the bucket has / has not Object Lock enabled; None when it cannot be told. Asked once."""
        if not self._lock_state_known:
            self._lock_state, self._lock_state_known = self._ask_bucket_lock(), True
        return self._lock_state

    def _ask_bucket_lock(self) -> bool | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self._client.get_object_lock_configuration(Bucket=self.bucket)
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code")) == "ObjectLockConfigurationNotFoundError":
                return False
            return None   # e.g. no s3:GetBucketObjectLockConfiguration: ask per object
        except BotoCoreError:
            return None
        return response.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled"

    def check(self) -> builtins.list[CheckLine]:
        """Check the bucket answers with these credentials (HEAD bucket), and has Object Lock when asked; writes nothing."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.head_bucket(Bucket=self.bucket)
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code")) in {"404", "NoSuchBucket", "NotFound"}:
                error = ClientError({"Error": {"Code": "NoSuchBucket"}}, "HeadBucket")
            return [CheckLine(False, str(self._error(error, action="check")))]
        except BotoCoreError as error:
            return [CheckLine(False, str(self._error(error, action="check")))]
        lines = [CheckLine(True, f"{self.name} reachable at {self.endpoint_text}")]
        if self.options.object_lock_days is not None:
            lines.append(self._check_object_lock())
        return lines

    def _check_object_lock(self) -> CheckLine:
        days, mode = self.options.object_lock_days, self.options.object_lock_mode
        state = self._ask_bucket_lock()
        if state is True:
            return CheckLine(True, f"bucket {self.bucket!r} has Object Lock enabled: objects are locked for {days} "
                                   f"day(s) in {mode} mode")
        if state is False:
            return CheckLine(False, f"bucket {self.bucket!r} does not have Object Lock enabled, but OBJECT_LOCK_DAYS is "
                                    f"set in section {self.section_name}: every upload would be refused; enable Object "
                                    "Lock on the bucket (versioning on, then put-object-lock-configuration) or remove "
                                    "OBJECT_LOCK_DAYS")
        return CheckLine(False, f"cannot tell whether bucket {self.bucket!r} has Object Lock enabled (OBJECT_LOCK_DAYS "
                                f"is set in section {self.section_name}): grant s3:GetBucketObjectLockConfiguration "
                                "or check the bucket by hand")


class _BodyReader(io.RawIOBase):
    """A botocore StreamingBody as a raw stream whose network errors are StorageErrors."""

    def __init__(self, body: Any, storage: S3Storage, key: str) -> None:  # a botocore StreamingBody
        self._body = body
        self._storage = storage
        self._key = key

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        from botocore.exceptions import BotoCoreError

        target = memoryview(buffer)
        try:
            data = self._body.read(len(target))
        except (BotoCoreError, OSError) as error:
            raise self._storage._error(error, action="download", key=self._key) from None
        except Exception as error:  # noqa: BLE001 - urllib3 errors that botocore does not wrap
            raise StorageError(
                f"download of {self._key} from {self._storage.name} broke off ({type(error).__name__}); retry"
            ) from None
        target[: len(data)] = data
        return len(data)

    def close(self) -> None:
        try:
            self._body.close()
        finally:
            super().close()
