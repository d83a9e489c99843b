"""Test-only SAML key material: an RSA key and a self-signed certificate made on the spot.

::

    key_file, cert_file = make_key_pair(tmp_path, "kollega-test-sp")

Nothing made here is ever a production key: a deployment brings its own (docs/operations.md).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def certificate_pem(key: rsa.RSAPrivateKey, common_name: str, *, not_before: datetime | None = None) -> bytes:
    """A self-signed certificate for ``key`` (ten years from ``not_before``, default yesterday), as PEM."""
    start = not_before or datetime.now(UTC) - timedelta(days=1)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(int.from_bytes(common_name.encode()[:16].ljust(16, b"\0"), "big") | 1)
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: rsa.RSAPrivateKey) -> bytes:
    """The private key as unencrypted PKCS#8 PEM (what xmlsec1 reads)."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def make_key_pair(directory: Path, common_name: str = "kollega-test-sp") -> tuple[Path, Path]:
    """A fresh 2048-bit RSA key and its self-signed certificate in ``directory``; (key file, cert file)."""
    directory.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file, cert_file = directory / f"{common_name}.key", directory / f"{common_name}.crt"
    key_file.write_bytes(key_pem(key))
    key_file.chmod(0o600)
    cert_file.write_bytes(certificate_pem(key, common_name))
    return key_file, cert_file
