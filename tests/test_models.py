import pytest
from factories import item
from pydantic import ValidationError

from mirror.models import OFFICIAL, ServerResponse, row_from_item


def test_optional_fields_may_be_missing_and_the_document_stays_as_sent():
    entry = item("a/b", "1.0.0")
    del entry["server"]["description"], entry["server"]["$schema"], entry["_meta"]
    row = row_from_item(entry)
    assert row.item() == entry
    assert (row.status, row.is_latest, row.published_at) == ("active", False, None)
    assert ServerResponse.model_validate(entry).server.description == ""


@pytest.mark.parametrize(("field", "value", "where"), [
    ("name", "index.json/x", "server.name"),
    ("name", "a/index.html", "server.name"),
    ("version", "index.html", "server.version"),
    ("version", "include-deleted.json", "server.version"),
    ("version", "latest", "server.version"),
])
def test_identity_validators_refuse_reserved_names(field, value, where):
    entry = item("a/b", "1.0.0")
    entry["server"][field] = value
    with pytest.raises(ValidationError) as raised:
        row_from_item(entry)
    assert ".".join(map(str, raised.value.errors()[0]["loc"])) == where


def test_official_timestamps_must_carry_a_zone():
    entry = item("a/b", "1.0.0")
    entry["_meta"][OFFICIAL]["publishedAt"] = "2025-10-01T00:00:00"
    with pytest.raises(ValidationError, match="has no time zone"):
        row_from_item(entry)
