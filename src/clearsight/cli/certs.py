"""``clearsight certs init|issue|revoke``: a small private CA for mutual TLS between agents and the server.

``init`` writes ``ca.crt``/``ca.key`` (the CA), ``server.crt``/``server.key`` (for the server's host names
and addresses) and an empty ``crl.pem``; ``issue --agent NAME --org ORG`` writes
``agents/NAME.crt``/``agents/NAME.key`` (CN = NAME, O = ORG: the organisation the server files the
agent's data under); ``revoke --agent NAME`` adds that certificate to ``crl.pem`` (the server re-reads it
on its next connection). Keys are EC P-256, written with mode 0600; nothing is ever printed but paths.

``cryptography`` is imported when a command runs (the ``clearsight`` command line stays light).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec


class CertError(Exception):
    pass


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    from cryptography.hazmat.primitives import serialization
    path.parent.mkdir(parents=True, exist_ok=True)
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    from cryptography.hazmat.primitives import serialization
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _name(cn: str, org: str = "") -> x509.Name:
    from cryptography import x509
    from cryptography.x509.oid import NameOID
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _load_ca(d: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    try:
        cert = x509.load_pem_x509_certificate((d / "ca.crt").read_bytes())
        key = serialization.load_pem_private_key((d / "ca.key").read_bytes(), None)
    except FileNotFoundError as e:
        raise CertError(f"{e.filename} is missing: run `clearsight certs init --dir {d}` first") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertError(f"{d / 'ca.key'}: not an EC key")
    return cert, key


def _leaf(ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, subject: x509.Name,
          key: ec.EllipticCurvePrivateKey, days: int, usage: x509.ObjectIdentifier,
          sans: list[x509.GeneralName], not_before: datetime.datetime | None = None) -> x509.Certificate:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    start = not_before or _now() - datetime.timedelta(minutes=5)
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca.subject).public_key(key.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(start)
         .not_valid_after(start + datetime.timedelta(days=days))
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return b.sign(ca_key, hashes.SHA256())


def _san(host: str) -> x509.GeneralName:
    from cryptography import x509
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def init(d: Path, hosts: list[str], *, org: str = "Clearsight", days: int = 3650, server_days: int = 825,
         force: bool = False) -> list[Path]:
    """A new CA, a server certificate for ``hosts`` and an empty CRL; refuses to overwrite a CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID
    if (d / "ca.key").exists() and not force:
        raise CertError(f"{d / 'ca.key'} exists: a CA is already there (--force replaces it and every "
                        "certificate it issued stops being trusted)")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    start = _now() - datetime.timedelta(minutes=5)
    ca = (x509.CertificateBuilder().subject_name(_name("Clearsight CA", org)).issuer_name(_name("Clearsight CA", org))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=days))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    _write_key(d / "ca.key", ca_key)
    _write_cert(d / "ca.crt", ca)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _leaf(ca, ca_key, _name(hosts[0] if hosts else "localhost", org), key, server_days,
                 ExtendedKeyUsageOID.SERVER_AUTH, [_san(h) for h in hosts])
    _write_key(d / "server.key", key)
    _write_cert(d / "server.crt", cert)
    _write_crl(d, ca, ca_key, [])
    return [d / "ca.crt", d / "ca.key", d / "server.crt", d / "server.key", d / "crl.pem"]


