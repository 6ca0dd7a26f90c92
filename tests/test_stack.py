"""`anchorline up` (what `make run` runs) end to end, in a temporary instance folder on free
ports: Redis, devnet, deployment, migrations, demo participants, a Celery worker and beat, the
web server, the demo driven through the API, `anchorline demo` again on demand; Ctrl-C stops
every process it started and frees every port. `up --detach` leaves Redis and the devnet for
their own commands to stop, and a second run reuses them and the demo logins."""
from __future__ import annotations

import os
import queue
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
import requests
from click.testing import CliRunner

from backend import processes
from backend.chain import devnet
from backend.cli import main
from backend.commands.demo import CREDENTIALS_FILE, DemoCredentials
from backend.commands.up import Stack
from backend.paths import PROJECT_ROOT
from tests.db_fixtures import CONFIG_ENVIRONMENT, isolate_configuration
from workers import redis_server

DEMO_STEPS = ("operator onboards", "operator mints", "supplier registers invoice", "buyer confirms",
              "supplier asks for at least", "financier offers", "supplier accepts", "buyer repays")
START_TIMEOUT_SECONDS = 300.0


@dataclass
class Instance:
    folder: Path
    env: dict[str, str]

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "backend.cli", *args], cwd=PROJECT_ROOT, env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "backend.cli", *args], cwd=PROJECT_ROOT, env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[Instance]:
    """A private instance folder and deployments record, an environment without a developer's
    settings; whatever background process a test leaves there is stopped after it."""
    try:
        devnet.anvil_binary()
    except devnet.AnvilNotFound as exc:
        pytest.skip(str(exc))
    folder = tmp_path / "instance"
    env = {name: value for name, value in os.environ.items() if name not in CONFIG_ENVIRONMENT}
    env.update(ANCHORLINE_INSTANCE=str(folder), ANCHORLINE_DEPLOYMENTS=str(tmp_path / "deployments"))
    yield Instance(folder, env)
    devnet.stop(devnet.default_directory(folder))
    redis_server.stop(redis_server.default_directory(folder))


