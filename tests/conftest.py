import shutil
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

sys.path.insert(0, str(Path(__file__).parent))

from mirror import pipeline  # noqa: E402
from mirror.fake_upstream import FakeUpstream  # noqa: E402
from mirror.serve import DEFAULT_LIMITS, MirrorServer, ServeLimits  # noqa: E402
from mirror.settings import Settings  # noqa: E402

# No test bounds the wall time: Hypothesis's per-example deadline (200 ms) is one, off for all.
hypothesis_settings.register_profile("mcp-mirror", deadline=None)
hypothesis_settings.load_profile("mcp-mirror")


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", help="Rewrite tests/golden from the current renderer.")


# -- markers: what a test needs beyond Python, so `make check` can leave it out ----------
#
# slow     takes seconds on its own (random histories, ten thousand servers, moto's S3)
# node     runs node: the hosts' runtimes (wrangler, netlify-cli), VS Code's code, the JS engines
# browser  drives a headless Chromium
# kill     SIGKILLs a build or a publish part way and checks what it left
# nginx    runs a real nginx          caddy    runs a real Caddy
#
# Web-server parameters (`host`, `HOSTS`) carry their nginx or caddy mark where they are made;
# the rest is applied here: by module, by test, by a module fixture that starts the program, or
# by the `kind` a test hands to the conformance suite's `start`.

MODULE_MARKS: dict[str, tuple[str, ...]] = {
    "test_browser": ("browser",),
    "test_catalog_browser": ("browser",),
    "test_functions": ("node", "slow"),
    "test_netlify": ("node",),
    "test_query_js": ("node",),
    "test_s3": ("slow",),
    "test_sync_property": ("slow",),
    "test_vscode_gallery": ("node",),
}
TEST_MARKS: dict[tuple[str, str], tuple[str, ...]] = {
    ("test_ard", "test_the_cloudfront_function_serves_discovery_paths_without_a_redirect"): ("node",),
    ("test_cli", "test_a_killed_crawl_leaves_the_previous_snapshot_and_site"): ("kill",),
    ("test_cloudfront", "test_the_cloudfront_function_routes_like_serve"): ("node",),
    ("test_cloudfront", "test_the_cloudfront_function_answers_preflight_and_refuses_paths_outside_the_prefix"):
        ("node",),
    ("test_publish", "test_build_killed_at_random_moments_leaves_a_verified_tree_and_the_next_run_completes"):
        ("kill", "slow"),
    ("test_quirky_versions", "test_the_cloudfront_function_asks_s3_for_each_versions_key"): ("node",),
    ("test_quirky_versions", "test_the_functions_route_each_version_to_its_file"): ("node",),
    ("test_router_property", "test_nginx_and_caddy_answer_every_target_as_serve_does"): ("nginx", "caddy"),
    ("test_router_property", "test_the_cloudfront_function_answers_every_target_as_serve_does"): ("node",),
    ("test_s3", "test_a_publish_killed_midway_leaves_the_previous_tree_served_and_the_next_completes"): ("kill",),
    ("test_s3", "test_a_generation_publish_killed_at_any_moment_leaves_the_previous_tree_served_whole"): ("kill",),
    ("test_serve_hardening",
     "test_under_a_low_open_file_limit_a_normal_request_is_answered_past_idle_and_slow_clients"): ("slow",),
    ("test_toolhive", "test_ten_thousand_servers_make_a_valid_deterministic_file_and_a_bounded_one"): ("slow",),
}
FIXTURE_MARKS: dict[tuple[str, str], tuple[str, ...]] = {
    ("test_allowlist", "vscode"): ("node",),  # VS Code's own conversion, in node
    ("test_allowlist", "oracle"): ("node",),  # the matcher oracle, in node
    ("test_quirky_versions", "clients"): ("nginx", "caddy"),  # serve, nginx and Caddy on the tree, together
    ("test_vscode", "answers"): ("node",),  # VS Code's own conversion, in node
    ("test_catalog", "pages"): ("node",),  # the catalog's snippets against VS Code's conversion
}
MARKS = ("slow", "node", "browser", "kill", "nginx", "caddy")


def _marks(item: pytest.Item) -> set[str]:
    module = item.module.__name__ if getattr(item, "module", None) else ""
    name = getattr(item, "originalname", item.name)
    marks = {*MODULE_MARKS.get(module, ()), *TEST_MARKS.get((module, name), ())}
    for fixture in item.fixturenames:
        marks.update(FIXTURE_MARKS.get((module, fixture), ()))
    params = item.callspec.params if hasattr(item, "callspec") else {}
    if {"start", "served"} & set(item.fixturenames) and params.get("kind") in ("nginx", "caddy"):
        marks.add(params["kind"])  # tests/test_conformance.py's start(kind, base) runs that server
    return marks


def pytest_collection_modifyitems(config, items):
    for item in items:
        have = {mark.name for mark in item.iter_markers()}
        for mark in sorted(_marks(item) - have):
            assert mark in MARKS, mark
            item.add_marker(getattr(pytest.mark, mark))


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    """The fixture upstream over real HTTP on 127.0.0.1, loaded with the bundled sample."""
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def settings(tmp_path: Path, upstream: FakeUpstream) -> Settings:
    return Settings(upstream=upstream.url, db=tmp_path / "mirror.duckdb", out=tmp_path / "site",
                    base_url="http://mirror.test")


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(root: Path, limits: ServeLimits = DEFAULT_LIMITS, *, quiet: bool = True) -> Iterator[MirrorServer]:
    """`mcp-mirror serve` on a free port, in a thread."""
    server = MirrorServer(root, "127.0.0.1", 0, quiet=quiet, limits=limits)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


# -- the sample, built once per session --------------------------------------------------


@dataclass(frozen=True)
class SampleTree:
    """The bundled sample crawled and rendered for one (profile, base URL): its settings (the
    database and `out`, the published tree) and the build's result. Shared: read it, never
    change it; a test that changes a tree takes a copy (`copy_tree`)."""

    settings: Settings
    result: pipeline.BuildResult

    @property
    def out(self) -> Path:
        return self.settings.out


@pytest.fixture(scope="session")
def sample_upstream() -> Iterator[FakeUpstream]:
    """The fixture upstream with the bundled sample, for the session's builds; tests that
    change what upstream serves take `upstream`, their own."""
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture(scope="session")
def sample_tree(tmp_path_factory, sample_upstream) -> Callable[..., SampleTree]:
    """sample_tree(profile="nginx", base_url="http://mirror.test") -> SampleTree: one
    `pipeline.build` of the sample per (profile, base URL) a session asks for, on first use."""
    built: dict[tuple[str, str], SampleTree] = {}

    def get(profile: str = "nginx", base_url: str = "http://mirror.test") -> SampleTree:
        if (profile, base_url) not in built:
            tmp = tmp_path_factory.mktemp(f"sample-{profile}")
            settings = Settings(upstream=sample_upstream.url, db=tmp / "mirror.duckdb", out=tmp / "site",
                                base_url=base_url, profile=profile)
            built[profile, base_url] = SampleTree(settings, pipeline.build(settings))
        return built[profile, base_url]

    return get


def copy_tree(tree: Path, to: Path) -> Path:
    """A private copy of a published tree (the generation `tree` links to), to change."""
    shutil.copytree(Path(tree).resolve(), to, symlinks=True)
    return to
