"""A key's next event, judged from its newest event and its event count alone
(signatures.keys.status_after_event, what add_key_event uses so that a state change does not
read the key's whole history), answers exactly as the record with its whole history does:
``record.with_event(event).status_at(event.at)``, or the same refusal."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from signatures.errors import KeyRecordError, KeyStateError
from signatures.keys import (
    MAX_KEY_EVENTS,
    KeyEvent,
    KeyEventKind,
    KeyRecord,
    KeyStatus,
    RevocationReason,
    status_after_event,
)
from tests.property.test_validation_properties import event_kinds, instants, key_records


@st.composite
def next_events(draw: st.DrawFn) -> KeyEvent:
    kind = draw(event_kinds | st.just(KeyEventKind.REGISTERED))
    reason = draw(st.sampled_from(RevocationReason)) if kind is KeyEventKind.REVOKED else None
    return KeyEvent(kind, draw(instants), reason=reason)


def _whole(record: KeyRecord, event: KeyEvent) -> KeyStatus | tuple[type, str]:
    try:
        return record.with_event(event).status_at(event.at)
    except (KeyStateError, KeyRecordError) as exc:
        return type(exc), str(exc)


def _newest(record: KeyRecord, event: KeyEvent, count: int) -> KeyStatus | tuple[type, str]:
    try:
        return status_after_event(
            kid=record.kid,
            not_before=record.not_before,
            not_after=record.not_after,
            last=record.events[-1],
            count=count,
            event=event,
        )
    except (KeyStateError, KeyRecordError) as exc:
        return type(exc), str(exc)


@given(key_records(), next_events())
def test_the_newest_event_decides_as_the_whole_history_does(
    record: KeyRecord, event: KeyEvent
) -> None:
    assert _newest(record, event, len(record.events)) == _whole(record, event)


@given(key_records(), next_events())
def test_a_full_history_refuses_one_more_event(record: KeyRecord, event: KeyEvent) -> None:
    answer = _newest(record, event, MAX_KEY_EVENTS)
    whole = _whole(record, event)
    if isinstance(whole, tuple):  # the state machine refuses first, as with_event does
        assert answer == whole
    else:
        assert answer == (KeyRecordError, f"more than MAX_KEY_EVENTS={MAX_KEY_EVENTS}")
