"""Jinja2 set-up shared by the HTML pages and the generated host configurations."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from mirror import paths
from mirror.errors import RenderError
from mirror.text import clip, inert


def templates_dir() -> Path:
    """Templates ship inside the wheel as mirror/templates; a checkout keeps them at the top."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "templates", here.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise RenderError("templates directory not found", hint="reinstall mcp-mirror")


@cache
def environment(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["server_url"] = paths.server_url
    env.globals["Urls"] = paths.Urls
    env.filters["regex_escape"] = re.escape
    env.filters["inert"] = inert
    env.filters["clip"] = clip
    return env


def render_template(name: str, **context: Any) -> str:
    """HTML templates are autoescaped; configuration templates (not .html) are not."""
    return environment(name.endswith(".html")).get_template(name).render(**context)
