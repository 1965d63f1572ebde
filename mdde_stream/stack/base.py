"""What every local-stack service shares: where its files live, how it starts, checks and stops.

A concrete service (Redis, Kafka, Elasticsearch) only says how to prepare its files, which
command runs it and what "healthy" means; pid files, port conflicts, waiting, log tails and the
SIGTERM/SIGKILL sequence are handled here once.
"""

from __future__ import annotations

import logging
import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mdde_stream.stack import process
from mdde_stream.stack.process import StackError

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]

HOST = "127.0.0.1"


def _quiet(_: str) -> None:
    return None


@dataclass(frozen=True)
class StackLayout:
    """Directory layout under ``Settings.stack_dir``."""

    root: Path

    @property
    def cache(self) -> Path:
        """Downloaded jars and the Maven repository; survives ``down --wipe``."""
        return self.root / "cache"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def service_dir(self, name: str) -> Path:
        return self.root / "services" / name


@dataclass(frozen=True)
class ServiceStatus:
    """One row of `stack status`."""

    name: str
    group: str
    state: str  # "up", "down" or "unhealthy" (process alive but not answering)
    pid: int | None
    port: int
    url: str
    log: Path

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "state": self.state,
            "pid": self.pid,
            "port": self.port,
            "url": self.url,
            "log": str(self.log),
        }


class Service(ABC):
    """A server process of the local stack, identified by its pid file and a cmdline marker."""

    group: str = ""
    start_timeout_s: float = 60.0
    stop_timeout_s: float = 20.0

    def __init__(self, name: str, port: int, port_setting: str, layout: StackLayout) -> None:
        self.name = name
        self.port = port
        self.port_setting = port_setting
        self.layout = layout

    # -- what a concrete service provides ------------------------------------------------
    @property
    @abstractmethod
    def url(self) -> str:
        """How clients reach it, e.g. ``redis://127.0.0.1:6379/0``."""

    @property
    @abstractmethod
    def marker(self) -> process.Marker:
        """A string (or alternatives) that only this service's command line contains."""

    @abstractmethod
    def command(self) -> list[str]:
        """The argv that runs the server in the foreground."""

    @abstractmethod
    def healthy(self) -> bool:
        """A cheap real request to the server; False (never raise) when it does not answer."""

    def outdated(self) -> str | None:
        """Why the running server must be restarted (e.g. it runs an older version), or None."""
        return None

    def prepare(self, progress: Progress = _quiet) -> None:
        """Create config files and fetch what the server needs; must be idempotent."""
        self.home.mkdir(parents=True, exist_ok=True)

    @property
    def log_file(self) -> Path:
        """The server's own log (what to show when it fails)."""
        return self.out_file

    # -- shared machinery -----------------------------------------------------------------
    @property
    def home(self) -> Path:
        return self.layout.service_dir(self.name)

    @property
    def pid_file(self) -> Path:
        return self.layout.run / f"{self.name}.pid"

    @property
    def out_file(self) -> Path:
        """stdout/stderr of the process (JVM crashes land here before logging starts)."""
        return self.layout.logs / f"{self.name}.out"

    def pid(self) -> int | None:
        return process.running_pid(self.pid_file, self.marker)

    def status(self) -> ServiceStatus:
        pid = self.pid()
        if pid is None:
            state = "down"
        else:
            state = "up" if self.healthy() else "unhealthy"
        return ServiceStatus(self.name, self.group, state, pid, self.port, self.url, self.log_file)

    def launch(self) -> int:
        """Start the process unless ours is already running; returns its pid."""
        pid = self.pid()
        if pid is not None:
            return pid
        conflict = self.port_conflict()
        if conflict:
            raise StackError(conflict)
        self.pid_file.unlink(missing_ok=True)
        return process.spawn(self.command(), pid_file=self.pid_file, out_file=self.out_file, cwd=self.home)

    def port_conflict(self) -> str | None:
        """Why this service cannot take its port, or None when the port is free."""
        if not process.port_open(self.port):
            return None
        return (
            f"{self.name}: port {HOST}:{self.port} is already taken by a process this stack did not "
            f"start; stop that process or choose another port with {self.port_setting}=..."
        )

    def wait_healthy(self) -> None:
        """Block until healthy; on failure stop the process and raise with the log tail."""
        reason = process.wait_until(
            self.healthy, timeout_s=self.start_timeout_s, alive=lambda: self.pid() is not None
        )
        if reason is None:
            return
        pid = process.read_pid(self.pid_file)
        self.stop()
        raise StackError(f"{self.name} failed to start ({reason}; pid {pid}, port {self.port}).\n{self.failure_logs()}")

    def failure_logs(self, lines: int = 30) -> str:
        parts = []
        for path in dict.fromkeys([self.log_file, self.out_file]):
            text = process.tail(path, lines)
            if any(line.strip() and not line.startswith("=== ") for line in text.splitlines()):
                parts.append(f"--- last lines of {path} ---\n{text}")
        return "\n".join(parts) or f"(no log output in {self.log_file})"

    def stop(self) -> bool:
        """Stop our process if it runs. Returns True if there was one to stop."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        killed = process.terminate(pid, self.marker, timeout_s=self.stop_timeout_s)
        if killed:
            logger.warning("%s (pid %d) had to be killed", self.name, pid)
        self.pid_file.unlink(missing_ok=True)
        return True

    def wipe(self) -> None:
        """Delete the service's data and config (not the download cache); it must be stopped."""
        if self.pid() is not None:
            raise StackError(f"{self.name} is still running; stop it before wiping its data")
        shutil.rmtree(self.home, ignore_errors=True)
