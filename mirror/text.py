"""Making upstream text safe, for each place it goes: one module, so each rule is written once.

Anyone can publish to the registry, and clients choose much of a request: such text never
reaches a page, a terminal, a log or a message raw. Each function names its destination:

- `inert`, `clip`: a page (HTML or JSON shown as a page): control and bidi characters become
  visible `\\uXXXX` escapes, so text cannot reorder or hide what a page says (UTR #36);
- `json_as_html`: a JSON document a plain file server may send as text/html;
- `safe_url`: a URL a page may link;
- `one_line`: a reason recorded and printed (a rejected row): controls escaped, bounded;
- `collapsed`: upstream text inside an error message: whitespace collapsed, bounded;
- `printable`: anything printed to a terminal;
- `log_safe`: a server log line: all but printable ASCII escaped.

Pure: no I/O, nothing but the standard library.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
URL_CHARS = 2000  # a link longer than this is not shown as one
_INERT = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_UNSAFE_IN_URL = re.compile(r"[\x00-\x20\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")
_UNPRINTABLE = re.compile(r"[^\x20-\x5b\x5d-\x7e]")  # all but printable ASCII; backslash too


def inert(text: object) -> str:
    """`text` with every control and bidi character shown as a visible \\uXXXX escape."""
    return _INERT.sub(lambda m: f"\\u{ord(m.group()):04x}", str(text))


def clip(text: object, bound: int) -> str:
    """`text` cut to `bound` characters (an ellipsis says so), then made inert: a bound for
    display, so a megabyte string makes no megabyte page."""
    value = str(text)
    return inert(value[:bound] + "…" if len(value) > bound else value)


def json_as_html(body: bytes) -> bytes:
    """JSON a plain file server may send as text/html: no upstream `<` may reach the page as
    markup, so `<`, `>` and `&` (only ever inside JSON strings) and bidi controls become their
    \\u escapes, the same JSON value."""
    escaped = body.replace(b"<", b"\\u003c").replace(b">", b"\\u003e").replace(b"&", b"\\u0026")
    if b"\xe2\x80" in escaped or b"\xe2\x81" in escaped or b"\xd8\x9c" in escaped:
        for char in BIDI:  # shown as escapes: a page sent as text/html must not be reordered
            escaped = escaped.replace(char.encode(), f"\\u{ord(char):04x}".encode())
    return escaped


def safe_url(value: Any, *, schemes: Sequence[str] = ("https", "http"), bound: int = URL_CHARS) -> str | None:
    """`value` if it is a URL a page may link: one of `schemes`, a host, no whitespace,
    control or bidi character anywhere (a browser strips some, so none is let through)."""
    if not isinstance(value, str) or not value or len(value) > bound or _UNSAFE_IN_URL.search(value):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    return value if parts.scheme.lower() in schemes and parts.netloc else None


def one_line(reason: str, limit: int) -> str:
    """Reasons are printed to terminals: control characters escaped, length bounded."""
    escaped = _CONTROL.sub(lambda match: match.group().encode("unicode_escape").decode(), reason)
    return escaped if len(escaped) <= limit else escaped[: limit - 1] + "…"


def collapsed(text: str, limit: int = 200) -> str:
    """Upstream-controlled text in a message: whitespace collapsed, length capped."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def printable(text: str) -> str:
    """Text with control characters shown as escapes, never sent to a terminal raw."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text)


def log_safe(message: str) -> str:
    """Everything but printable ASCII backslash-escaped: no escape sequence, bell or bidi
    control reaches a terminal through a log."""
    return _UNPRINTABLE.sub(lambda match: match[0].encode("unicode_escape").decode("ascii"), message)
