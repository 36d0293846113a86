"""The line-by-line difference between two versions of a return (docs/TAX.md, "Amendments").

A filing is never changed: an amendment is a new signed filing, and the filer is shown what each
trace line was, what it is now and by how much it moved. A line present in one version only
counts 0 in the other (a deduction dropped, a salary band no longer reached).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from signatures.canonical import JsonValue
from tax.trace import Computation

__all__ = ["LineSource", "diff_lines"]

# A version's lines: a Computation, or its trace as stored (Computation.trace_json: objects with
# at least code, label and amount_minor).
LineSource = Computation | Sequence[JsonValue]


@dataclass(frozen=True)
class _Line:
    code: str
    label: str
    amount_minor: int


def diff_lines(old: LineSource, new: LineSource) -> list[dict[str, JsonValue]]:
    """Every line code of either version, in the new version's order and then the old-only ones
    in the old order, each {code, label, old_minor, new_minor, delta_minor = new − old}; a line
    missing from a version counts 0 there. The label is the new version's when it has the line.

    Raises ValueError when a stored line is not an object with a string code and label and an
    integer amount_minor, or when a version holds a code twice.
    """
    old_lines = _lines(old)
    new_lines = _lines(new)
    out: list[dict[str, JsonValue]] = []
    for code, line in new_lines.items():
        before = old_lines.get(code)
        out.append(_row(line, before.amount_minor if before else 0, line.amount_minor))
    for code, line in old_lines.items():
        if code not in new_lines:
            out.append(_row(line, line.amount_minor, 0))
    return out


def _row(line: _Line, old_minor: int, new_minor: int) -> dict[str, JsonValue]:
    return {
        "code": line.code,
        "label": line.label,
        "old_minor": old_minor,
        "new_minor": new_minor,
        "delta_minor": new_minor - old_minor,
    }


def _lines(source: LineSource) -> dict[str, _Line]:
    """The lines by code, in order (dicts keep insertion order)."""
    if isinstance(source, Computation):
        lines = [_Line(line.code, line.label, line.amount_minor) for line in source.lines]
    else:
        lines = [_stored(item, index) for index, item in enumerate(source)]
    out: dict[str, _Line] = {}
    for line in lines:
        if line.code in out:
            raise ValueError(f"the line code {line.code!r} appears twice in one version")
        out[line.code] = line
    return out


def _stored(item: JsonValue, index: int) -> _Line:
    if not isinstance(item, dict):
        raise ValueError(f"stored line {index} is not an object")
    code, label, amount = item.get("code"), item.get("label"), item.get("amount_minor")
    if not isinstance(code, str) or not isinstance(label, str):
        raise ValueError(f"stored line {index} has no string code and label")
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ValueError(f"stored line {index} has no integer amount_minor")
    return _Line(code, label, amount)
