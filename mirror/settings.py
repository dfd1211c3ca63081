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
    policy: Path | None = Field(None, description="Curation policy (TOML, mirror.policy) applied at render.")
    local: Path | None = Field(None, description="Directory of the organization's own server.json files.")

    @field_validator("upstream", "base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        if not _URL_PATH.fullmatch(urlsplit(value).path):
            # the path ends up in generated host configs; keep it to characters that need no quoting
            raise ValueError(f"{value!r} has a path with characters other than letters, digits and ._~-/")
        return value.rstrip("/")
