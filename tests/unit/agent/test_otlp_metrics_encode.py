"""The agent's OTLP metrics requests (``shipper.protocol: grpc``) give, through the server's own OTLP
decoder, exactly the series and samples its remote-write requests give through the remote-write
decoder: node_exporter names and labels unchanged, host labels merged the same way."""

from __future__ import annotations

import gzip

from hypothesis import given, settings
from hypothesis import strategies as st

from clearsight.agent.otlp_metrics import MetricsEncoder
from clearsight.agent.sample import Sample, sample
from clearsight.agent.shipper import Encoder
from clearsight.ingest.otlp_metrics import convert_protobuf
from clearsight.ingest.remote_write import decode_write_request
from clearsight.model.samples import SampleBatch
from clearsight.pipeline.limits import WriteLimits

HOST = {"instance": "web-1", "job": "node", "team": "ops"}
TS = 1_764_900_000_123
LIMITS = WriteLimits()


def series_of(batch: SampleBatch) -> dict[tuple[tuple[str, str], ...], list[tuple[int, float]]]:
    out: dict[tuple[tuple[str, str], ...], list[tuple[int, float]]] = {}
    for j in range(batch.num_samples):
        labels = tuple(sorted(batch.decode_labels(batch.keys[int(batch.series_idx[j])])))
        out.setdefault(labels, []).append((int(batch.timestamps[j]), float(batch.values[j])))
    return out


def via_remote_write(samples: list[Sample], own: bool, max_samples: int = 2000) -> dict:  # type: ignore[type-arg]
    out: dict = {}  # type: ignore[type-arg]
    for body, _n in Encoder(HOST, max_samples).encode(samples, TS, own):
        b = decode_write_request(body, content_encoding="snappy", content_type="application/x-protobuf",
                                 limits=LIMITS)
        for k, v in series_of(b).items():
            out.setdefault(k, []).extend(v)
    return out


def via_otlp(samples: list[Sample], own: bool, max_samples: int = 2000) -> dict:  # type: ignore[type-arg]
    out: dict = {}  # type: ignore[type-arg]
    requests = MetricsEncoder(HOST, max_samples).encode(samples, TS, own)
    assert sum(n for _b, n in requests) == len(samples)
    for body, _n in requests:
        d = convert_protobuf(gzip.decompress(body), limits=LIMITS, now_ms=TS)
        assert d.rejected_points == 0, d.messages
        for k, v in series_of(d.batch).items():
            out.setdefault(k, []).extend(v)
    return out


NODE = [
    sample("node_cpu_seconds_total", 1234.5, cpu="0", mode="idle"),
    sample("node_cpu_seconds_total", 12.25, cpu="0", mode="user"),
    sample("node_memory_MemAvailable_bytes", 8.5e9),
    sample("node_load1", 0.42),
    sample("node_filesystem_avail_bytes", 1e11, device="/dev/sda1", fstype="ext4", mountpoint="/"),
    sample("node_network_receive_bytes_total", 9e9, device="eth0"),
    sample("node_boot_time_seconds", 1.7e9),
    sample("clearsight_agent_dropped_samples_total", 0.0, instance="overridden by the host's"),
]


def test_node_exporter_names_and_host_labels_are_the_same_over_either_protocol() -> None:
    rw, otlp = via_remote_write(NODE, False), via_otlp(NODE, False)
    assert otlp == rw
    assert (("__name__", "node_load1"), ("instance", "web-1"), ("job", "node"), ("team", "ops")) in otlp


def test_scraped_series_keep_their_targets_job_and_instance() -> None:
    scraped = [sample("http_requests_total", 7.0, job="api", instance="10.0.0.5:8080", code="200"),
               sample("http_request_duration_seconds_bucket", 3.0, job="api", instance="10.0.0.5:8080", le="0.5")]
    assert via_otlp(scraped, True) == via_remote_write(scraped, True)
    assert (("__name__", "http_requests_total"), ("code", "200"), ("instance", "10.0.0.5:8080"),
            ("job", "api"), ("team", "ops")) in via_otlp(scraped, True)


def test_requests_are_split_at_max_samples() -> None:
    many = [sample("node_cpu_seconds_total", float(i), cpu=str(i), mode="idle") for i in range(25)]
    assert len(MetricsEncoder(HOST, 10).encode(many, TS)) == 3
    assert via_otlp(many, False, 10) == via_remote_write(many, False, 10)


# The server's OTLP name mapping folds runs of underscores in metric and label names (as Prometheus'
# does): node_exporter's names have none, and neither do these.
names = st.from_regex(r"[a-zA-Z](_?[a-zA-Z0-9]){0,20}(_total)?", fullmatch=True)
label_names = st.from_regex(r"[a-z](_?[a-z0-9]){0,8}", fullmatch=True).filter(lambda n: n not in HOST)
values = st.floats(allow_nan=False, width=64)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(names, st.dictionaries(label_names, st.text(min_size=1, max_size=12), max_size=4), values),
                max_size=30, unique_by=lambda t: (t[0], tuple(sorted(t[1].items())))),
       st.booleans())
def test_any_samples_decode_to_the_same_series(raw: list[tuple[str, dict[str, str], float]], own: bool) -> None:
    samples = [sample(n, v, **labels) for n, labels, v in raw]
    assert via_otlp(samples, own) == via_remote_write(samples, own)
