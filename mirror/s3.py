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

Behind CloudFront there is an atomic step after all: the distribution's origin path. With
an `OriginSwitch`, each publish is a whole generation under `PREFIX/gNNNNNN/` (changed keys
uploaded, unchanged ones copied inside the bucket from the generation served now), and one
UpdateDistribution moves every edge from the old whole tree to the new one. A publish killed
at any moment before that leaves the old generation served untouched; its half-made
generation is never served and is deleted after the grace period, like the superseded one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import orjson

from mirror import __version__
from mirror.errors import RenderError, UsageError
from mirror.hosts import CACHE_CONTROL, JSON
from mirror.plan import Cache
from mirror.publish import Manifest, Record, generation_number, next_generation

PENDING_KEY = ".mcp-mirror/pending-deletions.json"
DEFAULT_GRACE = timedelta(hours=24)
COPIERS = 16  # CopyObject requests in flight: each is a server-side copy, no bytes sent
IN_FLIGHT = 1000  # copies queued before the publisher waits for them
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
    copies: list[str] = field(default_factory=list)  # unchanged keys copied into a new generation
    generation: str | None = None  # the generation made current (with an OriginSwitch)


class OriginSwitch:
    """The CloudFront distribution in front of the bucket: its S3 origin's path names the
    tree every edge serves, so one update moves clients from one whole generation to the next."""

    def __init__(self, distribution_id: str, *, client: Any, bucket: str) -> None:
        self.distribution_id, self.client, self.bucket = distribution_id, client, bucket

    def __str__(self) -> str:
        return f"CloudFront distribution {self.distribution_id}"

    def _config(self) -> tuple[dict[str, Any], str, dict[str, Any]]:
        try:
            found = self.client.get_distribution_config(Id=self.distribution_id)
        except Exception as exc:  # botocore's ClientError and connection errors
            raise RenderError(f"cannot read {self}: {exc}",
                              hint="check the distribution id and the credentials (cloudfront:GetDistributionConfig)"
                              ) from exc
        config = found["DistributionConfig"]
        origins = config["Origins"].get("Items") or []
        mine = [o for o in origins if o.get("DomainName", "").startswith(f"{self.bucket}.s3")]
        mine = mine or (origins if len(origins) == 1 else [])
        if len(mine) != 1:
            raise UsageError(f"{self} has no single origin for bucket {self.bucket}",
                             hint="give the distribution one S3 origin for the bucket")
        return config, found["ETag"], mine[0]

    def origin_path(self) -> str:
        return self._config()[2].get("OriginPath") or ""

    def point_at(self, path: str) -> None:
        config, etag, origin = self._config()
        origin["OriginPath"] = path
        try:
            self.client.update_distribution(Id=self.distribution_id, IfMatch=etag, DistributionConfig=config)
        except Exception as exc:
            raise RenderError(f"cannot switch {self} to {path}: {exc}",
                              hint="the previous generation is still served; run the publish again") from exc


class S3Target:
    """A bucket (and key prefix) as a publish target. `client` is a boto3 S3 client."""

    def __init__(self, url: str, *, client: Any, manifest_path: str, state_path: str,
                 grace: timedelta = DEFAULT_GRACE, dry_run: bool = False, log: Log | None = None,
                 progress: Log | None = None, now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 switch: OriginSwitch | None = None) -> None:
        self.url = url
        self.bucket, self.prefix = parse_url(url)
        self.root = self.prefix  # the keys of the tree served now: the prefix, or a generation in it
        self.generation: str | None = None
        self.switch = switch
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

    def _get(self, path: str, *, root: str | None = None) -> bytes | None:
        key = (self.root if root is None else root) + path
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None
        except Exception as exc:  # botocore's ClientError and connection errors
            raise RenderError(f"cannot read s3://{self.bucket}/{key}: {exc}",
                              hint="check the bucket, the credentials and --endpoint-url") from exc

    def put(self, path: str, data: bytes, *, media_type: str, cache: str, root: str | None = None) -> None:
        """Upload `path` of the served tree (or of the tree at key prefix `root`)."""
        key = (self.root if root is None else root) + path
        shown = key[len(self.prefix):]
        self.actions.puts.append(shown)
        if self.progress and len(self.actions.puts) % 100 == 0:
            self.progress(f"{'planned' if self.dry_run else 'uploaded'} {len(self.actions.puts)} objects")
        if self.log:
            self.log(f"{'would put' if self.dry_run else 'put'} {shown} ({media_type}, {len(data)} bytes)")
        if self.dry_run:
            return
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=media_type,
                                   CacheControl=CACHE_CONTROL[Cache(cache)])
        except Exception as exc:
            raise RenderError(f"cannot upload s3://{self.bucket}/{key}: {exc}",
                              hint="the previous tree is still served; run the publish again") from exc

    def copy(self, path: str, *, into: str) -> None:
        """Copy `path` of the served tree to the tree at key prefix `into`, inside the bucket:
        no bytes are sent, and the object keeps its Content-Type and Cache-Control."""
        if self.dry_run:
            return
        try:
            self.client.copy_object(Bucket=self.bucket, Key=into + path, MetadataDirective="COPY",
                                    CopySource={"Bucket": self.bucket, "Key": self.root + path})
        except Exception as exc:
            raise RenderError(f"cannot copy s3://{self.bucket}/{self.root}{path}: {exc}",
                              hint="the previous generation is still served; run the publish again") from exc

    def _delete(self, paths: list[str]) -> None:
        """Delete keys under the prefix; a path ending in "/" is a whole generation."""
        self.actions.deletes.extend(paths)
        for path in paths:
            if self.log:
                self.log(f"{'would delete' if self.dry_run else 'delete'} {path}")
        if self.dry_run:
            return
        keys = [key for path in paths for key in (self._listed(self.prefix + path) if path.endswith("/")
                                                  else (self.prefix + path,))]
        for start in range(0, len(keys), 1000):
            chunk = keys[start:start + 1000]
            self.client.delete_objects(Bucket=self.bucket, Delete={
                "Objects": [{"Key": key} for key in chunk], "Quiet": True})

    def _listed(self, prefix: str) -> Iterator[str]:
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents") or ():
                yield item["Key"]

    # -- generations (with an OriginSwitch)

    def _find_served(self) -> None:
        """Which tree the distribution serves: the prefix itself (before the first generation)
        or one of its generations; anything else is refused rather than guessed."""
        assert self.switch is not None
        served = self.switch.origin_path().strip("/")
        served = f"{served}/" if served else ""
        rest = served[len(self.prefix):] if served.startswith(self.prefix) else None
        if rest is None or (rest and generation_number(rest.rstrip("/")) is None):
            raise UsageError(f"{self.switch} serves /{served}, which is not s3://{self.bucket}/{self.prefix} "
                             "or a generation in it",
                             hint=f"set the origin path to /{self.prefix.rstrip('/')} once, then publish")
        self.root, self.generation = served, rest.rstrip("/") or None

    def _generations(self) -> list[str]:
        names = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix,
                                                                           Delimiter="/"):
            for common in page.get("CommonPrefixes") or ():
                name = common["Prefix"][len(self.prefix):].rstrip("/")
                if generation_number(name) is not None:
                    names.append(name)
        return sorted(names, key=lambda name: generation_number(name) or 0)

    # -- the Target interface

    def current_manifest(self) -> Manifest | None:
        if self.switch is not None:
            self._find_served()
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
        live = ({f"{self.generation}/"} if self.generation else set()) | (
            set(self._previous.records) if self._previous else set())
        if self._get(path) == data:
            self._expire(live)
            return False
        self.put(path, data, media_type=JSON, cache=Cache.STATE.value)
        self._expire(live)
        return True

    def stage(self) -> _S3Stage | _GenerationStage:
        return _GenerationStage(self) if self.switch is not None else _S3Stage(self)

    # -- deletions after the grace period

    def _pending(self) -> dict[str, str]:
        data = self._pending_bytes = self._get(PENDING_KEY, root=self.prefix)
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
            self.put(PENDING_KEY, body, media_type=JSON, cache=Cache.STATE.value, root=self.prefix)


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


