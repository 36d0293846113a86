"""Errors raised by signatures/. They carry data and know nothing of HTTP."""

from __future__ import annotations

from pathlib import Path


class SignaturesError(Exception):
    """Base class of every signatures error."""


class ServiceKeyError(SignaturesError):
    """A service key or its passphrase is missing, unreadable or of the wrong kind."""

    def __init__(self, message: str, *, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path
