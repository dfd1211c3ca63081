"""One exception hierarchy; the CLI turns each into one line on stderr and an exit code.

    MirrorError                 exit 1
    ├── UpstreamError           the registry could not be read (down, HTTP error, bad JSON)
    ├── StoreError              the DuckDB file cannot be used
    │   ├── SchemaTooNew        written by a newer mcp-mirror
    │   └── SnapshotNotFound    no such snapshot (or none yet)
    ├── RenderError             the output tree cannot be written
    ├── VerifyError             a published tree or deployed copy failed its checks
    └── UsageError              options that do not fit together
        └── PolicyError         a policy file or local server.json that is refused
"""

from __future__ import annotations


class MirrorError(Exception):
    """Base class: `message` says what went wrong, `hint` what to do about it."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UpstreamError(MirrorError):
    """The upstream registry could not be crawled."""


class StoreError(MirrorError):
    """The snapshot database cannot be opened, migrated or written."""


class SchemaTooNew(StoreError):
    """The database was written by a newer mcp-mirror."""


class SnapshotNotFound(StoreError):
    """A snapshot id does not exist or did not finish."""


class RenderError(MirrorError):
    """The output tree cannot be planned or written."""


class VerifyError(MirrorError):
    """A published tree, or a deployed copy of it, failed verification."""


class UsageError(MirrorError):
    """Options that cannot work together."""

    exit_code = 2


class PolicyError(UsageError):
    """A policy file, or a local server.json, the mirror refuses (named by file, line and key)."""
