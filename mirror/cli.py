"""The `mcp-mirror` command: thin click commands over `mirror.pipeline`.

The only module that imports click. MirrorError becomes one line on stderr and an exit
code; stdout carries results only, so it can be piped.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import orjson
from pydantic import ValidationError

from mirror import __version__, governance, hosts, paths, pipeline
from mirror.diff import KINDS
from mirror.errors import MirrorError, UsageError, VerifyError
from mirror.settings import (
    DEFAULT_BASE_URL,
    DEFAULT_DB,
    DEFAULT_OUT,
    DEFAULT_RATE,
    DEFAULT_RESPONSE_DEADLINE,
    DEFAULT_UPSTREAM,
    Settings,
)
from mirror.text import printable
from mirror.verify import MAX_PROBLEMS_SHOWN


class MirrorGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MirrorError as exc:
            click.echo(f"mcp-mirror: error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            # A crawl commits only at its end, so an interrupted one saved nothing.
            click.echo("\nmcp-mirror: interrupted", err=True)
            ctx.exit(130)


def upstream_option(f: Callable) -> Callable:
    return click.option("--upstream", envvar="MCP_MIRROR_UPSTREAM", default=DEFAULT_UPSTREAM, show_default=True,
                        help="Base URL of the v0.1 registry to crawl (env MCP_MIRROR_UPSTREAM).")(f)


def deadline_option(f: Callable) -> Callable:
    """--deadline and --response-deadline: how long a crawl, and one response of it, may take."""
    f = click.option("--response-deadline", envvar="MCP_MIRROR_RESPONSE_DEADLINE", default=DEFAULT_RESPONSE_DEADLINE,
                     show_default=True, type=float,
                     help="Seconds one upstream response (headers and body) may take; a slower or trickled one is "
                          "retried like a timeout (env MCP_MIRROR_RESPONSE_DEADLINE).")(f)
    return click.option("--deadline", envvar="MCP_MIRROR_DEADLINE", default=3600.0, show_default=True, type=float,
                        help="Seconds the whole crawl may take, retries included; past it the crawl stops and "
                             "nothing is saved (env MCP_MIRROR_DEADLINE).")(f)


def sync_options(f: Callable) -> Callable:
    """--full, --full-every and --rate: how a crawl keeps the mirror current."""
    f = click.option("--rate", envvar="MCP_MIRROR_RATE", default=DEFAULT_RATE, show_default=True, type=float,
                     help="Requests a minute sent to the upstream, at most (upstream allows about 180 a minute "
                          "per address; env MCP_MIRROR_RATE).")(f)
    f = click.option("--full-every", envvar="MCP_MIRROR_FULL_EVERY", default="24h", show_default=True,
                     help="Crawl in full when the last full crawl is older than this (90s, 30m, 24h, 7d); "
                          "a full crawl is what finds rows that vanished upstream (env MCP_MIRROR_FULL_EVERY).")(f)
    return click.option("--full", is_flag=True,
                        help="Crawl every row now instead of the rows updated since the last crawl.")(f)


def db_option(f: Callable) -> Callable:
    return click.option("--db", envvar="MCP_MIRROR_DB", default=DEFAULT_DB, show_default=True,
                        type=click.Path(dir_okay=False, path_type=Path),
                        help="DuckDB snapshot database (env MCP_MIRROR_DB).")(f)


def site_options(f: Callable) -> Callable:
    """--out and --base-url: where the tree goes and the URL it will answer at."""
    f = click.option("--base-url", envvar="MCP_MIRROR_BASE_URL", default=DEFAULT_BASE_URL, show_default=True,
                     help="Public URL the site will be served at; its path becomes the API prefix "
                          "(env MCP_MIRROR_BASE_URL).")(f)
    return click.option("--out", envvar="MCP_MIRROR_OUT", default=DEFAULT_OUT, show_default=True,
                        type=click.Path(path_type=Path),
                        help="Directory to write the static site to (env MCP_MIRROR_OUT).")(f)


def profile_option(f: Callable) -> Callable:
    return click.option("--profile", "profile", envvar="MCP_MIRROR_PROFILE", default=hosts.DEFAULT_PROFILE,
                        show_default=True, type=click.Choice(list(hosts.PROFILES)),
                        help="Host profile the tree is made for (env MCP_MIRROR_PROFILE); see README's Hosting.")(f)


def curation_options(f: Callable) -> Callable:
    """--policy and --local: what an organization's mirror serves (applied at render)."""
    f = click.option("--local", "local", envvar="MCP_MIRROR_LOCAL", type=click.Path(file_okay=False, path_type=Path),
                     help="Directory of the organization's own server.json files, merged in (env MCP_MIRROR_LOCAL).")(f)
    return click.option("--policy", "policy", envvar="MCP_MIRROR_POLICY",
                        type=click.Path(dir_okay=False, path_type=Path),
                        help="Curation policy (TOML): which servers are served; see README's Governance "
                             "walkthrough (env MCP_MIRROR_POLICY).")(f)


