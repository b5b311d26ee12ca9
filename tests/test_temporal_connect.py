"""How the API and the worker reach Temporal: the plain dev server by default, a cluster over
TLS or mTLS, Temporal Cloud with mTLS or an API key; incomplete or contradictory settings stop
the process at start-up with the setting's name."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import ValidationError
from temporalio.client import Client
from temporalio.service import TLSConfig

import core.temporal
from core.settings import Settings
from core.temporal import TemporalConfigError, connect, connect_options

TEMPORAL_ENV = (
    "CASEDESK_TEMPORAL_ADDRESS",
    "CASEDESK_TEMPORAL_NAMESPACE",
    "CASEDESK_TEMPORAL_TLS",
    "CASEDESK_TEMPORAL_TLS_CLIENT_CERT_PATH",
    "CASEDESK_TEMPORAL_TLS_CLIENT_KEY_PATH",
    "CASEDESK_TEMPORAL_TLS_SERVER_CA_CERT_PATH",
    "CASEDESK_TEMPORAL_TLS_SERVER_NAME",
    "CASEDESK_TEMPORAL_API_KEY",
)


@pytest.fixture(autouse=True)
def _no_temporal_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in TEMPORAL_ENV:
        monkeypatch.delenv(name, raising=False)


def settings_from(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **env: str) -> Settings:
    """Settings as a process reads them: from CASEDESK_* environment variables."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings(data_dir=tmp_path, environment="test")


