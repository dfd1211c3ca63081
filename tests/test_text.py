"""mirror.text: whatever upstream or a client sends, each destination gets nothing raw."""

import unicodedata

import orjson
from hypothesis import given
from hypothesis import strategies as st

from mirror import text

ANY = st.text(alphabet=st.characters(codec="utf-8"), max_size=300)
BIDI_AND_CONTROL = {*(chr(c) for c in range(0x20) if chr(c) not in "\t\n"), *(chr(c) for c in range(0x7f, 0xa0)),
                    *text.BIDI, "\u2028", "\u2029"}


@given(ANY)
def test_inert_text_holds_no_control_or_bidi_character(value):
    assert not set(text.inert(value)) & BIDI_AND_CONTROL


@given(ANY, st.integers(1, 50))
def test_clip_bounds_what_a_page_shows(value, bound):
    clipped = text.clip(value, bound)
    assert not set(clipped) & BIDI_AND_CONTROL
    assert clipped == text.inert(value) or clipped.endswith("…")


@given(st.recursive(st.none() | st.booleans() | ANY, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(ANY, inner, max_size=4), max_leaves=20))
def test_json_sent_as_html_is_the_same_value_without_markup(value):
    body = orjson.dumps(value)
    shown = text.json_as_html(body)
    assert orjson.loads(shown) == value
    assert not {b"<", b">", b"&"} & {bytes([b]) for b in shown}
    assert not set(shown.decode()) & set(text.BIDI)


@given(ANY)
def test_what_reaches_a_terminal_or_a_log_is_printable(value):
    assert text.printable(value).isprintable()
    logged = text.log_safe(value)
    assert logged.isascii() and logged.isprintable()
    reason = text.one_line(value, 500)
    assert all(unicodedata.category(ch) != "Cc" and ch not in BIDI_AND_CONTROL for ch in reason)
    assert len(text.one_line(value, 20)) <= 20 and len(text.collapsed(value, 20)) <= 20


def test_only_plain_http_links_are_kept():
    assert text.safe_url("https://example.com/a") == "https://example.com/a"
    for bad in ("javascript:alert(1)", "https://exa\u202emple.com", "https:///nohost", "http://a b", 5, ""):
        assert text.safe_url(bad) is None, bad
    assert text.safe_url("http://example.com", schemes=("https",)) is None
