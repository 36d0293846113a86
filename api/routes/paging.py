"""Keyset paging shared by the list routes (payments, tax): newest first by (time, id), with an
opaque cursor naming the last row of the previous page."""

from __future__ import annotations

import base64
import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from api.problems import Problem, problem_type
from signatures.registry_schema import as_utc

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
MAX_CURSOR_CHARS = 200
UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


class Page(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next (older) page")


def read_cursor(
    value: str | None, *, ident_pattern: re.Pattern[str] = UUID4
) -> tuple[datetime, str] | None:
    """The (time, id) a cursor names, or None without one; the id must match `ident_pattern`
    (a row's UUID, or another key such as a tax ID). Raises Problem 400 invalid-cursor."""
    if value is None:
        return None
    invalid = Problem(400, problem_type("invalid-cursor"), "Invalid cursor", "use next_cursor")
    if len(value) > MAX_CURSOR_CHARS:
        raise invalid
    try:
        text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        at, _, ident = text.partition("|")
        moment = as_utc(datetime.fromisoformat(at))
    except ValueError:
        raise invalid from None
    if not ident_pattern.fullmatch(ident):
        raise invalid
    return moment, ident


def next_cursor(at: datetime, ident: str) -> str:
    raw = f"{at.isoformat()}|{ident}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def page_of(items: list[Any], keys: list[tuple[datetime, str]], *, limit: int) -> dict[str, Any]:
    """A page of items with the cursor of its last row when the page is full."""
    more = len(keys) == limit
    return {"items": items, "next_cursor": next_cursor(*keys[-1]) if more and keys else None}
