"""Errors the library raises for bad input. Each message names the file, field or code at fault."""

from __future__ import annotations


class CreditcertError(Exception):
    """Base of every error creditcert raises on purpose; the CLI prints it and exits non-zero."""


class ConfigError(CreditcertError):
    """A city's creditcert.toml is missing or has a bad setting."""


class CatalogError(CreditcertError):
    """A domain catalog is malformed."""


class SubjectError(CreditcertError):
    """A credit code is malformed or not in the subject register."""


class RequestError(CreditcertError):
    """A lookup or report request names an unknown domain or purpose, or a bad period."""


class DataError(CreditcertError):
    """A dataset is missing, corrupt or out of step with its index."""


class IngestError(CreditcertError):
    """An input file cannot be read at all (rows that are merely bad go to quarantine)."""


class KeyFileError(CreditcertError):
    """A key or certificate is missing, unreadable or not usable (never shows key material)."""


class IssueError(CreditcertError):
    """A report cannot be issued (rate limit, registry)."""
