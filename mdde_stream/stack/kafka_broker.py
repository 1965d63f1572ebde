"""A single-node Apache Kafka (KRaft, combined broker + controller) from Maven Central jars.

Tuned for a 2-core test box: a 512 MB heap, few network/IO threads, replication factor 1 for
the internal topics, no initial rebalance delay (consumer groups in tests join at once) and no
automatic topic creation, because the project creates every topic explicitly with its partition
count and a typo must fail instead of silently creating a one-partition topic.
"""

from __future__ import annotations

import base64
import logging
import subprocess
import uuid
from pathlib import Path

from mdde_stream.stack import process
from mdde_stream.stack.base import HOST, Progress, Service, StackLayout, _quiet
from mdde_stream.stack.maven import fetch_classpath, java_binary, launcher_dir
from mdde_stream.stack.process import StackError

logger = logging.getLogger(__name__)

JVM_OPTIONS = [
    "-Xms256m",
    "-Xmx512m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-Djava.awt.headless=true",
]


class KafkaBroker(Service):
    """``kafka.Kafka`` in KRaft mode, storage formatted once with ``kafka.tools.StorageTool``."""

    group = "kafka"
    start_timeout_s = 90.0
    stop_timeout_s = 30.0

    def __init__(self, layout: StackLayout, port: int, controller_port: int, partitions: int) -> None:
        super().__init__("kafka", port, "MDDE_KAFKA_PORT", layout)
        self.controller_port = controller_port
        self.partitions = partitions

    @property
    def url(self) -> str:
        return f"kafka://{HOST}:{self.port}"

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def config_file(self) -> Path:
        return self.home / "server.properties"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def log_file(self) -> Path:
        return self.layout.logs / "kafka.log"

    @property
    def marker(self) -> str:
        return str(self.config_file)

    @property
    def lib(self) -> Path:
        return self.layout.cache / "kafka" / "lib"

    def server_properties(self) -> str:
        lines = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{HOST}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{HOST}:{self.port},CONTROLLER://{HOST}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{HOST}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": str(self.partitions),
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "auto.create.topics.enable": "false",
            "delete.topic.enable": "true",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "8",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "num.network.threads": "2",
            "num.io.threads": "4",
            "num.recovery.threads.per.data.dir": "1",
            "log.retention.hours": "24",
        }
        header = "# Written by `mdde-stream stack up`; edits are overwritten.\n"
        return header + "".join(f"{key}={value}\n" for key, value in lines.items())

    def log4j_properties(self) -> str:
        return (
            "status = warn\n"
            "appender.file.type = File\n"
            "appender.file.name = file\n"
            f"appender.file.fileName = {self.log_file}\n"
            "appender.file.layout.type = PatternLayout\n"
            "appender.file.layout.pattern = [%d] %p %m (%c)%n\n"
            "rootLogger.level = INFO\n"
            "rootLogger.appenderRef.file.ref = file\n"
            # The request/state-change loggers are chatty at INFO and say nothing a test needs.
            "logger.state.name = state.change.logger\n"
            "logger.state.level = WARN\n"
        )

    def prepare(self, progress: Progress = _quiet) -> None:
        super().prepare(progress)
        java_binary()
        fetch_classpath(self.layout, launcher_dir() / "kafka-pom.xml", "kafka", progress)
        self.config_file.write_text(self.server_properties())
        (self.home / "log4j2.properties").write_text(self.log4j_properties())
        if not (self.data_dir / "meta.properties").is_file():
            self._format_storage(progress)

    def _format_storage(self, progress: Progress) -> None:
        """KRaft refuses to start on an unformatted log dir; format it once with a fresh cluster id."""
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        progress(f"kafka: formatting storage (cluster id {cluster_id})")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            java_binary(), "-Xmx256m", *self._common_properties(),
            "-cp", f"{self.lib}/*", "kafka.tools.StorageTool",
            "format", "-t", cluster_id, "-c", str(self.config_file),
        ]
        result = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=self.home)
        if result.returncode != 0:
            output = "\n".join((result.stdout + result.stderr).splitlines()[:12])
            raise StackError(f"kafka: storage format failed (exit {result.returncode}):\n{output}")

    def _common_properties(self) -> list[str]:
        return [f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}", f"-Dkafka.logs.dir={self.layout.logs}"]

    def command(self) -> list[str]:
        return [
            java_binary(), *JVM_OPTIONS, *self._common_properties(),
            "-cp", f"{self.lib}/*", "kafka.Kafka", str(self.config_file),
        ]

    def healthy(self) -> bool:
        """The broker answers a metadata request and lists itself."""
        if not process.port_open(self.port):
            return False
        from mdde_stream.bus.kafka import brokers_listed

        return brokers_listed(self.bootstrap) > 0
