"""Benchmarks: `python -m bench.gas` (gas per lifecycle step) and `python -m bench.register`
(registration throughput). They print figures and assert nothing; see docs/gas.md.

Each one starts its own anvil (a temporary directory, a free port), deploys fresh contracts,
and talks to it over standard Ethereum JSON-RPC only, so it never touches the devnet on 8545.
"""
