"""Events as log entries: an event's ``name=value`` tags become stream labels (what label-narrowed roles
and ``label=`` filters select on), bounded, never overriding the event's own labels, and the event
reads back exactly as it came (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from clearsight.model.logs import Event
from clearsight.pipeline.event_entries import MAX_TAG_LABELS, event_of, events_batch, tag_labels


def test_name_value_tags_become_labels() -> None:
    assert tag_labels(("team=payments", "billing", "env=prod", "team=other")) == {"team": "payments", "env": "prod"}
    # not labels: reserved names, __ prefixes, invalid names, empty values
    assert tag_labels(("level=ERROR", "event_type=x", "origin=y", "__name__=z", "9x=1", "a-b=1", "k=")) == {}
    many = tuple(f"k{i}=v" for i in range(20))
    assert len(tag_labels(many)) == MAX_TAG_LABELS


def test_stream_labels_of_a_tagged_event() -> None:
    ev = Event(id="1", message="m", level="INFO", severity="low", timestamp=5, type="deploy",
               tags=("team=payments", "level=ERROR"))
    batch = events_batch([ev])
    assert dict(batch.entry(0).stream) == {"event_type": "deploy", "level": "INFO", "team": "payments"}
    assert event_of(batch.entry(0)) == ev


text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(text, st.builds(lambda k, v: f"{k}={v}", st.from_regex(r"[a-z_]{1,6}", fullmatch=True),
                                          text)), max_size=12))
def test_any_tags_round_trip(tags: list[str]) -> None:
    ev = Event(id="i", message="m", level="WARN", severity="high", timestamp=1, origin="o", tags=tuple(tags))
    e = events_batch([ev]).entry(0)
    assert event_of(e) == ev
    stream = dict(e.stream)
    assert stream["level"] == "WARN" and stream["origin"] == "o" and stream["event_type"] == "event"
    assert len(stream) <= 3 + MAX_TAG_LABELS
