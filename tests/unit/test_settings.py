"""The one settings object: security passes through to every client, secrets stay secret, children
inherit exactly what the parent sees."""

from __future__ import annotations

import logging

import pytest

from mdde_stream.bus.kafka import KafkaBus
from mdde_stream.config import Settings


def test_kafka_security_reaches_every_client_and_the_password_never_shows() -> None:
    settings = Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512",
                        kafka_sasl_username="mdde", kafka_sasl_password="s3cr3t-pw", kafka_ca_file="/etc/ca.pem")
    assert settings.kafka_client_config() == {
        "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "mdde",
        "sasl.password": "s3cr3t-pw", "ssl.ca.location": "/etc/ca.pem",
    }
    assert "s3cr3t-pw" not in repr(settings) and "s3cr3t-pw" not in str(settings.model_dump())
    # librdkafka checks the CA file when it builds a client: a missing one is a clear error, not a hang.
    with pytest.raises(Exception, match="ssl.ca.location"):
        KafkaBus("127.0.0.1:1", settings=settings)
    without_ca = settings.model_copy(update={"kafka_ca_file": None})
    bus = KafkaBus("127.0.0.1:1", settings=without_ca)  # clients connect lazily: nothing is reached here
    try:
        assert bus._security["sasl.password"] == "s3cr3t-pw"
        assert Settings().kafka_client_config() == {}  # plaintext local stack
    finally:
        bus.close()


def test_incomplete_sasl_settings_name_what_is_missing() -> None:
    with pytest.raises(ValueError, match="MDDE_KAFKA_SASL_MECHANISM"):
        Settings(kafka_security_protocol="SASL_PLAINTEXT").kafka_client_config()
    with pytest.raises(ValueError, match="kafka_security_protocol"):
        Settings(kafka_security_protocol="TLS")  # type: ignore[arg-type]


def test_children_inherit_the_settings_they_are_given(monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(bus="kafka://h:1", topic_prefix="t1", kafka_idempotence=False,
                        elasticsearch_api_key="key-123", benchmark_node_rates="5000,n3=100")
    env = settings.to_env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Settings() == settings
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("mdde_stream").info("settings: %s", settings)
    assert "key-123" not in caplog.text
