"""A scripted sequence of upstream changes, crawled over HTTP, and the diff kinds it yields."""

import copy

import orjson
from click.testing import CliRunner
from factories import item, official, with_status

from mirror.cli import cli

A, B, C = "io.github.acme/alpha", "io.github.acme/beta", "com.example/Gamma.Tools"


def run(args, settings):
    result = CliRunner().invoke(cli, [*args, "--db", str(settings.db)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def crawl_and_diff(upstream, settings, entries, *flags):
    upstream.registry.entries = copy.deepcopy(entries)
    run(["crawl", "--upstream", upstream.url, *flags], settings)
    lines = run(["diff", "--json"], settings).splitlines()
    return [orjson.loads(line) for line in lines]


def kinds(records):
    return sorted((r["kind"], r["name"], r["version"]) for r in records)


def test_add_new_version_update_deprecate_delete_restore_remove(upstream, settings):
    a1 = item(A, "1.0.0", latest=True, published="2025-09-01T10:00:00Z")
    b1 = item(B, "1.0.0", latest=True, published="2025-09-02T10:00:00Z")
    state = [a1, b1]
    first = crawl_and_diff(upstream, settings, state)
    assert kinds(first) == sorted([("server_added", A, "1.0.0"), ("version_added", A, "1.0.0"),
                                   ("server_added", B, "1.0.0"), ("version_added", B, "1.0.0")])

    c1 = item(C, "0.1.0+build.7", latest=True, published="2025-09-03T10:00:00Z")
    state = [a1, b1, c1]
    assert kinds(crawl_and_diff(upstream, settings, state)) == [
        ("server_added", C, "0.1.0+build.7"), ("version_added", C, "0.1.0+build.7")]

    a1_old = copy.deepcopy(a1)
    official(a1_old)["isLatest"] = False  # upstream flips this without touching updatedAt
    a2 = item(A, "1.1.0", latest=True, published="2025-10-01T10:00:00Z")
    state = [a1_old, a2, b1, c1]
    records = crawl_and_diff(upstream, settings, state)
    assert kinds(records) == [("latest_changed", A, "1.1.0"), ("version_added", A, "1.1.0")]
    assert next(r for r in records if r["kind"] == "latest_changed")["from"] == "1.0.0"

    a2_edit = copy.deepcopy(a2)
    a2_edit["server"]["description"] = "Alpha, now with more tools"
    official(a2_edit)["updatedAt"] = "2025-10-02T10:00:00Z"
    state = [a1_old, a2_edit, b1, c1]
    records = crawl_and_diff(upstream, settings, state)
    assert kinds(records) == [("version_updated", A, "1.1.0")]
    assert records[0]["paths"] == ["/server/description",
                                   "/_meta/io.modelcontextprotocol.registry~1official/updatedAt"]

    a1_dep = with_status(a1_old, "deprecated", "upgrade to 1.1.0")
    state = [a1_dep, a2_edit, b1, c1]
    records = crawl_and_diff(upstream, settings, state)
    assert records == [{"kind": "status_changed", "name": A, "version": "1.0.0",
                        "from": "active", "to": "deprecated", "message": "upgrade to 1.1.0"}]

    b1_del = with_status(b1, "deleted", "malware", when="2025-11-02T00:00:00Z")
    state = [a1_dep, a2_edit, b1_del, c1]
    records = crawl_and_diff(upstream, settings, state)
    assert [(r["kind"], r["from"], r["to"]) for r in records] == [("status_changed", "active", "deleted")]

    b1_back = with_status(b1_del, "active", when="2025-11-03T00:00:00Z")
    state = [a1_dep, a2_edit, b1_back, c1]
    records = crawl_and_diff(upstream, settings, state)
    assert [(r["kind"], r["name"], r["from"], r["to"]) for r in records] == [
        ("status_changed", B, "deleted", "active")]

    # A row that vanishes bumps no updatedAt: an incremental crawl cannot see it, a full one does.
    state = [a1_dep, a2_edit, b1_back]
    assert kinds(crawl_and_diff(upstream, settings, state)) == []
    assert kinds(crawl_and_diff(upstream, settings, state, "--full")) == [
        ("server_removed", C, None), ("version_removed", C, "0.1.0+build.7")]

    # Any two snapshots can be compared, and the text view groups by kind for people.
    text = run(["diff", "--from", "1", "--to", "9"], settings)
    assert "snapshot 1 -> snapshot 9" in text
    for kind in ("version_added", "latest_changed", "version_updated", "status_changed"):
        assert f"\n{kind} (" in text
    assert f"{A} 1.0.0: active -> deprecated (upgrade to 1.1.0)" in text
    listed = [line.split("\t") for line in run(["snapshots"], settings).splitlines()]
    assert [line[2] for line in listed] == ["full", *["incremental"] * 7, "full"]
    assert listed[-1][-1] == "--full" and listed[1][-1].startswith("rows updated since ")


def test_an_invalid_entry_is_rejected_counted_and_listed(upstream, settings):
    good = item(A, "1.0.0", latest=True)
    hostile = item("../../etc/passwd", "1.0.0", latest=True)
    no_version = item(B, "1.0.0")
    del no_version["server"]["version"]
    upstream.registry.entries = [good, hostile, no_version, "not an object"]
    out = CliRunner().invoke(cli, ["build", "--upstream", upstream.url, "--db", str(settings.db),
                                   "--out", str(settings.out), "--json"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    summary = orjson.loads(out.output)
    assert (summary["rows"], summary["rejected"]) == (1, 3)
    records = [orjson.loads(line) for line in run(["diff", "--json"], settings).splitlines()]
    rejected = [r for r in records if r["kind"] == "rejected"]
    reasons = {(r["name"], r["version"]): r["reason"] for r in rejected}
    assert set(reasons) == {("../../etc/passwd", "1.0.0"), (B, None), (None, None)}
    assert reasons[("../../etc/passwd", "1.0.0")].startswith("server.name: ")
    assert reasons[(B, None)].startswith("server.version: ")
    assert reasons[(None, None)] == "entry is not a JSON object"
    assert not (settings.out / "etc").exists()
    assert "rejected (3)" in run(["diff"], settings)