def read_until(process: subprocess.Popen[str], marker: str, timeout: float) -> str:
    """The process's output up to the line containing `marker` (or its end, or the timeout)."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in process.stdout:  # type: ignore[union-attr]
            lines.put(line)
            if marker in line:
                return
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    output: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if line is None:
            break
        output.append(line)
        if marker in line:
            break
    return "".join(output)


def pid_of(name: str, text: str) -> int:
    return int(re.search(rf"^{name} (?:started|already running) .*\(.*pid (\d+)\)", text, re.MULTILINE).group(1))


def assert_timeline(text: str) -> None:
    for step in DEMO_STEPS:
        assert re.search(rf"block +\d+  0x[0-9a-f]{{64}}  {step}", text), (step, text)
    assert "demo complete" in text


@pytest.mark.anvil
def test_up_runs_the_stack_and_the_demo_and_ctrl_c_leaves_nothing_running(instance: Instance) -> None:
    port, api_port = processes.free_port("127.0.0.1"), processes.free_port("127.0.0.1")
    process = instance.popen("up", "--port", str(port), "--api-port", str(api_port))
    try:
        text = read_until(process, "press Ctrl-C", START_TIMEOUT_SECONDS)
        assert "running; press Ctrl-C to stop" in text, text
        assert "deployed Anchorline" in text
        redis_address = re.search(r"Redis started at (127\.0\.0\.1:\d+)", text).group(1)
        assert f"devnet started at http://127.0.0.1:{port}" in text
        children = {name: pid_of(name, text) for name in ("Redis", "devnet", "worker", "beat", "web server")}
        api = f"http://127.0.0.1:{api_port}/api/v1"
        assert f"API      {api}" in text
        assert_timeline(text)
        assert "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"[:14] not in text  # no dev keys

        # the logins shown are the ones kept, for the owner only
        credentials_path = instance.folder / CREDENTIALS_FILE
        assert stat.S_IMODE(credentials_path.stat().st_mode) == 0o600
        credentials = DemoCredentials.load(credentials_path)
        assert set(credentials.logins) == {"operator", "supplier", "buyer", "financier", "auditor"}
        for login in credentials.logins.values():
            assert login.api_key in text and login.email in text and login.password in text
        assert credentials.api_url == api

        health = requests.get(f"{api}/health", timeout=10)
        assert health.status_code == 200 and health.json()["problems"] == {}
        assert 'anchorline_up{part="worker"} 1.0' in requests.get(f"http://127.0.0.1:{api_port}/metrics", timeout=10).text
        supplier = requests.get(f"{api}/session", timeout=10,
                                headers={"Authorization": f"Bearer {credentials.logins['supplier'].api_key}"})
        assert supplier.json()["organisation"]["name"] == credentials.logins["supplier"].name

        status = instance.cli("status")  # finds the instance's Redis and devnet by itself
        assert status.returncode == 0 and "status       ok" in status.stdout, status.stdout + status.stderr
        assert re.search(r"outbox       .*mined \d+", status.stdout), status.stdout

        again = instance.cli("demo", timeout=180)  # on demand, against the running stack
        assert again.returncode == 0, again.stdout + again.stderr
        assert_timeline(again.stdout)

        groups = {pid: processes.process_group_members(pid) for pid in (children["worker"], children["web server"])}
        assert all(len(members) > 1 for members in groups.values()), groups  # pool processes, web workers
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, rest
    for name in ("web server", "beat", "worker", "devnet", "Redis"):
        assert f"{name}: stopped" in rest, rest
    # reverse order of start
    assert rest.index("web server: stopped") < rest.index("worker: stopped") < rest.index("Redis: stopped")
    for name, pid in children.items():
        assert processes.live_process_args(pid) is None, name
    for group in groups:
        assert processes.process_group_members(group) == [], group
    for address in (f"127.0.0.1:{api_port}", f"127.0.0.1:{port}", redis_address):
        host, _, number = address.partition(":")
        assert not processes.listening(host, int(number)), address
    assert redis_server.running(redis_server.default_directory(instance.folder)) is None


@pytest.mark.anvil
def test_up_detach_leaves_redis_and_the_devnet_running_and_a_second_run_reuses_them(instance: Instance) -> None:
    port = processes.free_port("127.0.0.1")

    first = instance.cli("up", "--detach", "--port", str(port))

    assert first.returncode == 0, first.stdout + first.stderr
    assert "detached" in first.stdout and "anchorline worker" in first.stdout
    server = redis_server.running(redis_server.default_directory(instance.folder))
    node = devnet.running(devnet.default_directory(instance.folder))
    assert server is not None and node is not None
    logins = DemoCredentials.load(instance.folder / CREDENTIALS_FILE).logins

    second = instance.cli("up", "--detach", "--port", str(port))

    assert second.returncode == 0, second.stdout + second.stderr
    assert "Redis already running" in second.stdout and "devnet already running" in second.stdout
    assert "found the existing deployment" in second.stdout
    # the same participants, passwords and keys: nothing is made twice
    assert DemoCredentials.load(instance.folder / CREDENTIALS_FILE).logins == logins
    assert redis_server.running(redis_server.default_directory(instance.folder)).pid == server.pid

    assert instance.cli("redis", "stop").returncode == 0
    assert instance.cli("devnet", "stop").returncode == 0
    assert processes.live_process_args(server.pid) is None and processes.live_process_args(node.pid) is None


def test_a_child_that_dies_is_reported_and_stopping_empties_each_childs_process_group(tmp_path: Path) -> None:
    stack = Stack(threading.Event())
    env = dict(os.environ)
    # a child that forks a grandchild into its process group, as Celery and gunicorn do
    forking = stack.spawn("forking", ["sh", "-c", "sleep 600 & echo forked; wait"], env, tmp_path)
    dying = stack.spawn("dying", [sys.executable, "-c", "print('giving up'); raise SystemExit(3)"], env, tmp_path)
    dying.process.wait(30)
    deadline = time.monotonic() + 10
    while len(processes.process_group_members(forking.process.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    members = processes.process_group_members(forking.process.pid)
    assert len(members) == 2, members

    with pytest.raises(click.ClickException, match=r"the dying exited with status 3;(.|\n)*giving up"):
        stack.require_children_alive()
    stack.stop_all()

    assert forking.process.returncode is not None
    assert processes.process_group_members(forking.process.pid) == []  # the grandchild went with it
    assert stack.started == []


def test_worker_beat_and_demo_refuse_clearly_without_a_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_configuration(monkeypatch, tmp_path / "instance")
    runner = CliRunner()
    for command in ("worker", "beat"):
        result = runner.invoke(main, [command])
        assert result.exit_code == 1 and "no Redis: set REDIS_URL" in result.output, result.output
    demo = runner.invoke(main, ["demo"])
    assert demo.exit_code == 1 and "start the stack with `anchorline up`" in demo.output, demo.output
