"""https targets: CA verification, server_name (SNI + hostname check), insecure_skip_verify, client certs."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from clearsight.scrape.config import parse_scrape_configs
from clearsight.scrape.manager import ScrapeManager, TargetStatus
from tests.unit.scrape.helpers import ExpositionServer, MemorySink


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
             "-days", "2", "-subj", "/CN=clearsight-test-ca", cwd=d)  # fmt: skip
    for name, san in (("srv", "DNS:scrape.test"), ("client", "DNS:client.test")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={name}", cwd=d)  # fmt: skip
        (d / f"{name}.ext").write_text(f"subjectAltName={san}\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext", cwd=d)  # fmt: skip
    return d


def _server(pki: Path, require_client_cert: bool) -> ExpositionServer:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki / "srv.crt", pki / "srv.key")
    if require_client_cert:
        ctx.load_verify_locations(pki / "ca.crt")
        ctx.verify_mode = ssl.CERT_REQUIRED
    s = ExpositionServer(tls=ctx)
    s.exposition.body = "secure 1\n"
    return s


@pytest.fixture
def server(pki: Path) -> Iterator[ExpositionServer]:
    s = _server(pki, require_client_cert=False)
    yield s
    s.close()


@pytest.fixture
def mtls_server(pki: Path) -> Iterator[ExpositionServer]:
    s = _server(pki, require_client_cert=True)
    yield s
    s.close()


def scrape(address: str, tls: dict[str, object]) -> TargetStatus:
    cfgs = parse_scrape_configs(
        [
            {
                "job_name": "tls",
                "scheme": "https",
                "tls_config": tls,
                "static_configs": [{"targets": [address]}],
            }
        ],
        "tls.yml",
    )
    out: list[TargetStatus] = []

    async def main() -> None:
        m = ScrapeManager(cfgs, MemorySink(), "t", run_loops=False)
        await m.start()
        await m.scrape_now()
        out.extend(m.targets())
        await m.stop()

    asyncio.run(main())
    return out[0]


def test_ca_file_and_server_name(server: ExpositionServer, pki: Path) -> None:
    st = scrape(server.address, {"ca_file": str(pki / "ca.crt"), "server_name": "scrape.test"})
    assert st.health == "up", st.last_error
    assert st.scrape_url.startswith("https://")


def test_hostname_mismatch_without_server_name(server: ExpositionServer, pki: Path) -> None:
    st = scrape(server.address, {"ca_file": str(pki / "ca.crt")})
    assert st.health == "down" and "certificate" in st.last_error.lower()


def test_unknown_ca_is_refused(server: ExpositionServer) -> None:
    st = scrape(server.address, {"server_name": "scrape.test"})
    assert st.health == "down" and "certificate" in st.last_error.lower()


def test_insecure_skip_verify(server: ExpositionServer) -> None:
    st = scrape(server.address, {"insecure_skip_verify": True})
    assert st.health == "up", st.last_error


def test_client_certificate(mtls_server: ExpositionServer, pki: Path) -> None:
    base = {"ca_file": str(pki / "ca.crt"), "server_name": "scrape.test"}
    assert scrape(mtls_server.address, base).health == "down"
    st = scrape(
        mtls_server.address,
        {**base, "cert_file": str(pki / "client.crt"), "key_file": str(pki / "client.key")},
    )
    assert st.health == "up", st.last_error