class _GenerationStage:
    """A whole new generation beside the served one; served only once the switch points at it."""

    def __init__(self, target: S3Target) -> None:
        self.target = target
        self.old = target._previous.records if target._previous is not None else {}
        existing = target._generations()
        self.name = next_generation(existing)
        self.root = f"{target.prefix}{self.name}/"
        # generations neither served nor this one: half-made by a publish that was killed
        self.orphans = [f"{name}/" for name in existing if name != target.generation]
        self.pool = ThreadPoolExecutor(COPIERS, thread_name_prefix="mcp-mirror-copy")
        self.copying: list[Future[None]] = []

    def keep(self, record: Record) -> bool:
        if record.path not in self.old:
            return False
        target = self.target
        target.actions.copies.append(record.path)
        copied = len(target.actions.copies)
        if target.progress and copied % 1000 == 0:
            target.progress(f"{'planned' if target.dry_run else 'copied'} {copied} unchanged objects")
        if target.log:
            target.log(f"{'would copy' if target.dry_run else 'copy'} {record.path} into {self.name}")
        self.copying.append(self.pool.submit(target.copy, record.path, into=self.root))
        if len(self.copying) >= IN_FLIGHT:
            self._drain()
        return True

    def _drain(self) -> None:
        done, _ = wait(self.copying, return_when=FIRST_EXCEPTION)
        for future in done:
            future.result()  # the first failure stops the publish: nothing new is served
        self.copying = [future for future in self.copying if not future.done()]
        if self.copying:
            self._drain()

    def write(self, path: str, data: bytes | Iterable[bytes], *, media_type: str = JSON,
              cache: str = Cache.API.value) -> None:
        body = data if isinstance(data, bytes) else b"".join(data)
        self.target.put(path, body, media_type=media_type, cache=cache, root=self.root)

    def commit(self) -> str:
        target = self.target
        try:
            self._drain()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)
        origin = "/" + self.root.rstrip("/")
        if target.log:
            target.log(f"{'would switch' if target.dry_run else 'switch'} {target.switch} to {origin}")
        if not target.dry_run:
            assert target.switch is not None
            target.switch.point_at(origin)
        target.actions.generation = self.name
        # what the switch left unserved: the generation before (or the keys of a tree that was
        # served at the prefix itself) and half-made ones, all deleted after the grace period
        before = [f"{target.generation}/"] if target.generation else (
            [*sorted(self.old), target.manifest_path, target.state_path] if self.old else [])
        target._expire({f"{self.name}/"}, [*before, *self.orphans])
        return self.name

    def abort(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def make_client(*, endpoint_url: str | None = None) -> Any:
    """A boto3 S3 client; credentials and region come from the usual AWS configuration."""
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=endpoint_url,
                        config=Config(retries={"max_attempts": 5, "mode": "standard"},
                                      max_pool_connections=COPIERS + 4))


def make_cloudfront_client() -> Any:
    """CloudFront's API (its endpoint can be set with AWS_ENDPOINT_URL_CLOUDFRONT)."""
    import boto3
    from botocore.config import Config

    return boto3.client("cloudfront", config=Config(retries={"max_attempts": 5, "mode": "standard"}))
