"""Hypothesis: canonical bytes round-trip through the strict parser and ignore member order.

Values stay inside the profile: integers within ±(2**53 − 1), strings of any Unicode scalar values
(UTF-8 encodable: no surrogate code points), nesting well below MAX_JSON_DEPTH.
"""

from __future__ import annotations

import json
import random

from hypothesis import given
from hypothesis import strategies as st

from signatures.canonical import MAX_SAFE_INTEGER, JsonValue, canonicalize, parse_json

texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=20)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
    | texts
)
json_values: st.SearchStrategy[JsonValue] = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(texts, children, max_size=5),
    max_leaves=25,
)


def _shuffled(value: JsonValue, rng: random.Random) -> JsonValue:
    """The same value with every object's members inserted in another order."""
    if isinstance(value, list):
        return [_shuffled(item, rng) for item in value]
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {name: _shuffled(member, rng) for name, member in items}
    return value


@given(json_values)
def test_canonical_bytes_are_a_fixed_point(value: JsonValue) -> None:
    canonical = canonicalize(value)
    assert canonicalize(parse_json(canonical)) == canonical


@given(json_values)
def test_parse_json_of_canonical_bytes_gives_the_value_back(value: JsonValue) -> None:
    parsed = parse_json(canonicalize(value))
    assert parsed == value
    # == says True == 1; the standard library's own serialisation tells them apart
    assert json.dumps(parsed, sort_keys=True) == json.dumps(value, sort_keys=True)


@given(json_values, st.randoms(use_true_random=False))
def test_member_order_does_not_change_the_bytes(value: JsonValue, rng: random.Random) -> None:
    assert canonicalize(_shuffled(value, rng)) == canonicalize(value)


@given(json_values)
def test_any_whitespace_parses_to_the_same_canonical_bytes(value: JsonValue) -> None:
    spaced = json.dumps(value, indent=2, ensure_ascii=True).encode()
    assert canonicalize(parse_json(spaced)) == canonicalize(value)
