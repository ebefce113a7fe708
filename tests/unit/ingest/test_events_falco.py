"""Event API and Falco decoders: the Vigilant fields, validation paths, the Falco samples, fuzz."""

from __future__ import annotations

from itertools import count
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearsight.ingest import events as ev
from clearsight.ingest import falco
from clearsight.ingest.log_common import LogLimits
from clearsight.model.logs import FALCO_ALERT, Event
from clearsight.pipeline.errors import IngestError, LimitExceeded, PayloadTooLarge

NOW = 1_800_000_000_000_000_000
FALCO = Path("/work/shared/conformance/falco")
ALLOWED = (ev.EventValidationError, LimitExceeded, PayloadTooLarge)  # a decoder raises its own error or a limit error
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def ids() -> object:
    c = count()
    return lambda: f"id-{next(c)}"


def test_full_event_and_defaults() -> None:
    full = {"id": "e1", "message": "deploy finished", "level": "warn", "severity": "HIGH",
            "timestamp": "2024-05-01T10:00:00.000000001Z", "origin": "ci", "source": "github",
            "type": "deploy", "group": "web", "tags": ["prod", "v2"], "data": {"sha": "abc", "n": 2**62 + 1},
            "resource": {"host.name": "h1"}}
    minimal = {"message": "hi"}
    got = ev.decode_events(orjson.dumps([full, minimal]), now_ns=NOW, new_id=ids())  # type: ignore[arg-type]
    assert got[0] == Event(id="e1", message="deploy finished", level="WARN", severity="high",
                           timestamp=1714557600000000001, type="deploy", origin="ci", source="github",
                           group="web", tags=("prod", "v2"), data={"sha": "abc", "n": 2**62 + 1},
                           resource=(("host.name", "h1"),))
    assert got[1] == Event(id="id-0", message="hi", level="INFO", severity="low", timestamp=NOW)


def test_single_object_and_wrapped_batch_and_pulsesight_types() -> None:
    one = ev.decode_events(b'{"message":"x","level":"ERROR","timestamp":5}', now_ns=NOW)
    assert one[0].timestamp == 5 and one[0].severity == "high" and len(one[0].id) == 36
    kinds = ["network_flow", "process_spawn", "file_access"]
    got = ev.decode_events(orjson.dumps({"events": [{"message": k, "type": k} for k in kinds]}), now_ns=NOW)
    assert [e.type for e in got] == kinds


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"level": "INFO"}, "event.message"),
        ({"message": "x", "level": "LOUD"}, "event.level"),
        ({"message": "x", "severity": "extreme"}, "event.severity"),
        ({"message": "x", "timestamp": "yesterday"}, "event.timestamp"),
        ({"message": "x", "timestamp": 1.5}, "event.timestamp"),
        ({"message": "x", "tags": ["a", 1]}, "event.tags[1]"),
        ({"message": "x", "data": [1]}, "event.data"),
        ({"message": "x", "id": ""}, "event.id"),
        ({"message": "x", "lvl": "INFO"}, "event.lvl"),
        ({"message": "x", "group": 3}, "event.group"),
        ([{"message": "x"}, {"message": 1}], "events[1].message"),
        ({"events": {}}, "events"),
    ],
)
def test_validation_names_the_field(body: object, field: str) -> None:
    with pytest.raises(ev.EventValidationError) as ei:
        ev.decode_events(orjson.dumps(body), now_ns=NOW)
    assert ei.value.field == field
    assert ei.value.message.startswith(field)


def test_event_from_dict_rejects_non_json_data() -> None:
    with pytest.raises(ev.EventValidationError) as ei:
        ev.event_from_dict({"message": "m", "data": {"x": object()}}, "e", now_ns=NOW, limits=LogLimits())
    assert ei.value.field == "e.data"


def test_event_limits() -> None:
    with pytest.raises(LimitExceeded, match="more than 1 entries"):
        ev.decode_events(b'[{"message":"a"},{"message":"b"}]', now_ns=NOW, limits=LogLimits(max_entries_per_request=1))
    with pytest.raises(ev.EventValidationError, match="over the limit of 10 bytes"):
        ev.decode_events(b'{"message":"' + b"x" * 11 + b'"}', now_ns=NOW, limits=LogLimits(max_line_bytes=10))


