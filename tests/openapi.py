"""Validate response bodies against the frozen v0.1 OpenAPI document (the mirror's own copy).

The document is used as published, with one addition: `statusChangedAt` and
`statusMessage` in `_meta["io.modelcontextprotocol.registry/official"]`. Upstream has sent
them since #893 (2026-02-27) and added them to its draft spec, but the frozen v0.1 text
still closes that object with `additionalProperties: false`, so without them every real
item would fail. Formats are not checked: the schema is about shapes, and upstream's
own data is the judge of its strings.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from mirror.render.api import OPENAPI

DOCUMENT = OPENAPI  # the copy the mirror serves at /openapi.yaml
OFFICIAL = "io.modelcontextprotocol.registry/official"
# The two fields as openapi-draft.yaml (upstream main, 2026-04-23) defines them.
LATER_OFFICIAL_FIELDS = {
    "statusMessage": {"type": "string", "maxLength": 500},
    "statusChangedAt": {"type": "string", "format": "date-time"},
}


@cache
def _document() -> tuple[str, Registry]:
    document = yaml.safe_load(DOCUMENT.read_text())
    official = document["components"]["schemas"]["ServerResponse"]["properties"]["_meta"]["properties"][OFFICIAL]
    official["properties"].update(LATER_OFFICIAL_FIELDS)
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    return resource.id(), Registry().with_resource(resource.id(), resource)


@cache
def validator(component: str) -> Draft202012Validator:
    """A validator for `#/components/schemas/<component>`; in-document `$ref`s resolve."""
    uri, registry = _document()
    return Draft202012Validator({"$ref": f"{uri}#/components/schemas/{component}"}, registry=registry)


def errors(component: str, body: Any) -> list[str]:
    """Every violation, as `path: message`; empty when `body` is valid."""
    return [f"/{'/'.join(map(str, error.absolute_path))}: {error.message}"
            for error in validator(component).iter_errors(body)]
