
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mirror import paths


@pytest.mark.parametrize("name", [
    "io.github.user/server",
    "io.github.OtherVibes/mcp-as-a-judge",
    "com.example.weather/Forecast-API",
    "ai.smithery/x.y_z",
    "a/b",
])
def test_accepts_real_names(name):
    assert paths.name_problem(name) is None


@pytest.mark.parametrize("name", [
    "../..", "../x", "./x", "x/..", "io.github.x/.hidden", "io_github/x", "noslash", "a/b/c",
    "io.github.x/y\x00", "io.github.x/ y", "-x/y", "x-/y", "x/y.", "a" * 201 + "/b", "%2e%2e/x",
])
def test_rejects_hostile_names(name):
    assert paths.name_problem(name) is not None


# Real upstream versions: anything but `/` and exactly `latest`, up to 255 characters.
QUIRKY = ["{{VERSION}}", "1.0.1\u00ba", "1.0 beta", "v2 (rc)", "v17.1.7-3", "2025.11.13+pr147-5d1f8b0", "1?x", "1#x",
          "100%", "1%2F", '1"', "1\\2", "<script>", "\u202e1.0\u200f", "\U0001f600", "LATEST", "Latest", ".hidden",
          "_x", "_pages", "1.0.", "con", "nul.txt", "COM1", "INDEX.JSON", "Index.Html", "é" * 127, "x" * 255, " ",
          "..."]


@pytest.mark.parametrize("version", ["1.0.0", "1.0.0+build.7", "2.0.0-beta.1", "v1", "2025.01.01", "1.0~rc1", "1:2",
                                     *QUIRKY])
def test_accepts_what_upstream_accepts(version):
    assert paths.version_problem(version) is None


@pytest.mark.parametrize(("version", "why"), [
    ("", "empty"), ("latest", "reserved"), (".", "dot segment"), ("..", "dot segment"), ("1/2", "'/'"),
    ("1\n", "U+000A"), ("\x00", "U+0000"), ("1\x7f", "U+007F"), ("1\x85", "U+0085"), ("\ud800", "U+D800"),
    ("x" * 256, "NAME_MAX"), ("é" * 128, "256 UTF-8 bytes"), ("index.json", "reserved"), ("index.html", "reserved"),
    ("include-deleted.json", "reserved"),
])
def test_rejects_only_what_no_host_can_serve(version, why):
    assert why in paths.version_problem(version)


@given(st.text(min_size=1, max_size=60), st.text(min_size=1, max_size=60))
def test_accepted_names_and_versions_stay_inside_the_api_tree(name, version):
    if paths.name_problem(name) or paths.version_problem(version):
        return
    parts = paths.version_dir(name, version).split("/")
    assert parts[:2] == ["v0.1", "servers"]
    assert ".." not in parts and "." not in parts and "" not in parts
    assert len(parts) == 6  # v0.1/servers/<ns>/<name>/versions/<version>


def test_urls_are_encoded_like_clients_do():
    assert paths.server_url("https://m.example/p/", "io.github.x/y", "1.0.0+b") == (
        "https://m.example/p/v0.1/servers/io.github.x%2Fy/versions/1.0.0%2Bb")
    assert paths.base_path("https://m.example/some/prefix/") == "/some/prefix"
    assert paths.base_path("http://127.0.0.1:8000") == ""


def test_views_and_pages():
    assert paths.view_file(paths.latest_dir("a/b")) == "v0.1/servers/a/b/versions/latest/index.json"
    assert paths.view_file(paths.versions_dir("a/b"), deleted=True).endswith("/include-deleted.json")
    assert paths.page_file("latest", paths.cursor(30, 60)) == "v0.1/servers/_pages/latest/30-60.json"


@pytest.mark.parametrize("segment", ["index.json", "index.html", "include-deleted.json"])
def test_leaf_file_names_are_refused_on_either_side_of_a_name(segment):
    assert paths.name_problem(f"{segment}/x") is not None
    assert paths.name_problem(f"io.github.x/{segment}") is not None


@pytest.mark.parametrize("segment", ["INDEX.JSON", "Index.Html", "latest", "LaTeSt", "con", "aux.txt", "com1",
                                     "lpt9", "console", "x_index.json", "v1.0"])
def test_names_need_only_upstreams_pattern_and_the_leaf_files(segment):
    assert paths.name_problem(f"io.github.x/{segment}") is None


def test_fold_is_casefold():
    assert paths.fold("io.github.A/B") == paths.fold("io.github.a/b")
    assert paths.fold("1.0.0-RC1") == "1.0.0-rc1"
    assert paths.fold("e\u0301") == paths.fold("\u00c9")  # macOS ignores normalization too


def test_case_folding_keeps_the_first_spelling_and_names_both():
    folding = paths.CaseFolding()
    assert folding.clash("a/B", "1.0.0-RC1") is None
    assert "'1.0.0-rc1' and '1.0.0-RC1'" in folding.clash("a/B", "1.0.0-rc1")
    assert "'latest'" in folding.clash("a/B", "LATEST")
    assert "'index.json'" in folding.clash("a/B", "INDEX.JSON")
    assert folding.clash("a/B", "1.0.0") is None
    assert "'a/b' and 'a/B'" in folding.clash("a/b", "2.0.0")
    assert "'index.html'" in folding.clash("x/Index.Html", "1")
    assert folding.clash("c/d", "1.0.0-rc1") is None  # versions clash within one server only


def test_segments_and_paths_have_byte_bounds():
    assert paths.segment_problem("x" * 255) is None
    assert "NAME_MAX" in paths.segment_problem("x" * 256)
    assert "NAME_MAX" in paths.segment_problem("é" * 128)  # 256 bytes
    assert paths.path_problem("a/b", "1.0.0") is None
    assert paths.path_problem("a/b", "1" * 255) is None  # the longest real path is far below the bound
    assert paths.path_problem("a/" + "b" * 990, "1.0.0") is not None


@given(st.text(min_size=1, max_size=60), st.text(min_size=1, max_size=60))
def test_accepted_names_and_versions_are_never_leaf_files(name, version):
    if paths.name_problem(name) or paths.version_problem(version):
        return
    for segment in (*name.split("/"), version):
        assert segment not in paths.LEAF_FILES
        assert not any(ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f for c in segment)
    assert version != "latest"
