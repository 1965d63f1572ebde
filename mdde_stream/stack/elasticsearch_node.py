"""A single Elasticsearch 9 node assembled from Maven Central artifacts.

9.x matches the project's ``elasticsearch>=9.5,<10`` Python client (a client only talks to a server
of its own major version). Maven Central publishes the 9.x server jar (``es-pom.xml``) and one
module, transport-netty4 (``es-netty4-pom.xml``); the module's jars go into
``<home>/modules/transport-netty4`` with a plugin descriptor, so the server loads them with their
own class loader as the distribution does. ``compose/local/EsNode.java`` is compiled against the
server and starts the node. 9.x needs Java 21+, which is found by ``mdde_stream.stack.jdk``.

No other 9.x module is on Maven Central (data-streams, reindex, mapper-extras, aggregations,
lang-painless, ingest-common), so the local node has no data-stream lifecycle, no
delete-by-query and no scripting; the telemetry uses none of them.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from mdde_stream.stack.base import HOST, Progress, Service, StackLayout, _quiet
from mdde_stream.stack.jdk import find_jdk, jdk_tool
from mdde_stream.stack.maven import fetch_classpath, file_digest, launcher_dir
from mdde_stream.stack.process import StackError

logger = logging.getLogger(__name__)

HEAP = "1g"
MIN_JAVA = 21
NETTY4_MODULE = "transport-netty4"
NETTY4_CLASS = "org.elasticsearch.transport.netty4.Netty4Plugin"

# What the distribution's jvm.options would set; the log4j flags keep logging alive while the
# shutdown hook closes the node.
JVM_OPTIONS = [
    f"-Xms{HEAP}",
    f"-Xmx{HEAP}",
    "-XX:+UseG1GC",
    "-XX:-OmitStackTraceInFastThrow",
    "-Dfile.encoding=UTF-8",
    "-Djava.awt.headless=true",
    "-Djava.locale.providers=CLDR",
    "--enable-native-access=ALL-UNNAMED",
    "-Dlog4j.shutdownHookEnabled=false",
    "-Dlog4j2.disable.jmx=true",
    "-Dlog4j2.formatMsgNoLookups=true",
    "-Dio.netty.noUnsafe=true",
    "-Dio.netty.noKeySetOptimization=true",
    "-Dio.netty.recycler.maxCapacityPerThread=0",
    "-Des.set.netty.runtime.available.processors=false",
]


def es_version() -> str:
    """The Elasticsearch version the local node runs: ``es.version`` of ``compose/local/es-pom.xml``."""
    match = re.search(r"<es\.version>([^<]+)</es\.version>", (launcher_dir() / "es-pom.xml").read_text())
    if match is None:
        raise StackError("compose/local/es-pom.xml names no <es.version>")
    return match[1]


class ElasticsearchNode(Service):
    """``EsNode <home>``: single-node discovery, HTTP on 127.0.0.1, no security."""

    group = "elasticsearch"
    start_timeout_s = 120.0
    stop_timeout_s = 30.0

    def __init__(self, layout: StackLayout, port: int, java_home: Path | None = None) -> None:
        super().__init__("elasticsearch", port, "MDDE_ELASTICSEARCH_PORT", layout)
        self.configured_java_home = java_home

    def java_home(self) -> Path:
        """A JDK 21+ (the configured one, else the newest found); StackError names what was found."""
        return find_jdk(MIN_JAVA, self.configured_java_home, why=f"Elasticsearch {es_version()}")

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
    def module_lib(self) -> Path:
        return self.layout.cache / "elasticsearch-netty4" / "lib"

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
        java_home = self.java_home()
        source = launcher_dir() / "EsNode.java"
        fetch_classpath(self.layout, launcher_dir() / "es-pom.xml", "elasticsearch", progress)
        fetch_classpath(self.layout, launcher_dir() / "es-netty4-pom.xml", "elasticsearch-netty4", progress)
        self._compile_launcher(source, java_home, progress)
        self.retire_old_data(progress)
        config = self.home / "config"
        for folder in (config, self.home / "data", self.home / "logs", self.home / "plugins", self.home / "modules"):
            folder.mkdir(parents=True, exist_ok=True)
        (self.home / "tmp").mkdir(exist_ok=True)
        self._install_netty4_module()
        (config / "elasticsearch.yml").write_text(self.elasticsearch_yml())
        (config / "log4j2.properties").write_text(self.log4j_properties())

    def plugin_descriptor(self) -> str:
        """The module's descriptor, without ``modulename``: its jars load on a plain class loader.

        A named module would need the server as a named module too; the launcher runs the server
        from the class path, like Elasticsearch's own test clusters do.
        """
        version = es_version()
        return (
            "# Written by `mdde-stream stack up`; edits are overwritten.\n"
            f"name={NETTY4_MODULE}\n"
            "description=Netty 4 based transport implementation\n"
            f"version={version}\n"
            f"elasticsearch.version={version}\n"
            f"java.version={MIN_JAVA}\n"
            f"classname={NETTY4_CLASS}\n"
        )

    def _install_netty4_module(self) -> None:
        """Copy the module's jars (minus any the server already has) beside its descriptor."""
        module = self.home / "modules" / NETTY4_MODULE
        shutil.rmtree(module, ignore_errors=True)
        module.mkdir(parents=True)
        server_jars = {jar.name for jar in self.lib.glob("*.jar")}
        for jar in sorted(self.module_lib.glob("*.jar")):
            if jar.name not in server_jars:
                shutil.copy2(jar, module / jar.name)
        (module / "plugin-descriptor.properties").write_text(self.plugin_descriptor())

    def _compile_launcher(self, source: Path, java_home: Path, progress: Progress) -> None:
        """javac EsNode.java against the fetched jars, again only when the source, jars or JDK change."""
        digest = file_digest(source, self.lib / ".complete", java_home / "release")
        stamp = self.classes / ".source-digest"
        if stamp.is_file() and stamp.read_text().strip() == digest and (self.classes / "EsNode.class").is_file():
            return
        progress("elasticsearch: compiling the EsNode launcher")
        self.classes.mkdir(parents=True, exist_ok=True)
        argv = [jdk_tool(java_home, "javac"), "-nowarn", "-cp", f"{self.lib}/*", "-d", str(self.classes), str(source)]
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise StackError(f"elasticsearch: compiling {source} failed:\n{result.stdout}{result.stderr}")
        stamp.write_text(digest + "\n")

    def command(self) -> list[str]:
        return [
            jdk_tool(self.java_home()), *JVM_OPTIONS,
            f"-Djava.io.tmpdir={self.home / 'tmp'}",
            "-cp", f"{self.classes}:{self.lib}/*",
            "EsNode", str(self.home),
        ]

    @property
    def version_stamp(self) -> Path:
        """The Elasticsearch version that last prepared this node's data directory."""
        return self.home / "es-version"

    def running_version(self) -> str | None:
        """The version the node on our port reports, None when it does not answer."""
        try:
            with urllib.request.urlopen(f"{self.url}/_nodes/_local?filter_path=nodes.*.version", timeout=2) as response:
                nodes = json.load(response).get("nodes", {})
        except (urllib.error.URLError, OSError, ValueError):
            return None
        versions = [node.get("version") for node in nodes.values()]
        return str(versions[0]) if versions and versions[0] else None

    def outdated(self) -> str | None:
        running, wanted = self.running_version(), es_version()
        if running is None or running == wanted:
            return None
        return f"it runs Elasticsearch {running}; the stack now runs {wanted}"

    def retire_old_data(self, progress: Progress = _quiet) -> Path | None:
        """Move aside a data directory another major version wrote; returns where it went.

        Elasticsearch 9 refuses to start on a 7.x data directory (it reads indices of the previous
        major only), and this is a local test stack, so its old telemetry is set aside rather than
        blocking ``stack up``. Data written before the version stamp existed is 7.17's, which kept
        its node data under ``data/nodes``.
        """
        data = self.home / "data"
        wanted = es_version()
        if self.version_stamp.is_file():
            previous: str | None = self.version_stamp.read_text().strip()
        else:
            previous = "7.17" if (data / "nodes").is_dir() else None
        old: Path | None = None
        if previous and previous.split(".")[0] != wanted.split(".")[0] and data.is_dir() and any(data.iterdir()):
            stamp = time.strftime("%Y%m%d-%H%M%S")
            old = self.home / f"data-es{previous}-{stamp}"
            data.rename(old)
            progress(f"elasticsearch: data of Elasticsearch {previous} moved to {old} ({wanted} cannot read it)")
            logger.warning("elasticsearch: data of %s moved to %s", previous, old)
        data.mkdir(parents=True, exist_ok=True)
        self.version_stamp.write_text(wanted + "\n")
        return old

    def healthy(self) -> bool:
        """GET /_cluster/health answers green or yellow."""
        try:
            with urllib.request.urlopen(f"{self.url}/_cluster/health", timeout=2) as response:
                status = json.load(response).get("status")
        except (urllib.error.URLError, OSError, ValueError):
            return False
        return status in {"green", "yellow"}
