"""One typed settings object for the whole project.

Every host, port and path comes from here (environment variables with the ``MDDE_`` prefix, or
keyword overrides), so no module hard-codes where a service lives. An empty URL means "use the
embedded backend": the library runs with no servers at all.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
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
    # Kibana, only used by `dashboards import`.
    kibana: str = ""

    # Topic layout.
    topic_prefix: str = "mdde"
    partitions: int = 4
    benchmark_task_partitions: int = 8

    # Local stack (``mdde-stream stack``).
    stack_dir: Path = Field(default_factory=lambda: Path.home() / ".cache" / "mdde-stream" / "stack")
    stack_data_nodes: int = 4
    redis_registry_port: int = 6379
    redis_data_base_port: int = 6380
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    elasticsearch_port: int = 9200

    # Real benchmark node capacity (reads/s per data node): "12500" for every node, or
    # "2000,n3=500" / "n0=1000,n1=3000" per node; 0 means unpaced (raw Redis speed).
    benchmark_node_rates: str = "12500"

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

    def topic(self, name: str) -> str:
        """Full topic name for a short name such as ``actions`` -> ``mdde.actions``."""
        return f"{self.topic_prefix}.{name}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()
