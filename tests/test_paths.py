
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


@pytest.mark.parametrize("version", ["1.0.0", "1.0.0+build.7", "2.0.0-beta.1", "v1", "2025.01.01", "1.0~rc1", "1:2"])
def test_accepts_versions(version):
    assert paths.version_problem(version) is None


@pytest.mark.parametrize("version", ["", "latest", ".", "..", "1/2", "1\\2", "1\n", "x" * 256, "é", "1.0 final",
                                     "1?x", "1#x", "1%2F", '1"'])
def test_rejects_versions_that_cannot_be_a_path_segment(version):
    assert paths.version_problem(version) is not None


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


RESERVED = ["index.json", "INDEX.JSON", "index.html", "Index.Html", "include-deleted.json", "Include-Deleted.JSON",
            "latest", "LaTeSt", "con", "CON", "con.txt", "Nul.tar.gz", "aux", "prn", "com1", "COM9", "lpt1", "LPT9.x",
            "com0", "CONIN$", "_pages", "_x", ".hidden", "1.0."]


@pytest.mark.parametrize("segment", RESERVED)
def test_reserved_segments_are_refused_in_any_case(segment):
    assert paths.segment_problem(segment) is not None
    assert paths.version_problem(segment) is not None


@pytest.mark.parametrize("segment", [s for s in RESERVED if paths.NAME_RE.fullmatch(f"{s}/x")])
def test_reserved_name_segments_are_refused_on_either_side(segment):
    assert paths.name_problem(f"{segment}/x") is not None
    assert paths.name_problem(f"io.github.x/{segment}") is not None


@pytest.mark.parametrize("segment", ["console", "com10", "lpt", "contest", "latest1", "index.jsonx", "nul-1",
                                     "1.0.0-latest", "auxiliary", "x_index.json", "v1.0"])
def test_near_misses_of_reserved_names_are_fine(segment):
    assert paths.segment_problem(segment) is None
    assert paths.version_problem(segment) is None
    assert paths.name_problem(f"io.github.x/{segment}") is None


def test_fold_is_casefold():
    assert paths.fold("io.github.A/B") == paths.fold("io.github.a/b")
    assert paths.fold("1.0.0-RC1") == "1.0.0-rc1"


def test_segments_and_paths_have_byte_bounds():
    assert paths.segment_problem("x" * 255) is None
    assert paths.segment_problem("x" * 256) is not None
    assert paths.segment_problem("é" * 128) is not None  # 256 bytes
    assert paths.path_problem("a/b", "1.0.0") is None
    assert paths.path_problem("a/b", "1" * 255) is None  # the longest real path is far below the bound
    assert paths.path_problem("a/" + "b" * 990, "1.0.0") is not None


@given(st.text(min_size=1, max_size=60), st.text(min_size=1, max_size=60))
def test_accepted_names_and_versions_are_never_reserved(name, version):
    if paths.name_problem(name) or paths.version_problem(version):
        return
    for segment in (*name.split("/"), version):
        assert paths.fold(segment) not in paths.RESERVED_SEGMENTS
        assert segment.split(".")[0].upper() not in paths.WINDOWS_DEVICES
        assert not segment.startswith(("_", ".")) and not segment.endswith(".")
