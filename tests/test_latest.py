"""Upstream's isLatest rule as a crawl settles it (mirror.latest), apart from the store."""

from mirror.latest import settle


def test_one_returned_flag_unflags_every_carried_one():
    settled = settle({"a/b": [1, 100, 101]}, returned=lambda p: p < 100)
    assert settled.unflag == (100, 101) and settled.refetch == ()


def test_rows_that_cannot_tell_send_the_server_to_be_fetched_again():
    settled = settle({"two/returned": [1, 2], "none/carried": [], "two/carried": [100, 101], "one/carried": [100],
                      "refused/entry": [1, 100]}, returned=lambda p: p < 100, unsure=["refused/entry", "not/returned"])
    assert settled.refetch == ("none/carried", "refused/entry", "two/carried", "two/returned")
    assert settled.unflag == (100,)  # refused/entry's one returned flag still settles its carried row