def make_settings(**values: Any) -> Settings:
    try:
        return Settings(**{k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        option = str(first["loc"][0]).replace("_", "-")
        raise UsageError(f"--{option}: {first['msg'].removeprefix('Value error, ')}") from None


class _ProgressLine:
    """What pipeline reports progress to: a message, and pages done out of those expected."""

    def __init__(self, bar: Any, task: Any) -> None:
        self.bar, self.task = bar, task

    def __call__(self, message: str) -> None:
        self.bar.update(self.task, description=printable(message))

    def count(self, done: int, total: int | None) -> None:
        self.bar.update(self.task, completed=done, total=total)


@contextmanager
def progress_display() -> Iterator[_ProgressLine | None]:
    """A live progress bar on stderr (rich: spinner, message, a bar where the number of pages
    can be told, time so far) when a person is watching; nothing at all when stderr is not a
    terminal (cron, CI, pipes)."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}", markup=False), BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), console=Console(stderr=True), transient=True) as bar:
        yield _ProgressLine(bar, bar.add_task("starting", total=None))


@click.group(cls=MirrorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mcp-mirror")
def cli() -> None:
    """Mirror the MCP Registry into DuckDB snapshots and a static v0.1 API site.

    Typical use: `mcp-mirror build --base-url https://mirror.example.org`, then upload
    the `site/` directory to any static host.
    """


@cli.command()
@upstream_option
@db_option
@deadline_option
@sync_options
def crawl(upstream: str, db: Path, deadline: float, response_deadline: float, full: bool, full_every: str,
          rate: float) -> None:
    """Crawl the upstream registry into a new snapshot.

    The first crawl, and one every --full-every, fetches every row of GET
    {upstream}/v0.1/servers (deleted rows included); the others ask only for the rows
    updated since the last crawl (updated_since) and carry the rest over. Either way the
    snapshot lands whole, or nothing does.

    Example: mcp-mirror crawl --upstream https://registry.modelcontextprotocol.io
    """
    settings = make_settings(upstream=upstream, db=db, deadline=deadline, response_deadline=response_deadline,
                             full_every=full_every, rate=rate)
    with progress_display() as progress:
        result = pipeline.crawl(settings, full=full, progress=progress)
    warn(result.warnings)
    snap = result.snapshot
    click.echo(f"snapshot {snap.id} ({snap.mode}): {snap.rows} rows, {snap.servers} servers, "
               f"{result.changes} changes, {snap.rejected} rejected ({snap.requests} requests to {snap.upstream})")


@cli.command()
@db_option
@click.option("--from", "from_id", type=int, help="Older snapshot id (default: the one before --to).")
@click.option("--to", "to_id", type=int, help="Newer snapshot id (default: the latest).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line: kind, name, version, details.")
def diff(db: Path, from_id: int | None, to_id: int | None, as_json: bool) -> None:
    """Show what changed between two snapshots (default: the last two).

    Kinds: server_added, version_added, version_updated (with changed JSON paths),
    status_changed, latest_changed, version_removed, server_removed; entries the
    newer crawl rejected are listed too.

    Example: mcp-mirror diff --json | jq 'select(.kind == "status_changed")'
    """
    result = pipeline.diff(make_settings(db=db), from_id=from_id, to_id=to_id)
    if as_json:
        for change in result.changes:
            click.echo(orjson.dumps(change.as_dict()).decode())
        for rej in result.rejected:
            click.echo(orjson.dumps({"kind": "rejected", "name": rej.name, "version": rej.version,
                                     "reason": rej.reason, "position": rej.position}).decode())
        return
    old = f"snapshot {result.old.id}" if result.old else "nothing"
    click.echo(f"{old} -> snapshot {result.new.id}: {len(result.changes)} changes, {len(result.rejected)} rejected")
    for kind in KINDS:
        group = [c for c in result.changes if c.kind == kind]
        if group:
            click.echo(f"\n{kind} ({len(group)})")
            for change in group:
                click.echo(f"  {printable(describe(change))}")
    if result.rejected:
        click.echo(f"\nrejected ({len(result.rejected)})")
        for rej in result.rejected:
            click.echo(printable(f"  #{rej.position} {rej.name or '?'} {rej.version or '?'}: {rej.reason}"))


def describe(change: pipeline.Change) -> str:
    label = f"{change.name} {change.version}" if change.version else change.name
    detail = change.detail
    if change.kind == "version_updated":
        return f"{label}: {', '.join(detail.get('paths') or ['key order'])}"
    if change.kind in ("status_changed", "latest_changed"):
        message = f" ({detail['message']})" if detail.get("message") else ""
        what = change.name if change.kind == "latest_changed" else label
        return f"{what}: {detail.get('from')} -> {detail.get('to')}{message}"
    return label


@cli.command()
@db_option
@site_options
@profile_option
@curation_options
@click.option("--snapshot", "snapshot_id", type=int, help="Snapshot id to render (default: the latest).")
def render(db: Path, out: Path, base_url: str, profile: str, policy: Path | None, local: Path | None,
           snapshot_id: int | None) -> None:
    """Publish the static v0.1 API tree of a snapshot at OUT, atomically.

    OUT becomes a symlink to the current generation (kept beside it in .OUT.generations);
    same snapshot, same bytes, and unchanged files are not rewritten.

    Example: mcp-mirror render --out site --base-url https://example.org/mcp --profile netlify
    """
    with progress_display() as progress:
        result = pipeline.render(make_settings(db=db, out=out, base_url=base_url, profile=profile, policy=policy,
                                               local=local), snapshot_id=snapshot_id, progress=progress)
    warn(result.warnings)
    w = result.written
    click.echo(f"snapshot {result.snapshot.id} -> {out}: {w.written} written, {w.unchanged} unchanged, "
               f"{w.removed} removed")
    if result.curation is not None:
        print_curation(result.curation, result.collisions)


def print_curation(curation: Any, collisions: list[str]) -> None:
    click.echo(f"policy: {curation.rows_admitted} rows admitted, {curation.rows_excluded} excluded")
    for rule, counts in curation.by_rule().items():
        click.echo(printable(f"  {rule}: {counts['admitted']} admitted, {counts['excluded']} excluded"))
    for name, version in curation.relatested:
        click.echo(printable(f"  latest moved by the policy: {name} {version}"))
    for name in collisions:
        click.echo(printable(f"  collision (upstream and --local): {name}"))


def warn(lines: Iterable[str]) -> None:
    for line in lines:
        click.echo(printable(f"mcp-mirror: warning: {line}"), err=True)


@cli.command()
@upstream_option
@db_option
@site_options
@profile_option
@deadline_option
@sync_options
@curation_options
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
def build(upstream: str, db: Path, out: Path, base_url: str, profile: str, deadline: float, response_deadline: float,
          full: bool, full_every: str, rate: float, policy: Path | None, local: Path | None, as_json: bool) -> None:
    """Crawl (incrementally once a full snapshot exists), diff and render, then print a summary.

    Example: mcp-mirror build --out site --base-url https://mirror.example.org
    """
    settings = make_settings(upstream=upstream, db=db, out=out, base_url=base_url, profile=profile,
                             deadline=deadline, response_deadline=response_deadline, full_every=full_every,
                             rate=rate, policy=policy, local=local)
    with progress_display() as progress:
        result = pipeline.build(settings, full=full, progress=progress)
    warn([*result.crawl.warnings, *result.render.warnings])
    s = result.summary
    if as_json:
        click.echo(orjson.dumps(s).decode())
        return
    changes = ", ".join(f"{n} {kind}" for kind, n in s["changes"].items()) or "none"
    click.echo(f"snapshot {s['snapshot']} ({s['mode']}, {s['requests']} requests): {s['rows']} rows, "
               f"{s['servers']} servers from {upstream}")
    click.echo(f"changes: {changes}")
    click.echo(f"rejected entries: {s['rejected']}" + (" (see `mcp-mirror diff`)" if s["rejected"] else ""))
    click.echo(f"files: {s['files_written']} written, {s['files_unchanged']} unchanged, "
               f"{s['files_removed']} removed in {out}")
    if result.render.curation is not None:
        print_curation(result.render.curation, result.render.collisions)
    click.echo(f"took {s['seconds']:.2f} s")


@cli.command("publish")
@click.argument("url", metavar="s3://BUCKET/PREFIX")
@db_option
@click.option("--base-url", envvar="MCP_MIRROR_BASE_URL", default=DEFAULT_BASE_URL, show_default=True,
              help="Public URL the bucket's tree will be served at (env MCP_MIRROR_BASE_URL).")
@click.option("--profile", "profile", envvar="MCP_MIRROR_PROFILE", default="s3", show_default=True,
              type=click.Choice(list(hosts.PROFILES)), help="Host profile the tree is made for.")
@curation_options
@click.option("--endpoint-url", envvar="MCP_MIRROR_S3_ENDPOINT", metavar="URL",
              help="An S3-compatible endpoint (MinIO, R2, Ceph...) instead of AWS (env MCP_MIRROR_S3_ENDPOINT).")
@click.option("--dry-run", is_flag=True, help="List what would be uploaded and deleted; change nothing.")
@click.option("--grace-hours", default=24.0, show_default=True, type=click.FloatRange(min=0),
              help="Hours a superseded object stays before a later publish deletes it.")
@click.option("--cloudfront-distribution", metavar="ID", envvar="MCP_MIRROR_CLOUDFRONT_DISTRIBUTION",
              help="Publish whole generations under PREFIX/gNNNNNN/ and switch this CloudFront distribution's "
                   "origin path to each in one update: atomic (env MCP_MIRROR_CLOUDFRONT_DISTRIBUTION).")
@click.option("--verbose", "-v", is_flag=True, help="One line per upload or deletion, on stdout.")
@click.option("--snapshot", "snapshot_id", type=int, help="Snapshot id to publish (default: the latest).")
def publish_command(url: str, db: Path, base_url: str, profile: str, policy: Path | None, local: Path | None,
                    endpoint_url: str | None, dry_run: bool, grace_hours: float, cloudfront_distribution: str | None,
                    verbose: bool, snapshot_id: int | None) -> None:
    """Render a snapshot straight into an S3 bucket, uploading only what changed.

    New keys first, changed keys next, the manifest, then the state document last, so a
    half-done publish leaves clients on the old state; superseded keys are deleted only
    after --grace-hours. With --cloudfront-distribution each publish is a whole new
    generation (unchanged keys copied inside the bucket) that one origin-path update makes
    current, so a killed publish leaves the previous tree served whole. Credentials come
    from the usual AWS configuration.

    Example: mcp-mirror publish s3://mcp-mirror/site --base-url https://mcp.example.org --policy policy.toml
    """
    def log(line: str) -> None:
        click.echo(printable(line))
        sys.stdout.flush()

    with progress_display() as progress:
        result = pipeline.publish_bucket(
            make_settings(db=db, base_url=base_url, profile=profile, policy=policy, local=local), url,
            endpoint_url=endpoint_url, dry_run=dry_run, grace_hours=grace_hours, snapshot_id=snapshot_id,
            cloudfront_distribution=cloudfront_distribution, log=log if verbose or dry_run else None,
            progress=progress)
    warn(result.render.warnings)
    a = result.actions
    verb = "would upload" if dry_run else "uploaded"
    copied = f", {len(a.copies)} copied into {a.generation}" if a.generation else ""
    click.echo(f"snapshot {result.render.snapshot.id} -> {url}: {verb} {len(a.puts)}{copied}, "
               f"{result.render.written.unchanged} unchanged, {len(a.deletes)} deleted, "
               f"{len(a.deferred)} superseded (deleted after {grace_hours:g} h)")
    if result.render.curation is not None:
        print_curation(result.render.curation, result.render.collisions)


@cli.group("policy")
def policy_group() -> None:
    """Inspect a curation policy (see README's Governance walkthrough)."""


@policy_group.command("explain")
@click.argument("name")
@click.argument("version", required=False)
@db_option
@curation_options
@click.option("--snapshot", "snapshot_id", type=int, help="Snapshot id to look in (default: the latest).")
def policy_explain(name: str, version: str | None, db: Path, policy: Path | None, local: Path | None,
                   snapshot_id: int | None) -> None:
    """Say which rule admits or excludes each version of NAME (or just VERSION), and the
    allowlist or denylist entries each gets (`export --format allowlist`).

    Example: mcp-mirror policy explain io.github.acme/tools --policy policy.toml
    """
    decisions = pipeline.explain(make_settings(db=db, policy=policy, local=local), name, version,
                                 snapshot_id=snapshot_id)
    if not decisions:
        raise UsageError(f"{name}{' ' + version if version else ''} is in neither the snapshot nor --local")
    for row, decision in decisions:
        click.echo(printable(f"{row.name} {row.version}: {decision.describe()}"))
        for line in governance.matcher_lines(row, decision):
            click.echo(printable(line))


@cli.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path),
                envvar="MCP_MIRROR_OUT", default=DEFAULT_OUT)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option("--quiet", is_flag=True, help="Do not log requests.")
def serve(directory: Path, host: str, port: int, quiet: bool) -> None:
    """Serve a rendered site with the v0.1 routing (a preview or small private host).

    Example: mcp-mirror serve site --port 8000
    """
    from mirror.serve import MirrorServer

    try:
        server = MirrorServer(directory, host, port, quiet=quiet)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    run_until_interrupted(server, directory)


def run_until_interrupted(server: Any, directory: Path) -> None:
    print_urls(directory, server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def print_urls(directory: Path, url: str) -> None:
    click.echo(f"Serving {directory} at {url}/ (Ctrl-C to stop)")
    click.echo(f"  catalog:  {url}/")
    urls = paths.Urls(url)
    click.echo(f"  v0.1 API: {urls.servers(version='latest')}")
    click.echo(f"  state:    {urls.state()}")
    click.echo(f"Point VS Code's chat.mcp.gallery.serviceUrl at {url}")


@cli.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path),
                envvar="MCP_MIRROR_OUT", default=DEFAULT_OUT)