def issue(d: Path, agent: str, *, org: str, days: int = 365,
          not_before: datetime.datetime | None = None) -> list[Path]:
    """A client certificate for an agent: CN = ``agent``, O = ``org``."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID
    if not agent or "/" in agent or agent.startswith("."):
        raise CertError(f"--agent {agent!r}: expected a plain name (letters, digits, '-', '_', '.')")
    ca, ca_key = _load_ca(d)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _leaf(ca, ca_key, _name(agent, org), key, days, ExtendedKeyUsageOID.CLIENT_AUTH, [],
                 not_before=not_before)
    _write_key(d / "agents" / f"{agent}.key", key)
    _write_cert(d / "agents" / f"{agent}.crt", cert)
    return [d / "agents" / f"{agent}.crt", d / "agents" / f"{agent}.key"]


def _write_crl(d: Path, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey,
               revoked: list[x509.RevokedCertificate]) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    now = _now()
    b = (x509.CertificateRevocationListBuilder().issuer_name(ca.subject).last_update(now)
         .next_update(now + datetime.timedelta(days=3650)))
    for r in revoked:
        b = b.add_revoked_certificate(r)
    crl = b.sign(ca_key, hashes.SHA256())
    tmp = d / "crl.pem.tmp"
    tmp.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    os.replace(tmp, d / "crl.pem")


def revoke(d: Path, agent: str) -> int:
    """Adds ``agents/AGENT.crt`` to ``crl.pem``; returns the revoked serial number."""
    from cryptography import x509
    ca, ca_key = _load_ca(d)
    try:
        cert = x509.load_pem_x509_certificate((d / "agents" / f"{agent}.crt").read_bytes())
    except FileNotFoundError:
        raise CertError(f"{d / 'agents' / (agent + '.crt')} is missing: no such agent certificate") from None
    revoked: list[x509.RevokedCertificate] = []
    if (d / "crl.pem").exists():
        revoked = list(x509.load_pem_x509_crl((d / "crl.pem").read_bytes()))
    if all(r.serial_number != cert.serial_number for r in revoked):
        revoked.append(x509.RevokedCertificateBuilder().serial_number(cert.serial_number)
                       .revocation_date(_now()).build())
    _write_crl(d, ca, ca_key, revoked)
    return cert.serial_number


# --- the `clearsight certs` commands -------------------------------------------------------------

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="A private CA for mutual TLS between agents and the server.")
_DIR_HELP = "Directory of the CA (ca.crt, ca.key, server.*, crl.pem, agents/)"


def _fail(e: CertError) -> typer.Exit:
    typer.echo(f"clearsight: {e}", err=True)
    return typer.Exit(1)


@app.command("init")
def init_command(
    dir: Path = typer.Option(Path("certs"), "--dir", help=_DIR_HELP),  # noqa: B008
    host: list[str] = typer.Option(["localhost", "127.0.0.1"], "--host",  # noqa: B008
                                   help="Server name or address (repeat); the first is the CN"),
    org: str = typer.Option("Clearsight", "--org", help="O of the CA and server certificate"),
    days: int = typer.Option(825, "--days", help="Validity of the server certificate"),
    force: bool = typer.Option(False, "--force", help="Replace an existing CA"),
) -> None:
    """Create a CA, a server certificate and an empty revocation list."""
    try:
        paths = init(dir, host, org=org, server_days=days, force=force)
    except CertError as e:
        raise _fail(e) from None
    for p in paths:
        typer.echo(f"wrote {p}")
    typer.echo(f"server: server.tls_cert_file: {dir / 'server.crt'}, server.tls_key_file: {dir / 'server.key'}, "
               f"server.tls_client_ca_file: {dir / 'ca.crt'}, server.tls_crl_file: {dir / 'crl.pem'}")


@app.command("issue")
def issue_command(
    agent: str = typer.Option(..., "--agent", help="The agent's name (the certificate's CN)"),
    org: str = typer.Option("default", "--org", help="Its organisation (O): the tenant its data goes to"),
    dir: Path = typer.Option(Path("certs"), "--dir", help=_DIR_HELP),  # noqa: B008
    days: int = typer.Option(365, "--days", help="Validity"),
) -> None:
    """Issue a client certificate for an agent."""
    try:
        crt, key = issue(dir, agent, org=org, days=days)
    except CertError as e:
        raise _fail(e) from None
    typer.echo(f"wrote {crt}\nwrote {key}")
    typer.echo(f"agent.yaml: server: {{url: https://SERVER:9800, tls_ca_file: {dir / 'ca.crt'}, "
               f"tls_cert_file: {crt}, tls_key_file: {key}}}")


@app.command("revoke")
def revoke_command(
    agent: str = typer.Option(..., "--agent", help="The agent whose certificate is revoked"),
    dir: Path = typer.Option(Path("certs"), "--dir", help=_DIR_HELP),  # noqa: B008
) -> None:
    """Revoke an agent's certificate (added to crl.pem; the server refuses it from its next connection)."""
    try:
        serial = revoke(dir, agent)
    except CertError as e:
        raise _fail(e) from None
    typer.echo(f"revoked {agent} (serial {serial:x}) in {dir / 'crl.pem'}")
