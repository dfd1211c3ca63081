"""Object storage as a publish target: `S3Target`, behind the same interface as LocalTarget.

A bucket has no symlink to swap, so the order of uploads is what keeps a half-done
publish harmless. Keys the served tree does not have yet go first (in the publisher's
write order: leaves, lists, pointers); keys that change in place are spooled to a
temporary directory and go at commit, again leaves before lists before pointers, then
the manifest, then the state document last. So a publish killed before its first
overwrite leaves the served tree byte for byte as it was; one killed later leaves every
reference resolving (nothing is deleted yet), with the state document still naming the
old manifest; the next publish compares against that manifest and completes.

Superseded keys are not deleted at once: clients part-way through paging may still ask
for them. They are recorded with the time they were superseded in a mirror-owned key
(`PENDING_KEY`) and deleted by the first publish after the grace period. Unchanged files
are found from the bucket's previous manifest (path, size, sha256), never by listing it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import orjson

from mirror import __version__
from mirror.errors import RenderError, UsageError
from mirror.hosts import CACHE_CONTROL, JSON
from mirror.plan import Cache
from mirror.publish import Manifest, Record

PENDING_KEY = ".mcp-mirror/pending-deletions.json"
DEFAULT_GRACE = timedelta(hours=24)
Log = Callable[[str], None]


def parse_url(url: str) -> tuple[str, str]:
    """`s3://bucket/prefix` -> (bucket, "prefix/"); the prefix may be empty."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise UsageError(f"{url!r} is not an s3://bucket/prefix URL")
    prefix = parts.path.strip("/")
    if any(segment in ("", ".", "..") for segment in prefix.split("/")) and prefix:
        raise UsageError(f"{url!r} has an empty or dot segment in its prefix")
    return parts.netloc, f"{prefix}/" if prefix else ""


@dataclass
class Actions:
    """What a publish did (or, with --dry-run, would do), in order."""

    puts: list[str] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)  # superseded, deleted after the grace period


