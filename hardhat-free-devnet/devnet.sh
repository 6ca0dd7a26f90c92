#!/usr/bin/env sh
# `anchorline devnet start|stop|status` without the rest of the CLI; the logic lives in
# backend/commands/devnet.py. Usage: devnet.sh start|stop|status [--instance-dir DIR] [--port N]
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
python="$root/.venv/bin/python"
if [ ! -x "$python" ]; then
    echo "$0: $python not found; run \`make install\` first" >&2
    exit 1
fi
PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" exec "$python" -m backend.commands.devnet "$@"
