"""`python -m bench.throughput` with tiny counts: both stacks start, every figure is measured
through the API and printed as one JSON object, and nothing it started is left running."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from backend.chain import devnet
from backend.paths import PROJECT_ROOT
from bench.throughput import FOREIGN_SETTINGS

FIGURES = ("end_to_end_invoices_per_s", "baseline_invoices_per_s", "single_p50_s", "single_p95_s",
           "time_to_fund_p50_s", "time_to_fund_p95_s", "ratio")


@pytest.mark.anvil
def test_the_benchmark_measures_every_figure_through_the_stack_and_prints_one_json_object() -> None:
    try:
        devnet.anvil_binary()
    except devnet.AnvilNotFound as exc:
        pytest.skip(str(exc))
    env = {name: value for name, value in os.environ.items() if name not in FOREIGN_SETTINGS}

    run = subprocess.run([sys.executable, "-m", "bench.throughput", "--count", "40", "--baseline-count", "5",
                          "--samples", "2", "--timeout", "120", "--json"],
                         cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=400)

    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.strip().splitlines()
    assert len(lines) == 1, run.stdout
    result = json.loads(lines[0])
    for figure in FIGURES:
        assert isinstance(result[figure], float) and result[figure] > 0, (figure, result)
    assert result["end_to_end_invoices"] == 40 and result["baseline_invoices"] == 5
    assert result["single_samples"] == result["time_to_fund_samples"] == 2
    assert result["single_p50_s"] <= result["single_p95_s"]
    # The rates are printed to one decimal, too coarse for a few invoices; the seconds are not.
    end_to_end_rate = result["end_to_end_invoices"] / result["end_to_end_seconds"]
    baseline_rate = result["baseline_invoices"] / result["baseline_seconds"]
    assert result["ratio"] == pytest.approx(end_to_end_rate / baseline_rate, rel=0.02)
