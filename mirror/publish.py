"""Publish a rendered site to a target, atomically and verifiably.

The algorithm is the same for every target (bandersnatch's storage plugins are the
model): stream the entries in write order, reuse what the previous manifest says is
unchanged (by the entry's source, else by digest) without reading it back, write the
rest, then the manifest, then the state document that names the manifest's digest.

`LocalTarget` keeps whole generations beside the output path and makes `--out` a
symlink to the current one, swapped with one rename: a crash, SIGKILL or full disk at
any moment leaves the previous generation served whole, and the next run starts over.
Unchanged files are hard links to the previous generation: same bytes, same mtime, so
`rsync -a`, `aws s3 sync` and `rclone` send only what changed.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import hashlib
import io
import os
import re
import shutil
import stat
import sys
import tempfile
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

from mirror import __version__
from mirror.errors import RenderError
from mirror.hosts import JSON
from mirror.plan import Cache, Entry, Kind
from mirror.render import Sealed, Site

Progress = Callable[[str], None]
KEEP_GENERATIONS = 2  # the current one and the one before, for clients part-way through paging
GENERATION = re.compile(r"g(\d{6,})")  # a generation's name, here and in a bucket: g000001, g000002, ...


def generation_number(name: str) -> int | None:
    match = GENERATION.fullmatch(name)
    return int(match[1]) if match else None


def next_generation(names: Iterable[str]) -> str:
    """The name after the highest generation among `names` (g000001 when there is none)."""
    numbers = [n for name in names if (n := generation_number(name)) is not None]
    return f"g{max(numbers, default=0) + 1:06d}"


@dataclass(frozen=True, slots=True)
class Record:
    """One file as the manifest lists it."""

    path: str
    size: int
    sha256: str
    media_type: str
    cache: str
    kind: int
    source: str | None = None

    def as_json(self) -> dict:
        return {"path": self.path, "size": self.size, "sha256": self.sha256, "type": self.media_type,
                "cache": self.cache, "kind": self.kind, "source": self.source}


@dataclass
class Manifest:
    """Every published file but the state document, which names this manifest's digest."""

    context: str
    records: dict[str, Record] = field(default_factory=dict)
    sha256: str = ""  # of the bytes it was read from
    content: str = ""  # what the tree was rendered from (`Site.content_key`); "" when unknown

    def chunks(self) -> Iterator[bytes]:
        """The manifest's bytes in pieces, a file a line (diffs and grep stay readable), so
        a hundred thousand records are never one string in memory."""
        head = orjson.dumps({"generator": f"mcp-mirror {__version__}", "context": self.context,
                             **({"content": self.content} if self.content else {})})
        yield head[:-1] + b',"files":[\n'
        separator = b""
        for path in sorted(self.records):
            yield separator + orjson.dumps(self.records[path].as_json())
            separator = b",\n"
        yield b"\n]}\n"

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        """Raises ValueError when `data` is not a manifest this version can read."""
        return cls.from_lines(io.BytesIO(data))

    @classmethod
    def from_lines(cls, lines: Iterable[bytes]) -> Manifest:
        """Read a line at a time (the format is a file a line), so neither the document nor
        a list of its lines is ever held whole. Raises ValueError as `from_bytes` does."""
        hasher = hashlib.sha256()
        try:
            lines = iter(lines)
            first = next(lines, b"")
            hasher.update(first)
            if not first.endswith(b',"files":[\n'):
                raise ValueError("not a file a line")
            head = orjson.loads(first.removesuffix(b',"files":[\n') + b"}")
            records, last = {}, b""
            for line in lines:
                hasher.update(line)
                if last:
                    item = orjson.loads(last.rstrip(b"\n").removesuffix(b","))
                    record = Record(str(item["path"]), int(item["size"]), str(item["sha256"]),
                                    sys.intern(str(item["type"])), sys.intern(str(item["cache"])), int(item["kind"]),
                                    item.get("source"))
                    records[record.path] = record
                last = line
            if last != b"]}\n":
                raise ValueError("not a file a line")
            return cls(str(head["context"]), records, hasher.hexdigest(), content=str(head.get("content") or ""))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise ValueError(f"not an mcp-mirror manifest: {exc}") from exc


@dataclass(frozen=True)
class PublishResult:
    written: int
    unchanged: int
    removed: int
    generation: str
    warnings: tuple[str, ...] = ()

    @property
    def files(self) -> int:
        return self.written + self.unchanged


class Stage(Protocol):
    """A generation being published; nothing of it is served until `commit`."""

    def keep(self, record: Record) -> bool:
        """Reuse the current copy of an unchanged file; False when it cannot be reused."""

    def write(self, path: str, data: bytes | Iterable[bytes], *, media_type: str, cache: str) -> None:
        """Media type and cache class travel with the bytes, for targets that store headers."""

    def commit(self) -> str:
        """Make the generation current, atomically; returns its name."""

    def abort(self) -> None: ...


