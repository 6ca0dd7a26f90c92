"""Background processes Anchorline starts and must stop again: the pieces every manager shares.

The devnet's anvil (backend/chain/devnet.py) and the bundled redis-server
(workers/redis_server.py) are each one process per directory, named by a pid file in it and
guarded by a lock file, so two commands never race on it. A pid file alone proves nothing (the
process may have died and its pid been reused), so each manager also checks that the live
process is its own; these helpers read what that check needs from /proc.
"""
from __future__ import annotations

import fcntl
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

LOG_TAIL_LINES = 25


class StopOutcome(Enum):
    STOPPED = "stopped"
    NOT_RUNNING = "not running"
    STALE_PID_FILE = "stale pid file"


@dataclass(frozen=True)
class StopResult:
    outcome: StopOutcome
    pid: int | None


def free_port(host: str) -> int:
    """A TCP port on `host` that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def listening(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on `host`:`port`."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Serialise start and stop on one directory, so two commands never race on its pid file."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def read_pid(path: Path) -> int | None:
    """The pid a pid file names, or None if there is no readable one."""
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def live_process_args(pid: int) -> list[str] | None:
    """The command line of process `pid`, or None once it has exited (zombies included)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The state is the first field after the parenthesised command name; Z = exited, unreaped.
    if stat.rpartition(")")[2].split()[0] == "Z":
        return None
    return [arg.decode(errors="replace") for arg in cmdline.split(b"\0") if arg]


def process_group_members(group: int) -> list[int]:
    """The live processes (zombies excluded) of process group `group`."""
    members = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rpartition(")")[2].split()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if fields[0] != "Z" and int(fields[2]) == group:
            members.append(int(stat_file.parent.name))
    return members


def kill_process_group(group: int, timeout: float) -> None:
    """SIGKILL every process left in `group` and wait until they are gone (or `timeout`)."""
    try:
        os.killpg(group, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while process_group_members(group) and time.monotonic() < deadline:
        time.sleep(0.05)


def working_directory(pid: int) -> Path | None:
    """The current directory of process `pid`, or None if it is gone or not ours to inspect."""
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd"))
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def flag(args: list[str], name: str) -> str | None:
    """The value following `name` on a command line, or None."""
    try:
        return args[args.index(name) + 1]
    except (ValueError, IndexError):
        return None


def signal_and_wait(pid: int, signum: int, timeout: float) -> bool:
    """Send `signum` to `pid` and wait until it has exited; False if it still runs after
    `timeout` seconds."""
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while live_process_args(pid) is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def terminate(process: subprocess.Popen[bytes], timeout: float, signum: int = signal.SIGTERM) -> None:
    """Stop a child: `signum` (SIGTERM), and SIGKILL if it has not exited within `timeout`."""
    if process.poll() is None:
        process.send_signal(signum)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def log_tail(log: Path, *, hide: re.Pattern[str] | None = None, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a log, for an error message; lines matching `hide` (secrets) left out."""
    try:
        tail = log.read_text(errors="replace").splitlines()[-lines:]
    except FileNotFoundError:
        return f"{log} does not exist"
    shown = [line for line in tail if not (hide and hide.match(line))]
    return f"last lines of {log}:\n" + "\n".join(shown)
