"""Reading the command line's input files, shared by the client and the auditor's commands."""

from __future__ import annotations

import sys

STDIN = "-"


class InputProblem(Exception):
    """Input that cannot be used; the message is one line naming the field and the rule."""


def read_limited(path: str, *, what: str, limit: int) -> bytes:
    """At most limit bytes of path (standard input for "-"); more is refused, not truncated.

    Raises InputProblem naming `what` and the path.
    """
    try:
        if path == STDIN:
            data = sys.stdin.buffer.read(limit + 1)
        else:
            with open(path, "rb") as file:
                data = file.read(limit + 1)
    except OSError as exc:
        raise InputProblem(f"{what} {path}: cannot read it ({exc.strerror})") from None
    if len(data) > limit:
        raise InputProblem(f"{what} {path}: larger than {limit} bytes (too_large)")
    return data