class Target(Protocol):
    """Where a tree is published (a local directory now; object storage later)."""

    def current_manifest(self) -> Manifest | None:
        """The manifest of what is served now; None when there is none (or it is unreadable)."""

    def stage(self) -> Stage: ...

    def has(self, record: Record) -> bool:
        """Whether the served copy of an unchanged file can be reused as it is."""

    def current_state(self) -> bytes | None:
        """The state document served now; None when there is none."""

    def replace_state(self, path: str, data: bytes) -> bool:
        """Rewrite the state document of the current generation in place, atomically,
        unless it already has these bytes; True when it was written."""

    @property
    def warnings(self) -> list[str]: ...


def publish(site: Site, target: Target, *, progress: Progress | None = None) -> PublishResult:
    """Publish `site` to `target`; an unchanged tree only gets its new state document."""
    with _collector_paused():
        return _publish(site, target, progress=progress)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """A publish makes hundreds of thousands of small acyclic objects (records, paths);
    Python's cycle collector would rescan them all over and over, for nothing."""
    thresholds = gc.get_threshold()
    gc.freeze()  # what exists now is never rescanned
    gc.set_threshold(50_000, 50, 1000)  # young cycles still go; full rescans become rare
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def _publish(site: Site, target: Target, *, progress: Progress | None) -> PublishResult:
    previous = target.current_manifest()
    if previous is not None and site.content_key and previous.content == site.content_key:
        restated = _restated(site, target, previous)
        if restated is not None:
            return restated
    trusted = previous is not None and previous.context == site.context
    old = previous.records if previous is not None else {}
    manifest = Manifest(site.context, content=site.content_key)
    run = _Run(target, eager=previous is None)
    written = 0
    try:
        for done, entry in enumerate(site.entries(), 1):
            if entry.path in manifest.records:
                raise RenderError(f"two files at {entry.path}", hint="report this: it is a bug in mcp-mirror")
            before = old.get(entry.path)
            if trusted and before is not None and entry.source is not None and before.source == entry.source \
                    and before.media_type == entry.media_type:
                record = before  # same inputs, same bytes: the body is not even made
            else:
                data = entry.data()
                record = _record(entry, data)
                if before is None or (before.sha256, before.size) != (record.sha256, record.size):
                    manifest.records[entry.path] = record
                    run.write(entry.path, data, media_type=entry.media_type, cache=entry.cache.value)
                    written += 1
                    if progress and written % 2000 == 0:
                        progress(f"published {done} files, {written} written")
                    continue
                if (before.cache, before.kind) == (record.cache, record.kind):
                    record = before
            manifest.records[entry.path] = record
            if not run.reuse(record, entry):
                written += 1
        removed = len(old.keys() - manifest.records.keys())
        unchanged = run.stage is None and removed == 0 and previous is not None and previous.records == manifest.records
        if unchanged:
            manifest_sha256 = previous.sha256
        else:
            hasher = hashlib.sha256()
            run.write(site.manifest_path(), _hashing(site.document_chunks(manifest.chunks()), hasher),
                      media_type=JSON, cache=Cache.API.value)
            manifest_sha256 = hasher.hexdigest()
        sealed = Sealed(site.manifest_path(), manifest_sha256,
                        files=len(manifest.records) + 2, bytes=sum(r.size for r in manifest.records.values()))
        state = site.state_entry(sealed)
        if unchanged:
            written = int(target.replace_state(state.path, state.data()))
            return PublishResult(written=written, unchanged=len(manifest.records) + 2 - written, removed=0,
                                 generation="current", warnings=tuple(target.warnings))
        run.write(state.path, state.data(), media_type=state.media_type, cache=state.cache.value)
        generation = run.stage.commit()
    except BaseException as exc:
        if run.stage is not None:
            run.stage.abort()
        if isinstance(exc, OSError):
            raise RenderError(f"cannot publish the site to {target}: {exc.strerror or exc}",
                              hint="check free space and permissions; the previous tree is still served whole") from exc
        raise
    return PublishResult(written=written + 2, unchanged=len(manifest.records) - written, removed=removed,
                         generation=generation, warnings=tuple(target.warnings))


def _restated(site: Site, target: Target, previous: Manifest) -> PublishResult | None:
    """The tree served now was rendered from this very data by this very renderer, so every
    file but the state document would come out byte for byte the same: only the state
    document is made (from the one served, as `Site.restate` checks). None: render it all."""
    served = target.current_state()
    state = site.restate(served, manifest_sha256=previous.sha256) if served is not None else None
    if state is None:
        return None
    written = int(target.replace_state(state.path, state.data()))
    return PublishResult(written=written, unchanged=len(previous.records) + 2 - written, removed=0,
                         generation="current", warnings=tuple(target.warnings))


