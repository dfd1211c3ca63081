"""Settings shared by the commands: one frozen model, filled from flags and environment."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_UPSTREAM = "https://registry.modelcontextprotocol.io"
DEFAULT_DB = Path("mirror.duckdb")
DEFAULT_OUT = Path("site")
DEFAULT_BASE_URL = "http://127.0.0.1:8000"
_URL_PATH = re.compile(r"[A-Za-z0-9._~/-]*")
DEFAULT_FULL_EVERY = 24 * 3600.0
# Upstream's ingress allows about 180 requests a minute per address; stay well under it.
DEFAULT_RATE = 120.0
# Upstream's slowest list pages took 20-25 s in 2026; a trickle must not hold a run for longer.
DEFAULT_RESPONSE_DEADLINE = 60.0
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([smhd]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """`90`, `90s`, `30m`, `24h`, `7d` as seconds."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not match:
        raise ValueError(f"{text!r} is not a duration such as 90s, 30m, 24h or 7d")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    upstream: str = Field(DEFAULT_UPSTREAM,
                          description="Base URL of the v0.1 registry to crawl (may carry a path prefix).")
    db: Path = Field(DEFAULT_DB, description="DuckDB snapshot database.")
    out: Path = Field(DEFAULT_OUT, description="Directory the static site is written to.")
    base_url: str = Field(DEFAULT_BASE_URL, description="Public URL the site is served at; its path is the API prefix.")
    profile: str = Field("nginx", description="Host profile the tree is rendered for (see mirror.hosts).")
    timeout: float = Field(30.0, gt=0, description="Seconds to wait for each upstream response.")
    deadline: float = Field(3600.0, gt=0, description="Seconds a whole crawl may take, retries included.")
    response_deadline: float = Field(DEFAULT_RESPONSE_DEADLINE, gt=0,
                                     description="Seconds one upstream response, headers and body, may take.")
    full_every: float = Field(DEFAULT_FULL_EVERY, gt=0,
                              description="Seconds after the last full crawl when the next crawl is full again.")
    rate: float = Field(DEFAULT_RATE, gt=0, description="Requests a minute sent to the upstream, at most.")
    policy: Path | None = Field(None, description="Curation policy (TOML, mirror.policy) applied at render.")
    local: Path | None = Field(None, description="Directory of the organization's own server.json files.")

    @field_validator("full_every", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("upstream", "base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        if not _URL_PATH.fullmatch(urlsplit(value).path):
            # the path ends up in generated host configs; keep it to characters that need no quoting
            raise ValueError(f"{value!r} has a path with characters other than letters, digits and ._~-/")
        return value.rstrip("/")
