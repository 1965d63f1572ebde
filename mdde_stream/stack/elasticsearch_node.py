"""A single Elasticsearch 7.17 node assembled from Maven Central artifacts.

7.17 matches the project's ``elasticsearch>=7.17,<8`` Python client (the 8.x client refuses 7.x
servers, and 7.14+ servers send the ``X-Elastic-Product`` header the 7.17 client checks). The
server jar and the module jars (Netty4 transport, reindex for delete-by-query, mapper-extras,
matrix-stats) are fetched by ``compose/local/es-pom.xml``; ``compose/local/EsNode.java`` is
compiled against them and starts the node with those modules as classpath plugins.
"""

from __future__ import annotations

import json
import logging
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from mdde_stream.stack.base import HOST, Progress, Service, StackLayout, _quiet
from mdde_stream.stack.maven import fetch_classpath, file_digest, java_binary, launcher_dir
from mdde_stream.stack.process import StackError

logger = logging.getLogger(__name__)

HEAP = "1g"

# What the distribution's jvm.options would set; the log4j flags keep logging alive while the
# shutdown hook closes the node, and the flavor/type make GET / report a default distribution.
JVM_OPTIONS = [
    f"-Xms{HEAP}",
    f"-Xmx{HEAP}",
    "-XX:+UseG1GC",
    "-XX:-OmitStackTraceInFastThrow",
    "-Dfile.encoding=UTF-8",
    "-Djava.awt.headless=true",
    "-Dlog4j.shutdownHookEnabled=false",
    "-Dlog4j2.disable.jmx=true",
    "-Dlog4j2.formatMsgNoLookups=true",
    "-Des.distribution.flavor=default",
    "-Des.distribution.type=tar",
    "-Dio.netty.noUnsafe=true",
    "-Dio.netty.noKeySetOptimization=true",
    "-Dio.netty.recycler.maxCapacityPerThread=0",
    "-Des.set.netty.runtime.available.processors=false",
]


class ElasticsearchNode(Service):
    """``EsNode <home>``: single-node discovery, HTTP on 127.0.0.1, no security."""

    group = "elasticsearch"
    start_timeout_s = 120.0
    stop_timeout_s = 30.0

    def __init__(self, layout: StackLayout, port: int) -> None:
        super().__init__("elasticsearch", port, "MDDE_ELASTICSEARCH_PORT", layout)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def transport_port(self) -> int:
        # The node-to-node port is unused by clients; keep it next to the HTTP port, as ES does.
        return self.port + 100

    @property
    def marker(self) -> str:
        return f"EsNode {self.home}"

    @property
    def log_file(self) -> Path:
        return self.layout.logs / "elasticsearch.log"

    @property
    def lib(self) -> Path:
        return self.layout.cache / "elasticsearch" / "lib"

    @property
    def classes(self) -> Path:
        return self.layout.cache / "elasticsearch" / "classes"

    def elasticsearch_yml(self) -> str:
        settings = {
            "cluster.name": "mdde-local",
            "node.name": "mdde-local",
            "path.data": str(self.home / "data"),
            "path.logs": str(self.home / "logs"),
            "network.host": HOST,
            "http.port": self.port,
            "transport.port": self.transport_port,
            "discovery.type": "single-node",
            "http.type": "netty4",
            "transport.type": "netty4",
            # A shared CI disk can pass the 90 % watermark; indices must not turn read-only then.
            "cluster.routing.allocation.disk.threshold_enabled": False,
            "action.auto_create_index": True,
        }
        header = "# Written by `mdde-stream stack up`; edits are overwritten.\n"
        return header + "".join(f"{key}: {json.dumps(value)}\n" for key, value in settings.items())

    def log4j_properties(self) -> str:
        return (
            "status = error\n"
            "appender.file.type = File\n"
            "appender.file.name = file\n"
            f"appender.file.fileName = {self.log_file}\n"
            "appender.file.layout.type = PatternLayout\n"
            "appender.file.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] [%node_name]%marker %m%n\n"
            "rootLogger.level = info\n"
            "rootLogger.appenderRef.file.ref = file\n"
            "logger.deprecation.name = org.elasticsearch.deprecation\n"
            "logger.deprecation.level = error\n"
        )

    def prepare(self, progress: Progress = _quiet) -> None:
        super().prepare(progress)
        java_binary()
        source = launcher_dir() / "EsNode.java"
        fetch_classpath(self.layout, launcher_dir() / "es-pom.xml", "elasticsearch", progress)
        self._compile_launcher(source, progress)
        config = self.home / "config"
        for folder in (config, self.home / "data", self.home / "logs", self.home / "plugins", self.home / "modules"):
            folder.mkdir(parents=True, exist_ok=True)
        (self.home / "tmp").mkdir(exist_ok=True)
        (config / "elasticsearch.yml").write_text(self.elasticsearch_yml())
        (config / "log4j2.properties").write_text(self.log4j_properties())

    def _compile_launcher(self, source: Path, progress: Progress) -> None:
        """javac EsNode.java against the fetched jars, again only when the source or jars change."""
        digest = file_digest(source, self.lib / ".complete")
        stamp = self.classes / ".source-digest"
        if stamp.is_file() and stamp.read_text().strip() == digest and (self.classes / "EsNode.class").is_file():
            return
        progress("elasticsearch: compiling the EsNode launcher")
        self.classes.mkdir(parents=True, exist_ok=True)
        argv = [java_binary("javac"), "-nowarn", "-cp", f"{self.lib}/*", "-d", str(self.classes), str(source)]
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise StackError(f"elasticsearch: compiling {source} failed:\n{result.stdout}{result.stderr}")
        stamp.write_text(digest + "\n")

    def command(self) -> list[str]:
        return [
            java_binary(), *JVM_OPTIONS,
            f"-Djava.io.tmpdir={self.home / 'tmp'}",
            "-cp", f"{self.classes}:{self.lib}/*",
            "EsNode", str(self.home),
        ]

    def healthy(self) -> bool:
        """GET /_cluster/health answers green or yellow."""
        try:
            with urllib.request.urlopen(f"{self.url}/_cluster/health", timeout=2) as response:
                status = json.load(response).get("status")
        except (urllib.error.URLError, OSError, ValueError):
            return False
        return status in {"green", "yellow"}