@click.option("--against", "url", metavar="URL",
              help="Instead, run VS Code's and Copilot's requests against a deployed copy at this base URL.")
def verify(directory: Path, url: str | None) -> None:
    """Check a published tree against its manifest (or a deployed copy over HTTP).

    Reports every missing, extra, corrupt or linked file, a state document that does not
    name the manifest, a nextCursor that names no page and a listed version without its
    document; exits 1 if there is any.

    Example: mcp-mirror verify site && mcp-mirror verify --against https://mcp.example.org
    """
    report = pipeline.verify(directory, against=url)
    what = url or str(directory)
    for problem in report.problems[:MAX_PROBLEMS_SHOWN]:
        click.echo(printable(problem))
    if len(report.problems) > MAX_PROBLEMS_SHOWN:
        click.echo(f"... and {len(report.problems) - MAX_PROBLEMS_SHOWN} more")
    if not report.ok:
        count = len(report.problems)
        raise VerifyError(f"{what}: {count} problem{'' if count == 1 else 's'} in {report.checked} checks",
                          hint="the list is above; render again to repair a tree")
    click.echo(f"{what}: ok ({report.checked} checks)")




@cli.command()
@db_option
@click.option("--format", "fmt", type=click.Choice(["jsonl", "parquet", "csv", *governance.FORMATS]),
              default="jsonl", show_default=True,
              help="jsonl: one JSON object a line, documents nested; parquet and csv: documents as JSON "
                   "text. " + "; ".join(f"{f.name}: {f.help}" for f in governance.FORMATS.values())
                   + " (made from the curated snapshot: --policy, --local).")
