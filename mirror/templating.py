"""Jinja2 set-up shared by the HTML pages and the generated host configurations."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from mirror import paths
from mirror.errors import RenderError


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


# Control characters and bidi overrides/isolates: shown as escapes so upstream text cannot
# reorder or hide what a page says (UTR #36) or reach a terminal raw.
_INERT = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def inert(text: object) -> str:
    """`text` with every control and bidi character shown as a visible \\uXXXX escape."""
    return _INERT.sub(lambda m: f"\\u{ord(m.group()):04x}", str(text))


def clip(text: object, bound: int) -> str:
    """`text` cut to `bound` characters (an ellipsis says so), then made inert: a bound for
    display, so a megabyte string makes no megabyte page."""
    value = str(text)
    return inert(value[:bound] + "…" if len(value) > bound else value)


def render_template(name: str, **context: Any) -> str:
    """HTML templates are autoescaped; configuration templates (not .html) are not."""
    return environment(name.endswith(".html")).get_template(name).render(**context)
