"""`anchorline serve`: the API on waitress, on a database it migrates first, stopped by Ctrl-C."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import requests

from backend.chain.devnet import free_port
from backend.paths import PROJECT_ROOT


def test_serve_migrates_a_fresh_database_serves_the_api_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port("127.0.0.1")
    env = {**os.environ, "ANCHORLINE_INSTANCE": str(tmp_path / "instance")}
    env.pop("DATABASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "serve", "--port", str(port)],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        for line in process.stdout:
            if "API at" in line:
                break
        assert line.strip() == f"API at http://127.0.0.1:{port}/api/v1 (interactive docs at /api/v1/docs)"
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10).json()["database"] == "ok"
        unauthenticated = requests.get(f"http://127.0.0.1:{port}/api/v1/invoices", timeout=10)
        assert unauthenticated.status_code == 401
        assert unauthenticated.headers["Content-Type"] == "application/problem+json"
        assert (tmp_path / "instance" / "anchorline.db").exists()
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
