"""``/docs``' OpenAPI document: every route is in it, every operation id is unique (GET and POST
distinct), the Prometheus endpoints declare their parameters, and building it warns about nothing."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.routing import Route

from clearsight.api.app import create_app
from clearsight.api.openapi_params import PARAMS, operation_id
from clearsight.config import load_config
from clearsight.server import build


@pytest.fixture
def app(tmp_path: Path) -> Iterator[FastAPI]:
    cfg = load_config(env={}, overrides={"storage.data_dir": str(tmp_path / "data")})
    built = build(cfg)
    try:
        yield create_app(built.services)
    finally:
        built.store.close()


def _doc(app: FastAPI) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a duplicate operation id is a warning: fail on it
        return app.openapi()


def test_every_route_and_method_is_documented(app: FastAPI) -> None:
    doc = _doc(app)
    missing = []
    for route in app.routes:
        if not isinstance(route, Route) or not route.include_in_schema:
            continue
        for method in route.methods or ():
            if method == "HEAD" and "GET" in (route.methods or ()) and method.lower() not in doc["paths"].get(
                    route.path, {}):
                continue  # Starlette's implicit HEAD of a plain GET route
            if method.lower() not in doc["paths"].get(route.path, {}):
                missing.append(f"{method} {route.path}")
    assert not missing, f"routes missing from the OpenAPI document: {missing}"
    assert "post" in doc["paths"]["/v1/metrics"]  # the OTLP/HTTP route (a plain Starlette route)
    assert {"get", "head"} <= set(doc["paths"]["/-/healthy"])


def test_operation_ids_are_unique_and_get_post_distinct(app: FastAPI) -> None:
    doc = _doc(app)
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    q = doc["paths"]["/api/v1/query"]
    assert q["get"]["operationId"] == "get_api_v1_query" and q["post"]["operationId"] == "post_api_v1_query"
    assert operation_id("/api/v1/label/{name}/values", "GET") == "get_api_v1_label_name_values"


def test_prometheus_endpoints_declare_every_parameter(app: FastAPI) -> None:
    doc = _doc(app)
    for path, params in PARAMS.items():
        ops = doc["paths"][path]
        if "get" in ops:
            declared = {p["name"] for p in ops["get"].get("parameters", []) if p["in"] == "query"}
            assert declared == set(params), path
        if "post" in ops:
            form = ops["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
            assert set(form["properties"]) == set(params), path
    rng = {p["name"]: p for p in doc["paths"]["/api/v1/query_range"]["get"]["parameters"]}
    assert all(rng[n]["required"] for n in ("query", "start", "end", "step")) and not rng["limit"]["required"]
    assert rng["query"]["schema"] == {"type": "string"}
    series = {p["name"]: p for p in doc["paths"]["/api/v1/series"]["get"]["parameters"]}
    assert series["match[]"]["schema"]["type"] == "array"
    values = doc["paths"]["/api/v1/label/{name}/values"]["get"]["parameters"]
    assert {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}} in values
    write = doc["paths"]["/api/v1/write"]["post"]["requestBody"]["content"]
    assert "application/x-protobuf" in write


def test_documented_params_name_existing_routes(app: FastAPI) -> None:
    paths = {r.path for r in app.routes if isinstance(r, Route)}
    assert set(PARAMS) <= paths