@click.option("--changes", is_flag=True, help="Export the change records instead of the versions.")
@click.option("--snapshot", "snapshot_id", type=int,
              help="Snapshot id (default: the latest for versions, every snapshot for --changes).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="File to write (default: versions-<id>.<format>, changes.<format>, or the file "
                   "name the client knows, such as managed-settings.json).")
@curation_options
@click.option("--max-bytes", type=click.IntRange(min=0), default=governance.TOOLHIVE_MAX_BYTES, show_default=True,
              help="toolhive: the file's bound; servers past it are left out, each named (0: no bound). "
                   "The default is a Kubernetes ConfigMap's limit.")
def export(db: Path, fmt: str, changes: bool, snapshot_id: int | None, output: Path | None,
           policy: Path | None, local: Path | None, max_bytes: int) -> None:
    """Export a snapshot's versions or change records, or the curated snapshot as an
    allowlist or ToolHive registry file.

    Versions and changes are written by DuckDB's own writers; the columns are listed in the
    README (Keeping a mirror current). The governance formats are described in the README's
    Governance walkthrough; what could not get an exact entry is listed after the summary.

    Examples: mcp-mirror export --format parquet -o registry.parquet;
    mcp-mirror export --format allowlist --policy policy.toml
    """
    if fmt in governance.FORMATS:
        if changes:
            raise UsageError(f"--changes exports change records, not --format {fmt}")
        settings = make_settings(db=db, policy=policy, local=local)
        to_stdout = output == Path("-")
        made = pipeline.export_governance(
            settings, None if to_stdout else output or Path(governance.FORMATS[fmt].file_name), fmt=fmt,
            snapshot_id=snapshot_id, max_bytes=max_bytes or None)
        if to_stdout:
            sys.stdout.buffer.write(made.output.data)
            sys.stdout.flush()
        where = "standard output" if to_stdout else made.path
        click.echo(f"{made.output.summary} (snapshot {made.snapshot.id}) -> {where}", err=to_stdout)
        notes = made.output.grouped_notes()
        warn(notes[:MAX_PROBLEMS_SHOWN])
        if len(notes) > MAX_PROBLEMS_SHOWN:
            more = f"... and {len(notes) - MAX_PROBLEMS_SHOWN} more"
            explain = ": `mcp-mirror policy explain NAME` shows one server's entries"
            warn([more if fmt == "toolhive" else more + explain])
        return
    if policy is not None or local is not None:
        raise UsageError(f"--policy and --local curate the governance formats, not --format {fmt}",
                         hint=f"one of {', '.join(governance.FORMATS)}")
    settings = make_settings(db=db)
    if output is None:
        if changes:
            output = Path(f"changes{'' if snapshot_id is None else f'-{snapshot_id}'}.{fmt}")
        else:
            from mirror.store import open_store

            with open_store(settings.db, create=False) as store:
                output = Path(f"versions-{store.ok_snapshot(snapshot_id).id}.{fmt}")
    result = pipeline.export(settings, output, fmt=fmt, snapshot_id=snapshot_id, changes=changes)
    click.echo(f"{result.rows} rows ({result.what}) -> {result.path}")


@cli.command("host-config")
@click.argument("profile", required=False, type=click.Choice(list(hosts.PROFILES)))
@click.option("--out", envvar="MCP_MIRROR_OUT", default=DEFAULT_OUT, show_default=True, type=click.Path(path_type=Path),
              help="The rendered tree to configure (env MCP_MIRROR_OUT); its profile and base URL are used.")
@click.option("--base-url", envvar="MCP_MIRROR_BASE_URL",
              help="Public URL the site is served at: only for a tree not rendered yet (default: the tree's).")
@click.option("--sidecar", metavar="HOST:PORT", default=hosts.DEFAULT_SIDECAR, show_default=True,
              envvar="MCP_MIRROR_SIDECAR",
              help="Where `mcp-mirror serve` answers the queries no file holds (search, updated_since, "
                   "exact versions), for hosts that proxy them (caddy); `none` leaves them a 400.")
def host_config(profile: str | None, out: Path, base_url: str | None, sidecar: str) -> None:
    """Print the server-side configuration for the tree at --out (or for PROFILE).

    The tree's state document says which profile and base URL it was rendered for; a PROFILE
    or --base-url that disagrees is refused (render again instead). Before the first render,
    give PROFILE (and --base-url).

    nginx: directives for inside a server {} block (root set to OUT's absolute path);
    caddy: a site block; s3: the CloudFront Function and the distribution settings;
    netlify, cloudflare-pages, static: everything lives in the tree, so this explains it.

    Example: mcp-mirror host-config --out /srv/mcp
    """
    settings = make_settings(out=out, base_url=base_url)
    profile, base_url = pipeline.configured_for(settings.out, profile=profile, base_url=base_url)
    click.echo(hosts.host_config(profile, out=settings.out, base_url=base_url,
                                 sidecar=None if sidecar == "none" else sidecar), nl=False)


@cli.command()
@db_option
def snapshots(db: Path) -> None:
    """List snapshots, one line each: id, finish time, mode, requests, rows, servers, rejected,
    upstream, outcome, and why a crawl was full or what it noticed."""
    from mirror.store import open_store

    with open_store(make_settings(db=db).db, create=False) as store:
        for s in store.list_snapshots():
            outcome = s.outcome if s.outcome == "ok" else f"failed: {printable(s.error or '')}"
            note = f"\t{printable(s.note)}" if s.note else ""
            click.echo(f"{s.id}\t{s.finished_at}\t{s.mode}\t{s.requests} requests\t{s.rows} rows\t"
                       f"{s.servers} servers\t{s.rejected} rejected\t{s.upstream}\t{outcome}{note}")


@cli.command()
@click.option("--port", default=8000, show_default=True, type=int, help="Port for the mirror.")
@click.option("--upstream-port", default=0, type=int, help="Port for the sample upstream (default: any free).")
@click.option("--workdir", default=Path("demo"), show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="Where the demo database and site go.")
def demo(port: int, upstream_port: int, workdir: Path) -> None:
    """Build a mirror of the bundled sample through the real crawler, then serve it."""
    from mirror.fake_upstream import FakeUpstream
    from mirror.serve import MirrorServer

    with FakeUpstream(port=upstream_port) as upstream:
        click.echo(f"sample upstream running at {upstream.url}")
        settings = make_settings(upstream=upstream.url, db=workdir / "mirror.duckdb", out=workdir / "site",
                                 base_url=f"http://127.0.0.1:{port}")
        s = pipeline.build(settings).summary
        click.echo(f"built snapshot {s['snapshot']}: {s['rows']} rows, {s['servers']} servers, "
                   f"{s['rejected']} rejected, {s['files_written']} files written")
    try:
        server = MirrorServer(settings.out, "127.0.0.1", port)
    except OSError as exc:
        raise UsageError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}",
                         hint="pick another port with DEMO_PORT=8080 make demo") from exc
    run_until_interrupted(server, settings.out)


def main() -> None:
    cli(prog_name="mcp-mirror")
