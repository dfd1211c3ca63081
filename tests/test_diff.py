import copy

from factories import item, official, row, with_status

from mirror.diff import changed_paths, count_by_kind, diff_rows, latest_row
from mirror.models import row_from_item

NAME = "io.github.x/y"


def kinds(changes):
    return [(c.kind, c.name, c.version) for c in changes]


def test_first_snapshot_adds_every_server_and_version():
    new = [row(NAME, "1.0.0"), row(NAME, "1.1.0", latest=True), row("io.github.x/z", "0.1.0", latest=True)]
    assert kinds(diff_rows([], new)) == [
        ("server_added", NAME, "1.1.0"), ("version_added", NAME, "1.0.0"), ("version_added", NAME, "1.1.0"),
        ("server_added", "io.github.x/z", "0.1.0"), ("version_added", "io.github.x/z", "0.1.0"),
    ]


def test_no_change_gives_nothing():
    rows = [row(NAME, "1.0.0", latest=True)]
    assert diff_rows(rows, list(rows)) == []


def test_new_version_moves_latest():
    old = [row(NAME, "1.0.0", latest=True)]
    new = [row(NAME, "1.0.0"), row(NAME, "1.1.0", latest=True, published="2025-10-02T00:00:00Z")]
    changes = diff_rows(old, new)
    assert kinds(changes) == [("version_added", NAME, "1.1.0"), ("latest_changed", NAME, "1.1.0")]
    assert changes[1].detail == {"from": "1.0.0", "to": "1.1.0"}


def test_update_lists_changed_paths():
    before = item(NAME, "1.0.0", latest=True, packages=[{"registryType": "npm", "identifier": "a"}])
    after = copy.deepcopy(before)
    after["server"]["description"] = "Better"
    after["server"]["packages"][0]["identifier"] = "b"
    after["server"]["websiteUrl"] = "https://example.org"
    changes = diff_rows([row_from_item(before)], [row_from_item(after)])
    assert kinds(changes) == [("version_updated", NAME, "1.0.0")]
    assert changes[0].detail["paths"] == ["/server/description", "/server/packages/0/identifier", "/server/websiteUrl"]


def test_status_changes_carry_from_to_and_message():
    active = item(NAME, "1.0.0", latest=True)
    deprecated = with_status(active, "deprecated", "use 2.0")
    changes = diff_rows([row_from_item(active)], [row_from_item(deprecated)])
    assert kinds(changes) == [("status_changed", NAME, "1.0.0")]
    assert changes[0].detail == {"from": "active", "to": "deprecated", "message": "use 2.0"}
    restored = with_status(deprecated, "active", when="2025-12-01T00:00:00Z")
    back = diff_rows([row_from_item(deprecated)], [row_from_item(restored)])
    assert back[0].detail == {"from": "deprecated", "to": "active"}


def test_status_message_alone_is_an_update():
    deprecated = with_status(item(NAME, "1.0.0"), "deprecated", "old")
    reworded = copy.deepcopy(deprecated)
    official(reworded)["statusMessage"] = "new"
    changes = diff_rows([row_from_item(deprecated)], [row_from_item(reworded)])
    assert kinds(changes) == [("version_updated", NAME, "1.0.0")]


def test_removals_need_a_full_crawl_and_spare_rejected_entries():
    old = [row(NAME, "1.0.0"), row(NAME, "1.1.0", latest=True), row("io.github.x/gone", "1.0.0", latest=True)]
    new = [row(NAME, "1.1.0", latest=True)]
    got = kinds(diff_rows(old, new))
    assert ("version_removed", NAME, "1.0.0") in got
    assert ("version_removed", "io.github.x/gone", "1.0.0") in got
    assert ("server_removed", "io.github.x/gone", None) in got
    assert diff_rows(old, new, full=False) == []
    spared = diff_rows(old, new, still_upstream={(NAME, "1.0.0")})
    assert ("version_removed", NAME, "1.0.0") not in kinds(spared)


def test_changed_paths_escapes_pointer_tokens():
    a = {"_meta": {"io.x/official": {"a~b": 1}}, "list": [1, 2]}
    b = {"_meta": {"io.x/official": {"a~b": 2}}, "list": [1, 2, 3]}
    assert changed_paths(a, b) == ["/_meta/io.x~1official/a~0b", "/list"]
    assert changed_paths(1, 1.0) == ["/"]


def test_latest_row_prefers_newest_published_among_flagged():
    rows = [row(NAME, "1.0.0", latest=True, published="2025-01-01T00:00:00Z"),
            row(NAME, "0.9.0", latest=True, published="2025-02-01T00:00:00.5Z"), row(NAME, "2.0.0")]
    assert latest_row(rows).version == "0.9.0"
    assert latest_row([row(NAME, "1.0.0")]) is None


def test_count_by_kind_lists_every_kind():
    counts = count_by_kind(diff_rows([], [row(NAME, "1.0.0", latest=True)]))
    assert counts["server_added"] == 1 and counts["version_added"] == 1 and counts["version_removed"] == 0
