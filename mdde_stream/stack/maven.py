"""Fetch a server's runtime classpath from Maven Central, once, into the stack cache.

Kafka and Elasticsearch run from their published Maven artifacts rather than from release
tarballs or containers: a POM under ``compose/local/`` names the artifacts, ``mvn
dependency:copy-dependencies`` resolves the transitive runtime jars, and the result is reused
until that POM changes (its hash is recorded next to the jars).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import time
from pathlib import Path

from mdde_stream.stack.base import Progress, StackLayout, _quiet
from mdde_stream.stack.process import StackError, tail

logger = logging.getLogger(__name__)

_MARKER = ".complete"


def launcher_dir() -> Path:
    """``compose/local`` of the source tree: the POMs and the Java launcher live there."""
    path = Path(__file__).resolve().parents[2] / "compose" / "local"
    if not path.is_dir():
        raise StackError(
            f"stack launcher files not found at {path}; install mdde-stream from a source checkout (`pip install -e .`)"
        )
    return path


def java_binary(tool: str = "java") -> str:
    """The JDK tool to use: ``$JAVA_HOME/bin/<tool>`` if set, else the one on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / tool).is_file():
        return str(Path(java_home) / "bin" / tool)
    path = shutil.which(tool)
    if path is None:
        raise StackError(
            f"{tool} not found; install a JDK 17+ (scripts/install-system-deps.sh installs one) or set JAVA_HOME"
        )
    return path


def file_digest(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def fetch_classpath(layout: StackLayout, pom: Path, name: str, progress: Progress = _quiet) -> Path:
    """Directory of jars for `pom` under the cache, downloading them on first use.

    Jars land in a temporary folder that is renamed into place only after Maven succeeds, so
    an interrupted download is never mistaken for a complete classpath.
    """
    lib = layout.cache / name / "lib"
    digest = file_digest(pom)
    marker = lib / _MARKER
    if marker.is_file() and marker.read_text().strip() == digest:
        return lib
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError("mvn not found; install Maven (scripts/install-system-deps.sh does) to fetch the server jars")
    staging = lib.with_name("lib.partial")
    shutil.rmtree(staging, ignore_errors=True)
    log = layout.logs / f"maven-{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = [
        mvn, "-q", "-B",
        "-f", str(pom),
        f"-Dmaven.repo.local={layout.cache / 'm2'}",
        "dependency:copy-dependencies",
        f"-DoutputDirectory={staging}",
        "-DincludeScope=runtime",
    ]
    progress(f"{name}: fetching jars from Maven Central (first run only)")
    started = time.monotonic()
    with log.open("wb") as out:
        result = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=False)
    if result.returncode != 0 or not any(staging.glob("*.jar")):
        raise StackError(
            f"{name}: `mvn dependency:copy-dependencies` failed (exit {result.returncode}) for {pom}.\n"
            f"--- last lines of {log} ---\n{tail(log)}"
        )
    (staging / _MARKER).write_text(digest + "\n")
    shutil.rmtree(lib, ignore_errors=True)
    staging.rename(lib)
    jars = len(list(lib.glob("*.jar")))
    logger.info("%s: %d jars fetched in %.1f s", name, jars, time.monotonic() - started)
    progress(f"{name}: {jars} jars fetched in {time.monotonic() - started:.1f} s")
    return lib
