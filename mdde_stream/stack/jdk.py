"""Find a JDK new enough for a server: Kafka runs on 17, Elasticsearch 9 needs 21 or newer.

A machine often has several JDKs side by side (Debian's OpenJDK 17 as ``java`` on PATH, a newer
Temurin under ``/usr/lib/jvm``), so the Elasticsearch node cannot just take the ``java`` on PATH.
The version is read from each JDK's ``release`` file, which costs no JVM start.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from mdde_stream.stack.process import StackError

# Where Debian's packages and the Temurin tarball install JDKs (scripts/install-system-deps.sh).
JVM_DIR = Path("/usr/lib/jvm")

_RELEASE_VERSION = re.compile(r'^JAVA_VERSION="(?P<version>[^"]+)"', re.MULTILINE)


def java_major(home: Path) -> int | None:
    """Feature version of the JDK at ``home`` (``25`` for 25.0.3, ``8`` for 1.8.0), None if unknown."""
    try:
        text = (home / "release").read_text()
    except OSError:
        return None
    match = _RELEASE_VERSION.search(text)
    if match is None:
        return None
    parts = match["version"].split(".")
    try:
        major = int(parts[0])
        return int(parts[1]) if major == 1 and len(parts) > 1 else major
    except ValueError:
        return None


def _is_jdk(home: Path) -> bool:
    return (home / "bin" / "java").is_file() and (home / "bin" / "javac").is_file()


def _candidates(jvm_dir: Path) -> list[Path]:
    """JAVA_HOME, the JDK of ``java`` on PATH, then every JDK under ``jvm_dir``; no duplicates."""
    found: list[Path] = []
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        found.append(Path(java_home))
    on_path = shutil.which("java")
    if on_path:
        found.append(Path(on_path).resolve().parents[1])
    if jvm_dir.is_dir():
        found += sorted(p for p in jvm_dir.iterdir() if p.is_dir())
    unique: dict[Path, Path] = {}
    for home in found:
        unique.setdefault(home.resolve(), home)
    return [home for home in unique.values() if _is_jdk(home)]


def find_jdk(min_major: int, configured: Path | None = None, jvm_dir: Path = JVM_DIR, why: str = "") -> Path:
    """The home of a JDK whose version is at least ``min_major``: the configured one, else the newest.

    Raises StackError naming what was found when nothing qualifies.
    """
    purpose = f" for {why}" if why else ""
    if configured is not None:
        home = Path(configured).expanduser()
        major = java_major(home)
        if not _is_jdk(home) or major is None or major < min_major:
            raise StackError(
                f"MDDE_STACK_JAVA_HOME={home} is not a JDK {min_major}+ (found version {major}); "
                f"a JDK {min_major}+ is needed{purpose}"
            )
        return home
    versions = [(java_major(home), home) for home in _candidates(jvm_dir)]
    good = [(major, home) for major, home in versions if major is not None and major >= min_major]
    if good:
        return max(good, key=lambda pair: pair[0])[1]
    seen = ", ".join(f"{home} (Java {major})" for major, home in versions) or "none"
    raise StackError(
        f"a JDK {min_major}+ is needed{purpose}, but the JDKs found are: {seen}. Install one under {jvm_dir} "
        f"(e.g. Temurin 25; scripts/install-system-deps.sh checks for it) or set MDDE_STACK_JAVA_HOME"
    )


def jdk_tool(home: Path, tool: str = "java") -> str:
    return str(home / "bin" / tool)
