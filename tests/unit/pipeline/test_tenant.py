"""Tenant ids (pipeline/tenant.py): one rule, applied by HTTP (admission + tenant_of), gRPC and
/metrics (bounded tenant names)."""

from __future__ import annotations

import re
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from prometheus_client import generate_latest

from clearsight.api.otlp_grpc import start_otlp_grpc_server_on
from clearsight.config import load_config
from clearsight.model.samples import SampleBatch
from clearsight.pipeline.limits import WriteLimits
from clearsight.pipeline.tenant import MAX_TENANT_LENGTH, InvalidTenant, tenant_error, validate_tenant
from clearsight.selfmetrics import MAX_TENANT_LABELS, SelfMetrics
from clearsight.server import make_tenant_of_metadata
from clearsight.store.interface import AppendResult, StoreStats


@pytest.mark.parametrize("tenant", ["default", "team-a", "A.b_c", "x!-_.*'()", "a" * MAX_TENANT_LENGTH, "..."])
def test_valid_tenants(tenant: str) -> None:
    assert validate_tenant(tenant) == tenant
    assert tenant_error(tenant) is None


@pytest.mark.parametrize(
    ("tenant", "why"),
    [
        ("", "empty"),
        (".", "not allowed"),
        ("..", "not allowed"),
        ("../../etc", "character '/'"),
        ("a b", "character ' '"),
        ("é", "character 'é'"),
        ("a|b", "character '|'"),
        ("a" * (MAX_TENANT_LENGTH + 1), f"longer than {MAX_TENANT_LENGTH}"),
        ("x" * 8000, "longer than"),
    ],
)
def test_invalid_tenants_are_400_naming_the_rule(tenant: str, why: str) -> None:
    with pytest.raises(InvalidTenant) as e:
        validate_tenant(tenant)
    assert e.value.status == 400 and e.value.reason == "invalid_tenant"
    assert why in e.value.message


def test_grpc_invalid_tenant_is_invalid_argument_and_writes_nothing() -> None:
    cfg = load_config(env={"CLEARSIGHT_TENANCY_TRUST_TENANT_HEADER": "true"})
    calls: list[str] = []

    def ingest(tenant: str, batch: SampleBatch) -> AppendResult:
        calls.append(tenant)
        return AppendResult(samples_written=batch.num_samples)

    server, port = start_otlp_grpc_server_on(ingest, WriteLimits(), "127.0.0.1:0", make_tenant_of_metadata(cfg))
    req = ExportMetricsServiceRequest()
    m = req.resource_metrics.add().scope_metrics.add().metrics.add(name="g")
    m.gauge.data_points.add(time_unix_nano=1_700_000_000_000_000_000, as_double=1.0)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = metrics_service_pb2_grpc.MetricsServiceStub(ch)
            with pytest.raises(grpc.RpcError) as e:
                stub.Export(req, metadata=[("x-scope-orgid", "../../etc")], timeout=10)
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "character '/'" in (e.value.details() or "")
            stub.Export(req, metadata=[("x-scope-orgid", "team-a")], timeout=10)
    finally:
        server.stop(None)
    assert calls == ["team-a"]


def test_metrics_lists_a_bounded_number_of_tenants(tmp_path: Path) -> None:
    n = MAX_TENANT_LABELS + 50
    stats = StoreStats(active_series={f"t{i:04d}": 2 for i in range(n)})
    m = SelfMetrics()
    m.add_store(lambda: stats, tmp_path)
    lines = [ln for ln in generate_latest(m.registry).decode().splitlines()
             if ln.startswith("clearsight_active_series{")]
    assert len(lines) == MAX_TENANT_LABELS + 1
    assert 'clearsight_active_series{tenant="t0000"} 2.0' in lines
    assert f'clearsight_active_series{{tenant="t{MAX_TENANT_LABELS:04d}"}} 2.0' not in "\n".join(lines)
    assert 'clearsight_active_series{tenant="__other__"} 100.0' in lines


def test_config_default_tenant_follows_the_same_rule() -> None:
    from clearsight.config import ConfigError

    with pytest.raises(ConfigError, match=re.escape("tenancy.default_tenant: tenant id contains the character '/'")):
        load_config(env={"CLEARSIGHT_TENANCY_DEFAULT_TENANT": "../x"})
    with pytest.raises(ConfigError, match=re.escape("tenancy.default_tenant: tenant id '..' is not allowed")):
        load_config(env={"CLEARSIGHT_TENANCY_DEFAULT_TENANT": ".."})
    assert load_config(env={"CLEARSIGHT_TENANCY_DEFAULT_TENANT": "team(a)"}).tenancy.default_tenant == "team(a)"
