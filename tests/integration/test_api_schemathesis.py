"""schemathesis over the whole OpenAPI document of the main port, through the real listener stack
(authentication, CSRF, limits) with a valid admin API key: whatever it generates for any operation,
no answer is a 5xx. Bounded: a few generated cases per operation and no shrinking of passes (about
a minute on the shared machine). The cases come from schemathesis' own strategies
(``operation.as_strategy()``), driven by hypothesis here."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from tests.support.auth_stack import Stack, auth_stack

# state-destroying operations whose success would remove what the run stands on (its key, org, users)
NOT_RUN = {
    ("DELETE", "/api/v1/admin/apikeys/{id}"),
    ("DELETE", "/api/v1/admin/orgs/{name}"),
    ("DELETE", "/api/v1/admin/users/{id}"),
}
# documented 501 Not Implemented answers: the embedded store has no snapshots
NOT_IMPLEMENTED = {"/api/v1/admin/tsdb/snapshot"}
EXAMPLES = 10


@schemathesis.serializer("application/x-protobuf", "application/x-ndjson", "application/octet-stream")
def _raw(ctx: Any, value: Any) -> bytes:
    """Binary bodies as generated (bytes), anything else as its UTF-8 text: the server must refuse it."""
    return value if isinstance(value, bytes) else str(value).encode()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # the TSDB admin API on (off it answers Prometheus' own 500 "admin APIs disabled")
    overrides = {"auth.anonymous": "off", "server.enable_admin_api": True}
    with auth_stack(tmp_path_factory.mktemp("schemathesis"), **overrides) as s:
        yield s


def test_no_5xx_with_a_valid_key(stack: Stack) -> None:
    assert stack.built.auth is not None
    key = {"Authorization": "Bearer " + stack.built.auth.keys.create("default", "schemathesis", "admin")[1]}
    failures: list[tuple[Any, ...]] = []
    with stack.client() as client:
        spec = client.get("/openapi.json", headers=key).json()
        schema = schemathesis.openapi.from_dict(spec)
        operations = [r.ok() for r in schema.get_all_operations()]
        assert len(operations) >= 100  # the whole API, not a slice of it
        ran = 0
        for op in operations:
            if (op.method.upper(), op.path) in NOT_RUN:
                continue

            @given(case=op.as_strategy())
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
                database=None,
            )
            def run(case: Any) -> None:
                kwargs = case.as_transport_kwargs(base_url="http://127.0.0.1", headers=key)
                for k in ("timeout", "allow_redirects", "verify"):
                    kwargs.pop(k, None)
                cookies = kwargs.pop("cookies", None) or {}
                if cookies:  # as a header: httpx deprecates per-request cookie jars
                    kwargs["headers"]["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
                if isinstance(kwargs.get("data"), bytes | str):  # raw bodies go as content
                    kwargs["content"] = kwargs.pop("data")
                client.cookies.clear()
                r = client.request(**kwargs, follow_redirects=False)
                if r.status_code >= 500 and not (r.status_code == 501 and case.path in NOT_IMPLEMENTED):
                    failures.append(
                        (case.method, case.path, case.query, case.body, r.status_code, r.text[:300])
                    )

            run()
            ran += 1
    assert ran >= 100
    found = sorted({(m, p, st, t[:100]) for m, p, _q, _b, st, t in failures})
    print("\n".join(map(str, found)))
    assert not failures, found