class S3Target:
    """A bucket (and key prefix) as a publish target. `client` is a boto3 S3 client."""

    def __init__(self, url: str, *, client: Any, manifest_path: str, state_path: str,
                 grace: timedelta = DEFAULT_GRACE, dry_run: bool = False, log: Log | None = None,
                 progress: Log | None = None, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.url = url
        self.bucket, self.prefix = parse_url(url)
        self.client = client
        self.manifest_path, self.state_path = manifest_path, state_path
        self.grace, self.dry_run, self.log, self.now = grace, dry_run, log, now
        self.progress = progress
        self.warnings: list[str] = []
        self.actions = Actions()
        self._previous: Manifest | None = None
        self._pending_bytes: bytes | None = None

    def __str__(self) -> str:
        return self.url

    # -- the bucket

    def _get(self, path: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.prefix + path)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None
        except Exception as exc:  # botocore's ClientError and connection errors
            raise RenderError(f"cannot read s3://{self.bucket}/{self.prefix}{path}: {exc}",
                              hint="check the bucket, the credentials and --endpoint-url") from exc

    def put(self, path: str, data: bytes, *, media_type: str, cache: str) -> None:
        self.actions.puts.append(path)
        if self.progress and len(self.actions.puts) % 100 == 0:
            self.progress(f"{'planned' if self.dry_run else 'uploaded'} {len(self.actions.puts)} objects")
        if self.log:
            self.log(f"{'would put' if self.dry_run else 'put'} {path} ({media_type}, {len(data)} bytes)")
        if self.dry_run:
            return
        try:
            self.client.put_object(Bucket=self.bucket, Key=self.prefix + path, Body=data, ContentType=media_type,
                                   CacheControl=CACHE_CONTROL[Cache(cache)])
        except Exception as exc:
            raise RenderError(f"cannot upload s3://{self.bucket}/{self.prefix}{path}: {exc}",
                              hint="the previous tree is still served; run the publish again") from exc

    def _delete(self, paths: list[str]) -> None:
        self.actions.deletes.extend(paths)
        for path in paths:
            if self.log:
                self.log(f"{'would delete' if self.dry_run else 'delete'} {path}")
        if self.dry_run:
            return
        for start in range(0, len(paths), 1000):
            chunk = paths[start:start + 1000]
            self.client.delete_objects(Bucket=self.bucket, Delete={
                "Objects": [{"Key": self.prefix + path} for path in chunk], "Quiet": True})

    # -- the Target interface

    def current_manifest(self) -> Manifest | None:
        data = self._get(self.manifest_path)
        if data is None:
            return None
        try:
            self._previous = Manifest.from_bytes(data)
        except ValueError as exc:
            self.warnings.append(f"ignored the unreadable manifest in the bucket ({exc}); uploaded every file")
            return None
        return self._previous

    def has(self, record: Record) -> bool:
        """The bucket's manifest says the key holds these bytes (the publisher checked)."""
        return self._previous is not None and record.path in self._previous.records

    def current_state(self) -> bytes | None:
        return self._get(self.state_path)

    def replace_state(self, path: str, data: bytes) -> bool:
        if self._get(path) == data:
            self._expire(set(self._previous.records) if self._previous else set())
            return False
        self.put(path, data, media_type=JSON, cache=Cache.STATE.value)
        self._expire(set(self._previous.records) if self._previous else set())
        return True

    def stage(self) -> _S3Stage:
        return _S3Stage(self)

    # -- deletions after the grace period

    def _pending(self) -> dict[str, str]:
        data = self._pending_bytes = self._get(PENDING_KEY)
        if not data:
            return {}
        try:
            pending = orjson.loads(data).get("pending") or {}
            return {str(k): str(v) for k, v in pending.items()}
        except (orjson.JSONDecodeError, AttributeError) as exc:
            self.warnings.append(f"ignored the unreadable {PENDING_KEY} ({exc})")
            return {}

    def _expire(self, live: set[str], superseded: Iterable[str] = ()) -> None:
        """Record `superseded` keys as of now and delete the recorded ones past the grace
        period; a key that is live again is simply forgotten."""
        now = self.now()
        pending = {path: when for path, when in self._pending().items() if path not in live}
        stamp = now.isoformat(timespec="seconds").replace("+00:00", "Z")
        for path in superseded:
            pending.setdefault(path, stamp)
            self.actions.deferred.append(path)
        due = sorted(path for path, when in pending.items()
                     if datetime.fromisoformat(when.replace("Z", "+00:00")) <= now - self.grace)
        if due:
            self._delete(due)
        remaining = {path: pending[path] for path in sorted(pending) if path not in due}
        body = orjson.dumps({"generator": f"mcp-mirror {__version__}", "graceSeconds": int(self.grace.total_seconds()),
                             "pending": remaining}, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
        if (remaining or self._pending_bytes is not None) and body != self._pending_bytes:
            self.put(PENDING_KEY, body, media_type=JSON, cache=Cache.STATE.value)


class _S3Stage:
    def __init__(self, target: S3Target) -> None:
        self.target = target
        self.old = target._previous.records if target._previous is not None else {}
        self.spool = tempfile.mkdtemp(prefix="mcp-mirror-s3-")
        self.overwrites: list[tuple[str, str, str, str]] = []  # path, spooled file, media type, cache
        self.seen: set[str] = set()

    def keep(self, record: Record) -> bool:
        self.seen.add(record.path)
        return record.path in self.old

    def write(self, path: str, data: bytes | Iterable[bytes], *, media_type: str = JSON,
              cache: str = Cache.API.value) -> None:
        body = data if isinstance(data, bytes) else b"".join(data)
        self.seen.add(path)
        if path not in self.old and path not in (self.target.manifest_path, self.target.state_path):
            self.target.put(path, body, media_type=media_type, cache=cache)
            return
        spooled = os.path.join(self.spool, str(len(self.overwrites)))
        with open(spooled, "wb") as handle:
            handle.write(body)
        self.overwrites.append((path, spooled, media_type, cache))

    def commit(self) -> str:
        try:
            for path, spooled, media_type, cache in self.overwrites:  # in write order: state last
                with open(spooled, "rb") as handle:
                    self.target.put(path, handle.read(), media_type=media_type, cache=cache)
            live = self.seen | {self.target.manifest_path, self.target.state_path}
            self.target._expire(live, sorted(set(self.old) - live))
        finally:
            self.abort()
        return "current"

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            shutil.rmtree(self.spool)


def make_client(*, endpoint_url: str | None = None) -> Any:
    """A boto3 S3 client; credentials and region come from the usual AWS configuration."""
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=endpoint_url,
                        config=Config(retries={"max_attempts": 5, "mode": "standard"}))
