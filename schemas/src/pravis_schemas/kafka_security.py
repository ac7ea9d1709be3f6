"""Kafka connection settings shared by every worker: the bootstrap servers, SASL (PLAIN, SCRAM-SHA-256/512)
and TLS, and the aiokafka keyword arguments they become.

Each worker's `Settings` inherits `KafkaSettings` (env `PRAVIS_KAFKA_BOOTSTRAP`,
`PRAVIS_KAFKA_SECURITY_PROTOCOL`, ...), and its kafka module passes `**kafka_client_options(settings)` to
every aiokafka client it makes. Secrets are `SecretStr` (masked in reprs and logs) and revealed only here,
into the client's arguments. Azure Event Hubs: `SASL_SSL`, `PLAIN`, user `$ConnectionString`, connection
string as password (docs/production.md).
"""

import ssl
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, SecretStr, model_validator

from pravis_schemas import ports

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class KafkaSettings(BaseModel):
    kafka_bootstrap: str = f"{ports.LOCAL_HOST}:{ports.BROKER}"
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism = "PLAIN"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    """CA bundle that signed the brokers' certificates; unset: the system's trusted CAs (Event Hubs, Confluent
    Cloud, MSK with public certificates)."""
    kafka_ssl_certfile: Path | None = None
    """Client certificate (PEM) for mutual TLS, with `kafka_ssl_keyfile`."""
    kafka_ssl_keyfile: Path | None = None
    kafka_ssl_keyfile_password: SecretStr | None = None
    kafka_ssl_check_hostname: bool = True
    kafka_connections_max_idle_ms: int | None = None
    """Close idle connections sooner than aiokafka's 540 s; Event Hubs drops them after 240 s (use 180000)."""

    @model_validator(mode="after")
    def _check_security(self) -> "KafkaSettings":
        if self.kafka_security_protocol.startswith("SASL_") and (
            not self.kafka_sasl_username or self.kafka_sasl_password is None
        ):
            raise ValueError(
                f"PRAVIS_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                "PRAVIS_KAFKA_SASL_USERNAME and PRAVIS_KAFKA_SASL_PASSWORD"
            )
        if bool(self.kafka_ssl_certfile) != bool(self.kafka_ssl_keyfile):
            raise ValueError("PRAVIS_KAFKA_SSL_CERTFILE and PRAVIS_KAFKA_SSL_KEYFILE go together")
        return self

    @property
    def kafka_uses_ssl(self) -> bool:
        return self.kafka_security_protocol in ("SSL", "SASL_SSL")


def kafka_ssl_context(settings: KafkaSettings) -> ssl.SSLContext | None:
    """The TLS context for SSL / SASL_SSL (None for plaintext): verified against the CA file or system CAs."""
    if not settings.kafka_uses_ssl:
        return None
    context = ssl.create_default_context(
        cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
    )
    context.check_hostname = settings.kafka_ssl_check_hostname
    if settings.kafka_ssl_certfile and settings.kafka_ssl_keyfile:
        password = settings.kafka_ssl_keyfile_password
        context.load_cert_chain(
            str(settings.kafka_ssl_certfile),
            str(settings.kafka_ssl_keyfile),
            password.get_secret_value() if password else None,
        )
    return context


def kafka_client_options(settings: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for AIOKafkaProducer / AIOKafkaConsumer / AIOKafkaAdminClient. Empty for plaintext,
    so a client built with them behaves exactly as before on the embedded broker."""
    options: dict[str, Any] = {}
    if settings.kafka_connections_max_idle_ms is not None:
        options["connections_max_idle_ms"] = settings.kafka_connections_max_idle_ms
    if settings.kafka_security_protocol == "PLAINTEXT":
        return options
    options["security_protocol"] = settings.kafka_security_protocol
    if settings.kafka_uses_ssl:
        options["ssl_context"] = kafka_ssl_context(settings)
    if settings.kafka_security_protocol.startswith("SASL_"):
        assert settings.kafka_sasl_password is not None  # checked by the settings validator
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    return options