class _Run:
    """One publish's stage, opened only once something differs, so an unchanged tree costs
    no copy: until then unchanged files are only noted, and linked when the stage opens."""

    def __init__(self, target: Target, *, eager: bool) -> None:
        self.target = target
        self.stage: Stage | None = target.stage() if eager else None
        self._kept: list[Record] = []

    def _open(self) -> Stage:
        if self.stage is None:
            self.stage = self.target.stage()
            for record in self._kept:
                if not self.stage.keep(record):
                    raise RenderError(f"the published copy of {record.path} changed during the render",
                                      hint="run `mcp-mirror verify` to see what changed, then render again")
            self._kept.clear()
        return self.stage

    def write(self, path: str, data: bytes | Iterable[bytes], *, media_type: str, cache: str) -> None:
        self._open().write(path, data, media_type=media_type, cache=cache)

    def reuse(self, record: Record, entry: Entry) -> bool:
        """Reuse the served copy of an unchanged file; False when it had to be written afresh
        (missing, or a planted link: never followed, never reused)."""
        if self.stage is None and self.target.has(record):
            self._kept.append(record)
            return True
        stage = self._open()
        if stage.keep(record):
            return True
        stage.write(record.path, entry.data(), media_type=record.media_type, cache=record.cache)
        return False


def _hashing(chunks: Iterable[bytes], hasher: Any) -> Iterator[bytes]:
    for chunk in chunks:
        hasher.update(chunk)
        yield chunk


def _record(entry: Entry, data: bytes) -> Record:
    return Record(entry.path, len(data), hashlib.sha256(data).hexdigest(), entry.media_type, entry.cache.value,
                  int(entry.kind), entry.source)


# -- the local directory target -------------------------------------------------


def folds_names(directory: Path) -> bool:
    """Whether `directory`'s file system takes two spellings of a name for one file: case
    (the defaults of macOS and Windows) or Unicode normalization (macOS). Probed with a file
    of our own, since a volume's settings, not its platform, decide."""
    fd, probe = tempfile.mkstemp(prefix=".probe-case-\u00e9-", dir=directory)
    os.close(fd)
    try:
        name = Path(probe).name
        return any(os.path.exists(directory / twin) for twin in (name.upper(), unicodedata.normalize("NFD", name)))
    finally:
        os.unlink(probe)


