"""The canonical JSON profile of signed transactions: strict parsing and RFC 8785 (JCS) bytes.

The profile is I-JSON (RFC 7493) narrowed to what money and identifiers need, so that every value
has exactly one canonical form that every JCS implementation agrees on:

* UTF-8 input without a byte order mark; strings without lone surrogates;
* no floats at all (no fraction, no exponent, no NaN/Infinity): numbers are integers within
  ±(2**53 − 1), so JCS number serialisation is plain decimal digits;
* object member names are unique;
* at most MAX_JSON_DEPTH nested containers and MAX_JSON_BYTES of input (and of canonical output).

Every refusal names the offending value as an RFC 6901 JSON Pointer plus a rule name (the RULE_*
constants below). Messages never repeat the refused value: it may be personal data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NoReturn, TypeAlias

import rfc8785

from signatures.errors import CanonicalFormError, FieldError

JsonValue: TypeAlias = bool | int | str | list["JsonValue"] | dict[str, "JsonValue"] | None

MAX_JSON_BYTES = 64 * 1024
# The largest JSON text any caller may ask for with max_bytes: the body of a signed batch of
# invoices (an envelope of up to signatures.jws.MAX_PAYLOAD_BYTES, 1 MiB, and its JWS), its
# result and the receipt that carries it.
MAX_DOCUMENT_BYTES = 2 * 1024 * 1024
MAX_JSON_DEPTH = 32  # nested arrays/objects; the root container is depth 1
MAX_SAFE_INTEGER = 2**53 - 1  # I-JSON / RFC 8785: integers exact in an IEEE 754 double
MAX_REPORTED_ERRORS = 16  # one CanonicalFormError lists at most this many problems
_MAX_SAFE_INTEGER_DIGITS = len(str(MAX_SAFE_INTEGER))  # 16: longer digit strings are refused unread

RULE_INVALID_JSON = "invalid_json"
RULE_INVALID_UTF8 = "invalid_utf8"
RULE_TOO_LARGE = "too_large"
RULE_TOO_DEEP = "too_deep"
RULE_DUPLICATE_KEY = "duplicate_key"
RULE_FLOAT_NOT_ALLOWED = "float_not_allowed"
RULE_INTEGER_OUT_OF_RANGE = "integer_out_of_range"
RULE_LONE_SURROGATE = "lone_surrogate"
RULE_UNSUPPORTED_TYPE = "unsupported_type"  # only for values built in Python (tuples, bytes, …)

_UTF8_BOM = b"\xef\xbb\xbf"
_SURROGATE = re.compile(r"[\ud800-\udfff]")
# String tokens (unrolled, so no catastrophic backtracking) and the structural characters.
_STRUCTURE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},]', re.DOTALL)


def join_pointer(pointer: str, token: str | int) -> str:
    """The JSON Pointer (RFC 6901) of member or index `token` under `pointer`.

    A lone surrogate in a member name is replaced by U+FFFD, so pointers are always valid UTF-8.
    """
    text = _SURROGATE.sub("\ufffd", str(token))
    return f"{pointer}/{text.replace('~', '~0').replace('/', '~1')}"


def _check_max_bytes(max_bytes: int) -> None:
    if not 0 < max_bytes <= MAX_DOCUMENT_BYTES:
        raise ValueError(f"max_bytes is within 1..MAX_DOCUMENT_BYTES={MAX_DOCUMENT_BYTES}")


def parse_json(data: bytes, *, max_bytes: int = MAX_JSON_BYTES) -> JsonValue:
    """Parse untrusted JSON bytes under the canonical profile.

    Raises CanonicalFormError (with every problem found, each with pointer and rule) when the
    input is larger than max_bytes (MAX_JSON_BYTES unless the caller names a larger limit, up to
    MAX_DOCUMENT_BYTES; ValueError beyond), not UTF-8 or starts with a BOM, not JSON, nested deeper
    than MAX_JSON_DEPTH, or holds a float, NaN/Infinity, an integer beyond ±MAX_SAFE_INTEGER, a
    duplicate member name or a lone surrogate.
    """
    _check_max_bytes(max_bytes)
    if len(data) > max_bytes:
        _refuse("", RULE_TOO_LARGE, f"the JSON text is larger than {max_bytes} bytes")
    if data.startswith(_UTF8_BOM):
        _refuse("", RULE_INVALID_UTF8, "the JSON text must not start with a byte order mark")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        _refuse("", RULE_INVALID_UTF8, f"the JSON text is not UTF-8 (byte offset {exc.start})")
    deep = _first_too_deep(text)
    if deep is not None:
        _refuse(deep, RULE_TOO_DEEP, f"more than {MAX_JSON_DEPTH} nested arrays or objects")
    try:
        raw: object = json.loads(
            text,
            object_pairs_hook=_object_pairs,
            parse_float=_refuse_float,
            parse_constant=_refuse_float,
            parse_int=_bounded_int,
        )
    except json.JSONDecodeError as exc:
        _refuse("", RULE_INVALID_JSON, f"{exc.msg} (line {exc.lineno}, column {exc.colno})")
    except RecursionError:  # unreachable after _first_too_deep; kept as a second fence
        _refuse("", RULE_TOO_DEEP, f"more than {MAX_JSON_DEPTH} nested arrays or objects")
    return _validated(raw)


def canonicalize(value: JsonValue, *, max_bytes: int = MAX_JSON_BYTES) -> bytes:
    """The RFC 8785 (JCS) canonical UTF-8 bytes of `value`, checked against the same profile.

    Raises CanonicalFormError when the value holds a float, an integer beyond ±MAX_SAFE_INTEGER,
    a lone surrogate, a non-string member name, a type that is not JSON, more than MAX_JSON_DEPTH
    nested containers, or when the canonical bytes would exceed max_bytes (as parse_json).
    """
    _check_max_bytes(max_bytes)
    data = rfc8785.dumps(_validated(value))
    if len(data) > max_bytes:
        _refuse("", RULE_TOO_LARGE, f"the canonical form is larger than {max_bytes} bytes")
    return data


def _refuse(pointer: str, rule: str, message: str) -> NoReturn:
    raise CanonicalFormError((FieldError(pointer=pointer, rule=rule, message=message),))


# --- json.loads hooks: they do not know the path, so they leave markers the walk reports ----------


@dataclass(frozen=True)
class _Refused:
    rule: str
    message: str


@dataclass(frozen=True)
class _Duplicated:
    members: dict[str, object]
    names: tuple[str, ...]


def _object_pairs(pairs: list[tuple[str, object]]) -> dict[str, object] | _Duplicated:
    members: dict[str, object] = {}
    duplicates: list[str] = []
    for name, value in pairs:
        if name in members and name not in duplicates:
            duplicates.append(name)
        members[name] = value
    return _Duplicated(members, tuple(duplicates)) if duplicates else members


def _refuse_float(text: str) -> _Refused:
    return _Refused(RULE_FLOAT_NOT_ALLOWED, "numbers must be integers: no fraction, exponent, NaN")


def _bounded_int(text: str) -> int | _Refused:
    # Checked on the digit string, before int(): a 60 000-digit number costs nothing to refuse.
    if len(text.lstrip("-")) <= _MAX_SAFE_INTEGER_DIGITS:
        try:
            value = int(text)
        except ValueError:  # int max-str-digits; cannot happen below 17 digits
            value = MAX_SAFE_INTEGER + 1
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return value
    return _Refused(RULE_INTEGER_OUT_OF_RANGE, f"integers must be within ±{MAX_SAFE_INTEGER}")


# --- depth, measured on the text before json.loads recurses ---------------------------------------


@dataclass
class _Frame:
    """An open container while scanning: where the next value sits inside it."""

    is_object: bool
    index: int = 0
    key_json: str = '""'
    expecting_key: bool = False


def _first_too_deep(text: str) -> str | None:
    """The pointer of the first container nested deeper than MAX_JSON_DEPTH, if any.

    Only string tokens and structural characters matter; malformed text is left to json.loads.
    """
    frames: list[_Frame] = []
    for match in _STRUCTURE.finditer(text):
        token = match.group()
        char = token[0]
        if char == '"':
            if frames and frames[-1].expecting_key:
                frames[-1].key_json = token
                frames[-1].expecting_key = False
        elif char in "[{":
            if len(frames) == MAX_JSON_DEPTH:
                return _frames_pointer(frames)
            frames.append(_Frame(is_object=char == "{", expecting_key=char == "{"))
        elif char in "]}":
            if frames:
                frames.pop()
        elif frames:  # a comma
            frames[-1].index += 1
            frames[-1].expecting_key = frames[-1].is_object
    return None


def _frames_pointer(frames: list[_Frame]) -> str:
    pointer = ""
    for frame in frames:
        if not frame.is_object:
            pointer = join_pointer(pointer, frame.index)
            continue
        try:
            name: object = json.loads(frame.key_json)
        except json.JSONDecodeError:
            name = ""
        pointer = join_pointer(pointer, name if isinstance(name, str) else "")
    return pointer


# --- the walk: checks every value, names its pointer, and returns a plain JsonValue copy ----------


def _validated(value: object) -> JsonValue:
    errors: list[FieldError] = []
    result = _walk(value, "", 0, errors)
    if errors:
        raise CanonicalFormError(tuple(errors))
    return result


def _add(errors: list[FieldError], pointer: str, rule: str, message: str) -> None:
    if len(errors) < MAX_REPORTED_ERRORS:
        errors.append(FieldError(pointer=pointer, rule=rule, message=message))


def _walk(value: object, pointer: str, depth: int, errors: list[FieldError]) -> JsonValue:
    if len(errors) >= MAX_REPORTED_ERRORS:
        return None
    if value is None or isinstance(value, bool):
        return None if value is None else bool(value)
    if isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            _add(errors, pointer, RULE_INTEGER_OUT_OF_RANGE, f"beyond ±{MAX_SAFE_INTEGER}")
        return int(value)
    if isinstance(value, str):
        if _SURROGATE.search(value):
            _add(errors, pointer, RULE_LONE_SURROGATE, "the string holds a lone surrogate")
        return str.__str__(value)
    if isinstance(value, _Refused):
        _add(errors, pointer, value.rule, value.message)
        return None
    if isinstance(value, float):
        _add(errors, pointer, RULE_FLOAT_NOT_ALLOWED, "numbers must be integers, not floats")
        return None
    if isinstance(value, dict | list | _Duplicated):
        if depth >= MAX_JSON_DEPTH:
            _add(errors, pointer, RULE_TOO_DEEP, f"more than {MAX_JSON_DEPTH} nested containers")
            return None
        if isinstance(value, list):
            return [
                _walk(item, join_pointer(pointer, index), depth + 1, errors)
                for index, item in enumerate(value)
            ]
        if isinstance(value, _Duplicated):
            return _walk_members(value.members.items(), value.names, pointer, depth, errors)
        return _walk_members(value.items(), (), pointer, depth, errors)
    _add(errors, pointer, RULE_UNSUPPORTED_TYPE, f"{type(value).__name__} is not a JSON value")
    return None


def _walk_members(
    members: Iterable[tuple[object, object]],
    duplicates: tuple[str, ...],
    pointer: str,
    depth: int,
    errors: list[FieldError],
) -> JsonValue:
    result: dict[str, JsonValue] = {}
    for name, member in members:
        if not isinstance(name, str):
            _add(errors, pointer, RULE_UNSUPPORTED_TYPE, "member names must be strings")
            continue
        child = join_pointer(pointer, name)
        if name in duplicates:
            _add(errors, child, RULE_DUPLICATE_KEY, "the member name appears more than once")
        if _SURROGATE.search(name):
            _add(errors, child, RULE_LONE_SURROGATE, "the member name holds a lone surrogate")
        result[str.__str__(name)] = _walk(member, child, depth + 1, errors)
    return result
