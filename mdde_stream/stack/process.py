"""Background processes that outlive the command which started them.

`stack up` returns as soon as the servers answer, so each server runs in its own session with
its output in a log file, and its pid goes into a pid file under the stack directory. A pid
file alone is not proof: after a reboot the number can belong to another program, so a pid only
counts as ours while its command line still carries a marker we chose (a config path or a port).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from mdde_stream.errors import MddeError

logger = logging.getLogger(__name__)

# Popen objects of children started by this interpreter, so they can be reaped (a dead child
# that nobody waited for stays a zombie and still answers `kill -0`).
_children: dict[int, subprocess.Popen[bytes]] = {}


class StackError(MddeError, RuntimeError):
    """A local-stack service could not be prepared, started, checked or stopped."""


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # Format: "pid (comm) state ..."; comm may contain spaces, so split after the last ')'.
    return stat.rsplit(")", 1)[-1].split()[0] in {"Z", "X"}


Marker = str | tuple[str, ...]


def pid_alive(pid: int, marker: Marker) -> bool:
    """True when `pid` is a live (non-zombie) process whose command line contains `marker`.

    A tuple of markers means any of them (a process may rewrite its title after starting).
    """
    child = _children.get(pid)
    if child is not None:
        if child.poll() is not None:
            _children.pop(pid, None)
            return False
        # Our own running child: between fork and exec its command line is still this
        # interpreter's, so the marker check would call a starting server dead.
        return True
    if not Path(f"/proc/{pid}").exists() or _is_zombie(pid):
        return False
    cmdline = _cmdline(pid)
    markers = (marker,) if isinstance(marker, str) else marker
    return any(m in cmdline for m in markers)


def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def running_pid(pid_file: Path, marker: Marker) -> int | None:
    """The pid recorded in `pid_file` if that process is still ours and alive, else None."""
    pid = read_pid(pid_file)
    if pid is not None and pid_alive(pid, marker):
        return pid
    return None


def spawn(
    argv: Sequence[str],
    *,
    pid_file: Path,
    out_file: Path,
    cwd: Path,
    env: dict[str, str] | None = None,
) -> int:
    """Start `argv` detached (own session, stdin closed, output appended to `out_file`)."""
    out_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with out_file.open("ab") as out:
        out.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(argv)}\n".encode())
        out.flush()
        try:
            proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env={**os.environ, **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        except FileNotFoundError as exc:
            raise StackError(f"cannot start {argv[0]!r}: {exc.strerror}") from exc
    _children[proc.pid] = proc
    pid_file.write_text(f"{proc.pid}\n")
    logger.debug("spawned pid %d: %s", proc.pid, " ".join(argv))
    return proc.pid


def terminate(pid: int, marker: Marker, *, timeout_s: float) -> bool:
    """SIGTERM, wait up to `timeout_s`, then SIGKILL. Returns True if it had to kill."""
    if not pid_alive(pid, marker):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not pid_alive(pid, marker):
            return False
        time.sleep(0.1)
    logger.warning("pid %d ignored SIGTERM for %.0f s; sending SIGKILL", pid, timeout_s)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and pid_alive(pid, marker):
        time.sleep(0.1)
    return True


def port_open(port: int, host: str = "127.0.0.1", timeout_s: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def wait_until(
    check: Callable[[], bool],
    *,
    timeout_s: float,
    alive: Callable[[], bool],
    interval_s: float = 0.3,
) -> str | None:
    """Poll `check` until it passes. Returns None on success, else why it stopped waiting."""
    deadline = time.monotonic() + timeout_s
    while True:
        if check():
            return None
        if not alive():
            return "the process exited"
        if time.monotonic() >= deadline:
            return f"not healthy after {timeout_s:.0f} s"
        time.sleep(interval_s)


def tail(path: Path, lines: int = 30) -> str:
    """Last `lines` lines of a log file ('' if it does not exist)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            text = fh.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
