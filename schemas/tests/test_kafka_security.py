import ssl

import certifi
import pytest
from pravis_schemas.kafka_security import KafkaSettings, kafka_client_options, kafka_ssl_context
from pydantic import ValidationError

EVENT_HUBS_CONNECTION = (
    "Endpoint=sb://pravis.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=s3cr3t="
)


def test_plaintext_adds_nothing():
    assert kafka_client_options(KafkaSettings()) == {}


def test_event_hubs_sasl_ssl_plain():
    settings = KafkaSettings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="$ConnectionString",
        kafka_sasl_password=EVENT_HUBS_CONNECTION,
        kafka_connections_max_idle_ms=180_000,
    )
    options = kafka_client_options(settings)
    context = options.pop("ssl_context")
    assert options == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": "$ConnectionString",
        "sasl_plain_password": EVENT_HUBS_CONNECTION,
        "connections_max_idle_ms": 180_000,
    }
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_scram_without_tls_has_no_ssl_context(mechanism):
    settings = KafkaSettings(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism=mechanism,
        kafka_sasl_username="pravis",
        kafka_sasl_password="pw",
    )
    assert kafka_client_options(settings) == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": mechanism,
        "sasl_plain_username": "pravis",
        "sasl_plain_password": "pw",
    }


def test_ssl_with_ca_file_and_no_hostname_check():
    settings = KafkaSettings(
        kafka_security_protocol="SSL", kafka_ssl_cafile=certifi.where(), kafka_ssl_check_hostname=False
    )
    options = kafka_client_options(settings)
    assert options["security_protocol"] == "SSL" and "sasl_mechanism" not in options
    assert options["ssl_context"].check_hostname is False
    assert kafka_ssl_context(KafkaSettings()) is None


def test_missing_ca_file_fails_loudly(tmp_path):
    settings = KafkaSettings(kafka_security_protocol="SSL", kafka_ssl_cafile=tmp_path / "nope.pem")
    with pytest.raises(FileNotFoundError):
        kafka_client_options(settings)


@pytest.mark.parametrize(
    "fields",
    [
        {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_username": "u"},
        {"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_password": "p"},
        {"kafka_security_protocol": "SSL", "kafka_ssl_certfile": "client.pem"},
        {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "GSSAPI"},
    ],
)
def test_incomplete_or_unsupported_settings_are_refused(fields):
    with pytest.raises(ValidationError):
        KafkaSettings(**fields)


def test_secrets_are_masked():
    settings = KafkaSettings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="$ConnectionString",
        kafka_sasl_password=EVENT_HUBS_CONNECTION,
        kafka_ssl_keyfile_password="keypw",
    )
    text = f"{settings!r} {settings} {settings.model_dump()} {settings.model_dump_json()}"
    assert "s3cr3t" not in text and "keypw" not in text
