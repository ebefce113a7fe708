"""``bench/hardening.py`` writes its expensive OTLP bodies by hand (protobuf wire format): the
real protobuf classes read them as the messages the bench names."""

from __future__ import annotations

import gzip

from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2

from tests.support.bench_module import load


def test_the_hand_written_bodies_are_the_messages_they_claim() -> None:
    bodies = load("hardening").otlp_bodies(7)
    assert set(bodies) == {"3M empty data points", "3M empty metrics", "3M empty resource attributes"}
    parsed = {}
    for kind, body in bodies.items():
        req = metrics_service_pb2.ExportMetricsServiceRequest()
        req.ParseFromString(gzip.decompress(body))
        parsed[kind] = req
    points = parsed["3M empty data points"].resource_metrics[0].scope_metrics[0].metrics[0]
    assert points.name == "bench_bomb" and len(points.gauge.data_points) == 7
    assert not points.gauge.data_points[0].HasField("as_double")
    assert len(parsed["3M empty metrics"].resource_metrics[0].scope_metrics[0].metrics) == 7
    rm = parsed["3M empty resource attributes"].resource_metrics[0]
    assert len(rm.resource.attributes) == 7 and rm.scope_metrics[0].metrics[0].name == "bench_bomb"

