"""Bearer-token authentication (health exempt) and TLS, on real servers."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from airtime.errors import ConfigError
from airtime.v1 import forecast_service_pb2 as pb
from airtime.v1 import forecast_service_pb2_grpc as pb_grpc
from grpc_server.client import ForecastClient
from tests.conftest import require
from tests.integration.grpc_fixtures import (  # noqa: F401 - fixtures
    running_service,
    server_settings,
    serving_snapshot,
    warehouse,
)

RUN = dt.date(2026, 11, 30)


@pytest.fixture
def published(warehouse, tmp_path: Path):  # noqa: ANN001, ANN201, F811
    return serving_snapshot(warehouse, RUN, tmp_path)


def _freshness(port: int, metadata=()) -> grpc.StatusCode:  # noqa: ANN001
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            pb_grpc.ForecastServiceStub(channel).GetFreshness(pb.GetFreshnessRequest(), timeout=5,
                                                              metadata=metadata)
            return grpc.StatusCode.OK
        except grpc.RpcError as exc:
            return exc.code()


def test_without_a_valid_token_every_rpc_is_unauthenticated(published, tmp_path: Path):  # noqa: ANN001
    settings = server_settings(tmp_path / "home", tokens="alpha-token, beta-token")
    with running_service(settings, published) as service:
        assert _freshness(service.port) == grpc.StatusCode.UNAUTHENTICATED
        for bad in ("Bearer wrong", "Bearer alpha-toke", "alpha-token", "Basic alpha-token", "Bearer "):
            assert _freshness(service.port, (("authorization", bad),)) == grpc.StatusCode.UNAUTHENTICATED
        with grpc.insecure_channel(f"127.0.0.1:{service.port}") as channel:
            stream = pb_grpc.ForecastServiceStub(channel).StreamSlots(pb.StreamSlotsRequest(), timeout=5)
            with pytest.raises(grpc.RpcError) as caught:
                list(stream)
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_any_configured_token_is_accepted(published, tmp_path: Path):  # noqa: ANN001
    tokens_file = tmp_path / "tokens"
    tokens_file.write_text("# one token per line\nfile-token\n")
    settings = server_settings(tmp_path / "home", tokens="env-token", tokens_file=tokens_file)
    with running_service(settings, published) as service:
        for token in ("env-token", "file-token"):
            assert _freshness(service.port, (("authorization", f"Bearer {token}"),)) == grpc.StatusCode.OK
            with ForecastClient(f"127.0.0.1:{service.port}", token=token) as client:
                assert client.freshness().run_date == RUN


def test_health_needs_no_token(published, tmp_path: Path):  # noqa: ANN001
    settings = server_settings(tmp_path / "home", tokens="secret")
    with running_service(settings, published) as service, \
            grpc.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        response = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_unreadable_tokens_file_is_a_config_error(published, tmp_path: Path):  # noqa: ANN001
    settings = server_settings(tmp_path / "home", tokens_file=tmp_path / "absent")
    with pytest.raises(ConfigError, match="tokens file"):
        with running_service(settings, published):
            pass


def _self_signed(folder: Path) -> tuple[Path, Path]:
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        require(False, "the cryptography package makes the test certificate")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "server.crt", folder / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def test_tls_server_answers_clients_that_trust_its_certificate(published, tmp_path: Path):  # noqa: ANN001
    cert, key = _self_signed(tmp_path)
    settings = server_settings(tmp_path / "home", tls_cert_file=cert, tls_key_file=key, tokens="t0k")
    with running_service(settings, published) as service:
        with ForecastClient(f"localhost:{service.port}", token="t0k", tls=cert) as client:
            assert client.freshness().run_date == RUN
        # a plaintext client gets no answer from a TLS port
        assert _freshness(service.port, (("authorization", "Bearer t0k"),)) == grpc.StatusCode.UNAVAILABLE


def test_tls_needs_both_certificate_and_key(published, tmp_path: Path):  # noqa: ANN001
    cert, _key = _self_signed(tmp_path)
    settings = server_settings(tmp_path / "home", tls_cert_file=cert)
    with pytest.raises(ConfigError, match="both"):
        with running_service(settings, published):
            pass