def client_pair(directory: Path) -> tuple[Path, Path, bytes, bytes]:
    """A real self-signed client certificate and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "casedesk-worker")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cert_path, key_path = directory / "client.pem", directory / "client.key"
    cert_path.write_bytes(cert_pem)
    key_path.write_bytes(key_pem)
    return cert_path, key_path, cert_pem, key_pem


# --- building the options ------------------------------------------------------------------


def test_the_dev_server_is_reached_in_plain_text(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    options = connect_options(settings_from(monkeypatch, tmp_path))

    assert options.target_host == "127.0.0.1:7233"
    assert options.namespace == "default"
    assert options.tls is False
    assert options.api_key is None


def test_mtls_sends_the_certificate_and_key_files_contents(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cert_path, key_path, cert_pem, key_pem = client_pair(tmp_path)
    ca_path = tmp_path / "ca.pem"
    ca_path.write_bytes(cert_pem)  # any PEM will do as the CA here
    settings = settings_from(
        monkeypatch,
        tmp_path,
        CASEDESK_TEMPORAL_ADDRESS="casedesk.a1b2c.tmprl.cloud:7233",
        CASEDESK_TEMPORAL_NAMESPACE="casedesk.a1b2c",
        CASEDESK_TEMPORAL_TLS_CLIENT_CERT_PATH=str(cert_path),
        CASEDESK_TEMPORAL_TLS_CLIENT_KEY_PATH=str(key_path),
        CASEDESK_TEMPORAL_TLS_SERVER_CA_CERT_PATH=str(ca_path),
        CASEDESK_TEMPORAL_TLS_SERVER_NAME="temporal.internal",
    )

    options = connect_options(settings)

    assert options.target_host == "casedesk.a1b2c.tmprl.cloud:7233"
    assert options.namespace == "casedesk.a1b2c"
    assert options.tls == TLSConfig(
        client_cert=cert_pem,
        client_private_key=key_pem,
        server_root_ca_cert=cert_pem,
        domain="temporal.internal",
    )
    assert options.api_key is None
    assert key_pem not in repr(options).encode() and "mTLS" in repr(options)


def test_an_api_key_is_sent_over_tls_with_the_systems_roots(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = settings_from(
        monkeypatch,
        tmp_path,
        CASEDESK_TEMPORAL_ADDRESS="us-east-1.aws.api.temporal.io:7233",
        CASEDESK_TEMPORAL_NAMESPACE="casedesk.a1b2c",
        CASEDESK_TEMPORAL_API_KEY="key-from-the-cloud-ui",
    )

    options = connect_options(settings)

    assert options.api_key == "key-from-the-cloud-ui"
    assert options.tls is True
    assert "key-from-the-cloud-ui" not in repr(settings)
    assert "key-from-the-cloud-ui" not in repr(options) and "API key" in repr(options)


def test_empty_variables_count_as_unset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # What compose passes for an optional variable nobody set (`${X:-}`).
    settings = settings_from(monkeypatch, tmp_path, **{name: "" for name in TEMPORAL_ENV})

    options = connect_options(settings)

    assert (options.target_host, options.namespace) == ("127.0.0.1:7233", "default")
    assert options.tls is False and options.api_key is None


def test_tls_alone_uses_the_systems_roots(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = settings_from(monkeypatch, tmp_path, CASEDESK_TEMPORAL_TLS="true")

    assert connect_options(settings).tls is True


def test_a_server_ca_alone_gives_tls_without_a_client_certificate(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _, _, cert_pem, _ = client_pair(tmp_path)
    ca_path = tmp_path / "ca.pem"
    ca_path.write_bytes(cert_pem)
    settings = settings_from(
        monkeypatch, tmp_path, CASEDESK_TEMPORAL_TLS_SERVER_CA_CERT_PATH=str(ca_path)
    )

    assert connect_options(settings).tls == TLSConfig(server_root_ca_cert=cert_pem)


async def test_connect_hands_the_options_and_the_codec_to_the_sdk(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cert_path, key_path, cert_pem, key_pem = client_pair(tmp_path)
    settings = settings_from(
        monkeypatch,
        tmp_path,
        CASEDESK_TEMPORAL_ADDRESS="temporal.example.com:7233",
        CASEDESK_TEMPORAL_NAMESPACE="cases",
        CASEDESK_TEMPORAL_TLS_CLIENT_CERT_PATH=str(cert_path),
        CASEDESK_TEMPORAL_TLS_CLIENT_KEY_PATH=str(key_path),
    )
    calls: list[tuple[str, dict[str, Any]]] = []

    async def recording_connect(target_host: str, **kwargs: Any) -> str:
        calls.append((target_host, kwargs))
        return "client"

    monkeypatch.setattr(core.temporal.Client, "connect", recording_connect)

    await connect(settings, lazy=True)

    [(target_host, kwargs)] = calls
    assert target_host == "temporal.example.com:7233"
    assert kwargs["namespace"] == "cases"
    assert kwargs["tls"] == TLSConfig(client_cert=cert_pem, client_private_key=key_pem)
    assert kwargs["api_key"] is None
    assert kwargs["lazy"] is True
    assert kwargs["data_converter"].payload_codec is not None  # still encrypted


async def test_the_sdk_accepts_our_mtls_options(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cert_path, key_path, _, _ = client_pair(tmp_path)
    settings = settings_from(
        monkeypatch,
        tmp_path,
        CASEDESK_TEMPORAL_ADDRESS="temporal.invalid:7233",
        CASEDESK_TEMPORAL_TLS_CLIENT_CERT_PATH=str(cert_path),
        CASEDESK_TEMPORAL_TLS_CLIENT_KEY_PATH=str(key_path),
    )

    client = await connect(settings, lazy=True)  # lazy: nothing is dialled

    assert isinstance(client, Client)
    assert client.namespace == "default"


# --- refusing what cannot work ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ("CASEDESK_TEMPORAL_TLS_CLIENT_CERT_PATH", "CASEDESK_TEMPORAL_TLS_CLIENT_KEY_PATH"),
        ("CASEDESK_TEMPORAL_TLS_CLIENT_KEY_PATH", "CASEDESK_TEMPORAL_TLS_CLIENT_CERT_PATH"),
    ],
)
def test_half_an_mtls_pair_is_refused_naming_the_missing_half(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, given: str, missing: str
) -> None:
    with pytest.raises(ValidationError, match=f"{given} is set without {missing}"):
        settings_from(monkeypatch, tmp_path, **{given: str(tmp_path / "x.pem")})


def test_an_api_key_and_a_client_certificate_together_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cert_path, key_path, _, _ = client_pair(tmp_path)

    with pytest.raises(ValidationError, match="API key or with mTLS, choose one"):
        settings_from(
            monkeypatch,
            tmp_path,
            CASEDESK_TEMPORAL_API_KEY="key",
            CASEDESK_TEMPORAL_TLS_CLIENT_CERT_PATH=str(cert_path),
            CASEDESK_TEMPORAL_TLS_CLIENT_KEY_PATH=str(key_path),
        )


@pytest.mark.parametrize(
    "needs_tls",
    [
        "CASEDESK_TEMPORAL_API_KEY",
        "CASEDESK_TEMPORAL_TLS_SERVER_CA_CERT_PATH",
        "CASEDESK_TEMPORAL_TLS_SERVER_NAME",
    ],
)
def test_tls_switched_off_refuses_what_needs_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, needs_tls: str
) -> None:
    with pytest.raises(ValidationError, match=f"CASEDESK_TEMPORAL_TLS is false but {needs_tls}"):
        settings_from(monkeypatch, tmp_path, CASEDESK_TEMPORAL_TLS="false", **{needs_tls: "x"})


def test_a_missing_certificate_file_is_named_at_start_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _, key_path, _, _ = client_pair(tmp_path)
    settings = settings_from(
        monkeypatch,
        tmp_path,
        CASEDESK_TEMPORAL_TLS_CLIENT_CERT_PATH=str(tmp_path / "nowhere.pem"),
        CASEDESK_TEMPORAL_TLS_CLIENT_KEY_PATH=str(key_path),
    )

    with pytest.raises(TemporalConfigError) as error:
        connect_options(settings)

    assert str(error.value).startswith("CASEDESK_TEMPORAL_TLS_CLIENT_CERT_PATH: cannot read ")
    assert "nowhere.pem" in str(error.value)


def test_an_unreadable_key_file_is_named_at_start_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cert_path, _, _, _ = client_pair(tmp_path)
    settings = settings_from(
        monkeypatch,
        tmp_path,
        CASEDESK_TEMPORAL_TLS_CLIENT_CERT_PATH=str(cert_path),
        CASEDESK_TEMPORAL_TLS_CLIENT_KEY_PATH=str(tmp_path),  # a directory: read fails
    )

    with pytest.raises(TemporalConfigError, match="CASEDESK_TEMPORAL_TLS_CLIENT_KEY_PATH: cannot"):
        connect_options(settings)


def test_a_file_that_is_not_pem_is_named_at_start_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    der = tmp_path / "ca.der"
    der.write_bytes(b"\x30\x82\x01\x0a")
    settings = settings_from(
        monkeypatch, tmp_path, CASEDESK_TEMPORAL_TLS_SERVER_CA_CERT_PATH=str(der)
    )

    with pytest.raises(
        TemporalConfigError, match="CASEDESK_TEMPORAL_TLS_SERVER_CA_CERT_PATH: .* is not a PEM"
    ):
        connect_options(settings)


async def test_the_api_refuses_to_start_on_a_bad_certificate_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from api.main import create_app

    _, key_path, _, _ = client_pair(tmp_path)
    settings = settings_from(
        monkeypatch,
        tmp_path,
        CASEDESK_TEMPORAL_TLS_CLIENT_CERT_PATH=str(tmp_path / "nowhere.pem"),
        CASEDESK_TEMPORAL_TLS_CLIENT_KEY_PATH=str(key_path),
    )
    app = create_app(settings)

    with pytest.raises(TemporalConfigError, match="CASEDESK_TEMPORAL_TLS_CLIENT_CERT_PATH"):
        async with app.router.lifespan_context(app):
            pass
