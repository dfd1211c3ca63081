import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from mirror.fake_upstream import FakeUpstream  # noqa: E402
from mirror.serve import DEFAULT_LIMITS, MirrorServer, ServeLimits  # noqa: E402
from mirror.settings import Settings  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", help="Rewrite tests/golden from the current renderer.")


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