class LocalTarget:
    """`out` is a symlink to `.<out>.generations/gNNNNNN`, swapped with one rename."""

    def __init__(self, out: Path, *, keep: int = KEEP_GENERATIONS, manifest_path: str, state_path: str) -> None:
        self.out = Path(out).absolute()
        self.store = self.out.parent / f".{self.out.name}.generations"
        self.keep_generations = max(keep, 1)
        self.manifest_path = manifest_path
        self.state_path = state_path
        self.warnings: list[str] = []
        self._lock: int | None = None
        self._current: Path | None = None  # the served generation, read once the lock is held
        self.folds_names = False  # whether the output's file system takes two spellings for one name

    def __str__(self) -> str:
        return str(self.out)

    # -- lifecycle

    def __enter__(self) -> LocalTarget:
        self._prepare()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def _prepare(self) -> None:
        if self.out.exists() and not self.out.is_dir():
            raise RenderError(f"output path {self.out} is a file, not a directory", hint="pass another --out")
        try:
            self.store.mkdir(parents=True, exist_ok=True)
            self._lock = os.open(self.store / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RenderError(f"cannot prepare {self.store}: {exc.strerror or exc}",
                              hint="check the permissions of the output's parent directory") from exc
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RenderError(f"another mcp-mirror is publishing to {self.out}",
                              hint="wait for it to finish, or check for a stuck process") from None
        self.folds_names = folds_names(self.store)
        for stale in self.store.glob(".staging-*"):  # left by a killed run
            shutil.rmtree(stale, ignore_errors=True)
        self._adopt_plain_directory()
        self._current = self.current()

    def _adopt_plain_directory(self) -> None:
        """A tree from before generations (or an empty directory) becomes generation one."""
        if self.out.is_symlink() or not self.out.exists():
            if self.out.is_symlink() and self.current() is None:
                raise RenderError(f"{self.out} is a symlink that does not point into {self.store}",
                                  hint="remove the link, or pass another --out")
            return
        if not any(self.out.iterdir()):
            self.out.rmdir()
            return
        if not (self.out / self.state_path).is_file() and not (self.out / self.manifest_path).is_file() \
                and not any((self.out / name).exists() for name in ("v0.1", "index.html")):
            raise RenderError(f"{self.out} is a directory mcp-mirror did not make",
                              hint="pass an empty or new --out: the output is replaced as a whole")
        adopted = self.store / self._next_name()
        os.rename(self.out, adopted)
        self._point_at(adopted.name)

    # -- what is served

    def current(self) -> Path | None:
        """The generation `out` points at, if it points into our store."""
        try:
            target = os.readlink(self.out)
        except (FileNotFoundError, OSError):
            return None
        resolved = (self.out.parent / target)
        if resolved.parent != self.store or generation_number(resolved.name) is None or not resolved.is_dir():
            return None
        return resolved

    def current_manifest(self) -> Manifest | None:
        current = self.current()
        if current is None:
            return None
        try:
            with open(current / self.manifest_path, "rb") as lines:
                return Manifest.from_lines(lines)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            self.warnings.append(f"ignored the unreadable manifest of {current.name} ({exc}); wrote every file")
            return None

    def has(self, record: Record) -> bool:
        return self._current is not None and _reusable(f"{self._current}/{record.path}", record)

    def current_state(self) -> bytes | None:
        current = self.current()
        try:
            return (current / self.state_path).read_bytes() if current is not None else None
        except OSError:
            return None

    def replace_state(self, path: str, data: bytes) -> bool:
        assert self._current is not None
        target = self._current / path
        with contextlib.suppress(OSError):
            if os.lstat(target).st_size == len(data) and target.read_bytes() == data:
                return False
        write_atomically(target, data)
        return True

    def stage(self) -> _LocalStage:
        return _LocalStage(self)

    # -- generations

    def _generations(self) -> list[Path]:
        return sorted((p for p in self.store.iterdir() if generation_number(p.name) is not None),
                      key=lambda p: generation_number(p.name) or 0)

    def _next_name(self) -> str:
        return next_generation(p.name for p in self._generations())

    def _point_at(self, name: str) -> None:
        link = self.out.parent / f".{self.out.name}.swap-{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            link.unlink()
        os.symlink(f"{self.store.name}/{name}", link)
        os.replace(link, self.out)  # the one atomic step: before it the old tree, after it the new

    def _prune(self) -> int:
        current = self.current()
        old = [p for p in self._generations() if p != current]
        removed = 0
        for generation in old[: max(len(old) - (self.keep_generations - 1), 0)]:
            shutil.rmtree(generation, ignore_errors=True)
            removed += 1
        return removed


class _LocalStage:
    def __init__(self, target: LocalTarget) -> None:
        self.target = target
        self.current = target.current()
        self.dir = target.store / f".staging-{os.getpid()}"
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir()
        self._base = f"{self.dir}/"  # plain strings: a hundred thousand files, no pathlib churn
        self._current = f"{self.current}/" if self.current is not None else None
        self._dirs: set[str] = {""}

    def _mkdir(self, parent: str) -> None:
        """Make `parent` and whatever above it is missing, each with one syscall."""
        missing = []
        while parent not in self._dirs:
            missing.append(parent)
            parent = parent.rpartition("/")[0]
        for directory in reversed(missing):
            os.mkdir(self._base + directory)
            self._dirs.add(directory)

    def keep(self, record: Record) -> bool:
        if self._current is None:
            return False
        source = self._current + record.path
        if not _reusable(source, record):
            return False
        self._mkdir(record.path.rpartition("/")[0])
        try:
            os.link(source, self._base + record.path, follow_symlinks=False)
        except OSError:
            return False
        return True

    def write(self, path: str, data: bytes | Iterable[bytes], *, media_type: str = "", cache: str = "") -> None:
        self._mkdir(path.rpartition("/")[0])
        fd = os.open(self._base + path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            for chunk in (data,) if isinstance(data, bytes) else data:
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
        finally:
            os.close(fd)

    def commit(self) -> str:
        name = self.target._next_name()
        final = self.target.store / name
        os.rename(self.dir, final)
        self.target._point_at(name)
        self.target._prune()
        return name

    def abort(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _reusable(path: str | Path, record: Record) -> bool:
    """A regular file of the recorded size: a planted link, or a file changed behind our
    back, is never followed and never reused."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and info.st_size == record.size


def write_atomically(target: Path, data: bytes) -> None:
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        temp.write_bytes(data)
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def iter_tree(root: Path) -> Iterator[tuple[str, os.stat_result]]:
    """Every entry below `root` (relative POSIX path, lstat), links reported, never followed."""
    stack = [""]
    while stack:
        rel = stack.pop()
        with os.scandir(root / rel if rel else root) as it:
            for item in it:
                path = f"{rel}/{item.name}" if rel else item.name
                info = item.stat(follow_symlinks=False)
                if stat.S_ISDIR(info.st_mode):
                    stack.append(path)
                else:
                    yield path, info


__all__ = ["Kind", "LocalTarget", "Manifest", "PublishResult", "Record", "Target", "publish"]