def test_falco_samples() -> None:
    one = falco.decode_falco((FALCO / "01_write_below_binary_dir.json").read_bytes(), new_id=ids())  # type: ignore[arg-type]
    e = one[0]
    assert e.type == FALCO_ALERT and e.origin == "falco" and e.group == "Write below binary dir"
    assert (e.level, e.severity) == ("ERROR", "high")
    assert e.timestamp == 1558107116746609046  # time, exact ns
    assert e.data["output_fields"]["evt.time"] == 1507591916746609046  # exact int, differs from time
    assert e.resource == (("host.name", "localhost"),)
    assert e.id == "id-0"
    two = falco.decode_falco((FALCO / "02_test_rule_with_source_tags_hostname.json").read_bytes())[0]
    assert (two.level, two.severity, two.source, two.tags) == ("DEBUG", "low", "syscalls", ("test", "example"))
    assert two.timestamp == 978311400 * 10**9
    three = falco.decode_falco((FALCO / "03_internal_syscall_event_drop.json").read_bytes())[0]
    assert three.timestamp == 1677812583000000003 and three.data["output_fields"]["n_drops"] == 815508
    nd = falco.decode_falco((FALCO / "samples.ndjson").read_bytes())
    assert [x.group for x in nd] == [e.group, two.group, three.group]
    arr = falco.decode_falco(b"[" + b",".join(orjson.dumps(orjson.loads(line))
                                               for line in (FALCO / "samples.ndjson").read_bytes().split(b"\n")
                                               if line.strip()) + b"]")
    assert [x.timestamp for x in arr] == [x.timestamp for x in nd]


def test_falco_container_and_k8s_resource() -> None:
    alert = {"output": "shell in container", "priority": "Critical", "rule": "Terminal shell",
             "time": "2024-05-01T10:00:00.5Z", "hostname": "node-1", "uuid": "u-1",
             "output_fields": {"container.id": "abc123", "container.name": "web", "k8s.ns.name": "shop",
                               "k8s.pod.name": "web-0", "container.image.repository": "<NA>", "proc.pid": None}}
    e = falco.decode_falco(orjson.dumps(alert))[0]
    assert e.id == "u-1" and (e.level, e.severity) == ("ERROR", "critical")
    assert dict(e.resource) == {"host.name": "node-1", "container.id": "abc123", "container.name": "web",
                                "k8s.namespace.name": "shop", "k8s.pod.name": "web-0"}
    assert e.data["output_fields"]["proc.pid"] is None


@pytest.mark.parametrize(
    ("alert", "field"),
    [
        ({"priority": "Error", "rule": "r", "time": "2024-05-01T10:00:00Z"}, "alerts[0].output"),
        ({"output": "o", "priority": "Loud", "rule": "r", "time": "2024-05-01T10:00:00Z"}, "alerts[0].priority"),
        ({"output": "o", "priority": "Error", "rule": "r", "time": "soon"}, "alerts[0].time"),
        ({"output": "o", "priority": "Error", "rule": "r", "time": "2024-05-01T10:00:00Z", "tags": [1]},
         "alerts[0].tags"),
        ({"output": "o", "priority": "Error", "rule": "r", "time": "2024-05-01T10:00:00Z", "output_fields": 1},
         "alerts[0].output_fields"),
    ],
)
def test_falco_errors_name_the_field(alert: dict[str, object], field: str) -> None:
    with pytest.raises(falco.FalcoError) as ei:
        falco.decode_falco(orjson.dumps(alert))
    assert ei.value.field == field


def test_falco_bad_ndjson_line() -> None:
    good = (FALCO / "samples.ndjson").read_bytes().split(b"\n")[0]
    with pytest.raises(falco.FalcoError) as ei:
        falco.decode_falco(good + b"\n{broken\n")
    assert ei.value.field == "alerts[1]"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["id", "message", "level", "severity", "timestamp", "tags", "data", "type", "events",
                         "output", "priority", "rule", "time", "output_fields", "hostname", "resource"]),
        inner, max_size=5),
    max_leaves=15,
)


@FUZZ
@given(json_values)
def test_fuzz_structures(doc: object) -> None:
    body = orjson.dumps(doc)
    for decode in (lambda: ev.decode_events(body, now_ns=NOW), lambda: falco.decode_falco(body)):
        try:
            out = decode()
        except IngestError as e:
            assert isinstance(e, ALLOWED) and e.message
        else:
            assert all(isinstance(x, Event) for x in out)


@FUZZ
@given(st.binary(max_size=200))
def test_fuzz_bytes(data: bytes) -> None:
    for decode in (lambda: ev.decode_events(data, now_ns=NOW), lambda: falco.decode_falco(data)):
        try:
            decode()
        except IngestError as e:
            assert isinstance(e, ALLOWED) and e.message
