"""One typed settings object for the whole project.

Every host, port and path comes from here (environment variables with the ``MDDE_`` prefix, or
keyword overrides), so no module hard-codes where a service lives. An empty URL means "use the
embedded backend": the library runs with no servers at all.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path.cwd() / ".mdde"


class Settings(BaseSettings):
    """Runtime configuration; read once from ``MDDE_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="MDDE_", frozen=True, extra="ignore")

    # Where the embedded backends keep their files (bus log, run reports).
    data_dir: Path = Field(default_factory=_default_data_dir)

    # Event bus: "" or "embedded" -> SQLite log under data_dir; "kafka://host:port[,host:port]" -> Kafka.
    bus: str = ""
    # Allocation state: "" or "memory" -> in-process; "redis://host:port/db" -> Redis.
    state: str = ""
    # Data nodes: comma-separated redis:// URLs; empty -> simulated benchmark.
    data_nodes: str = ""
    # Telemetry sink: "" -> local files + HTML report; "http://host:9200" -> Elasticsearch.
    elasticsearch: str = ""
    # Credentials for a secured cluster (production): an API key (the base64 "id:key" form Kibana
    # shows) or a user name and password, and the CA file that signed its TLS certificate. Secrets
    # are SecretStr, so they never appear in a repr, a log line or an error message.
    elasticsearch_api_key: SecretStr | None = None
    elasticsearch_username: str = ""
    elasticsearch_password: SecretStr | None = None
    elasticsearch_ca_file: Path | None = None
    # Kibana, only used by `dashboards import`.
    kibana: str = ""

    # Kafka security, passed to every producer, consumer and admin client: "PLAINTEXT" (the local
    # stack), "SSL", "SASL_PLAINTEXT" or "SASL_SSL"; SASL mechanism "PLAIN", "SCRAM-SHA-256" or
    # "SCRAM-SHA-512" with a user and password; the CA file that signed the brokers' certificates.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str = ""
    kafka_sasl_password: SecretStr | None = None
    kafka_ca_file: Path | None = None

    # Topic layout.
    topic_prefix: str = "mdde"
    partitions: int = 4
    benchmark_task_partitions: int = 8

    # Local stack (``mdde-stream stack``).
    stack_dir: Path = Field(default_factory=lambda: Path.home() / ".cache" / "mdde-stream" / "stack")
    stack_data_nodes: int = 4
    redis_registry_port: int = 6379
    # The registry Redis's append-only file: fsync every second, or on every write (see redis_servers.py).
    stack_registry_fsync: Literal["everysec", "always"] = "everysec"
    redis_data_base_port: int = 6380
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    elasticsearch_port: int = 9200
    # JDK for the Elasticsearch node (9.x needs Java 21+); unset -> the newest JDK found
    # (JAVA_HOME, the `java` on PATH, /usr/lib/jvm/*).
    stack_java_home: Path | None = None

    # Real benchmark node capacity (reads/s per data node): "14000" for every node, or
    # "2000,n3=500" / "n0=1000,n1=3000" per node; 0 means unpaced (raw Redis speed).
    benchmark_node_rates: str = "14000"

    # Kafka producer: idempotence (no duplicates or reordering on broker retries). Its steady-state
    # throughput equals a plain producer's; its cost is a one-off ~0.5 s before the first delivery
    # while librdkafka obtains a producer id. Every consumer of the project also deduplicates by
    # event id, so turning it off trades a guarantee for start-up time, never correct results.
    kafka_idempotence: bool = True

    # Consumer behaviour.
    session_timeout_s: float = 10.0

    @property
    def data_node_urls(self) -> list[str]:
        return [u.strip() for u in self.data_nodes.split(",") if u.strip()]

    def kafka_client_config(self) -> dict[str, str]:
        """librdkafka security properties for every Kafka client (empty for the plaintext default)."""
        conf: dict[str, str] = {}
        if self.kafka_security_protocol != "PLAINTEXT":
            conf["security.protocol"] = self.kafka_security_protocol
        if self.kafka_security_protocol.startswith("SASL"):
            if not (self.kafka_sasl_mechanism and self.kafka_sasl_username and self.kafka_sasl_password):
                raise ValueError("MDDE_KAFKA_SECURITY_PROTOCOL=SASL_* needs MDDE_KAFKA_SASL_MECHANISM, "
                                 "MDDE_KAFKA_SASL_USERNAME and MDDE_KAFKA_SASL_PASSWORD")
            conf["sasl.mechanism"] = self.kafka_sasl_mechanism
            conf["sasl.username"] = self.kafka_sasl_username
            conf["sasl.password"] = self.kafka_sasl_password.get_secret_value()
        if self.kafka_ca_file is not None:
            conf["ssl.ca.location"] = str(self.kafka_ca_file)
        return conf

    def to_env(self) -> dict[str, str]:
        """These settings as ``MDDE_*`` environment variables: what a child process needs to see the same
        bus, stores and topics (derived from the fields, so a new setting is never forgotten)."""
        out: dict[str, str] = {}
        for name, value in self.model_dump().items():
            if value is None:
                continue
            if hasattr(value, "get_secret_value"):
                value = value.get_secret_value()
            out[f"MDDE_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
        return out

    def topic(self, name: str) -> str:
        """Full topic name for a short name such as ``actions`` -> ``mdde.actions``."""
        return f"{self.topic_prefix}.{name}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``: what a log line or an error message may show."""
    return _USERINFO.sub(lambda m: f"{m.group(1)}{m.group(2)}:***@" if m.group(3) is not None else m.group(0), url)


_USERINFO = re.compile(r"^([a-z][a-z0-9+.-]*://)([^:@/]*)(?::([^@/]*))?@", re.IGNORECASE)
