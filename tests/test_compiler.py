"""The Solidity build: compiler lookup, the solcjs adapter, artifacts, caching and diagnostics.

A small contract in a temporary contracts/ directory (importing OpenZeppelin from
node_modules) keeps these tests independent of the real contracts; it is compiled once per
module because solcjs needs a few seconds for ERC20.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import solcx
from click.testing import CliRunner
from packaging.version import Version

from backend.chain import solc as solc_module
from backend.chain.compiler import (
    EVM_VERSION,
    OPTIMIZER_RUNS,
    BuildResult,
    CompilationError,
    build_contracts,
    compile_input,
    load_artifact,
    standard_json_input,
)
from backend.chain.solc import SOLC_VERSION, SOLCJS_ADAPTER, SolcNotFoundError, SolcVersionWarning, find_solc
from backend.commands.contracts import contracts

TOKEN_SOL = """\
// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
// import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Base} from "./lib/Base.sol";

contract Token is ERC20, Base {
    error NotAllowed(address who);

    constructor() ERC20("Token", "TKN") {
        _mint(msg.sender, _double(500));
    }

    function check() external pure returns (bool) {
        uint256 unused;
        return true;
    }
}
"""
BASE_SOL = """\
// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

abstract contract Base {
    function _double(uint256 x) internal pure returns (uint256) {
        return 2 * x;
    }
}
"""
UNUSED_WARNING = "contracts/Token.sol:16:9: Warning: Unused local variable."


def _write_contracts(root: Path, token_source: str = TOKEN_SOL) -> Path:
    contracts_dir = root / "contracts"
    (contracts_dir / "lib").mkdir(parents=True)
    (contracts_dir / "Token.sol").write_text(token_source)
    (contracts_dir / "lib" / "Base.sol").write_text(BASE_SOL)
    return contracts_dir


def _executable(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def _fake_solc(path: Path, version: str) -> Path:
    """A stand-in native solc that answers `--version` like the real one, and nothing else."""
    return _executable(
        path, f'echo "solc, the solidity compiler commandline interface"\necho "Version: {version}+commit.0123abcd.Linux.g++"'
    )


def _artifact_files(build_dir: Path) -> list[str]:
    return sorted(p.name for p in (build_dir / "contracts").glob("*.json") if not p.name.startswith("."))


def _path_without_solc() -> str:
    """The current PATH minus any directory holding a solc, so node stays reachable."""
    return os.pathsep.join(d for d in os.environ["PATH"].split(os.pathsep) if not shutil.which("solc", path=d))


@pytest.fixture(autouse=True)
def _pinned_compiler(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Compile with the npm solc whatever this machine has, and never look in ~/.solcx."""
    monkeypatch.setenv("SOLC_BINARY", str(SOLCJS_ADAPTER))
    monkeypatch.setenv("SOLCX_BINARY_PATH", str(tmp_path_factory.mktemp("solcx-empty")))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, BuildResult]]:
    root = tmp_path_factory.mktemp("project")
    contracts_dir = _write_contracts(root)
    build_dir = root / "build"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOLC_BINARY", str(SOLCJS_ADAPTER))
        patch.setenv("SOLCX_BINARY_PATH", str(tmp_path_factory.mktemp("solcx-empty")))
        yield contracts_dir, build_dir, build_contracts(contracts_dir, build_dir)


def test_standard_json_input_inlines_the_import_closure(built: tuple[Path, Path, BuildResult]) -> None:
    contracts_dir, _, _ = built
    compiler_input = standard_json_input(contracts_dir)
    sources = compiler_input["sources"]
    assert "contracts/Token.sol" in sources and "contracts/lib/Base.sol" in sources
    assert "@openzeppelin/contracts/token/ERC20/ERC20.sol" in sources
    assert "@openzeppelin/contracts/utils/Context.sol" in sources  # via ERC20's "../../utils/Context.sol"
    assert "@openzeppelin/contracts/access/Ownable.sol" not in sources  # only named in a comment
    assert all(source["content"] for source in sources.values())
    assert compiler_input["settings"]["evmVersion"] == "cancun"
    assert compiler_input["settings"]["optimizer"] == {"enabled": True, "runs": OPTIMIZER_RUNS}
    assert sorted(compiler_input["settings"]["outputSelection"]) == ["contracts/Token.sol", "contracts/lib/Base.sol"]


def test_build_writes_one_artifact_per_own_contract(built: tuple[Path, Path, BuildResult]) -> None:
    _, build_dir, result = built
    assert result.compiled
    assert result.compiler_version.startswith(f"{SOLC_VERSION}+commit.")
    # OpenZeppelin's contracts and Base (no ABI, no bytecode) get no artifact.
    assert _artifact_files(build_dir) == ["Token.json"]
    token = json.loads((build_dir / "contracts" / "Token.json").read_text())
    assert token == result.artifacts["Token"]
    assert token["contractName"] == "Token" and token["sourceName"] == "contracts/Token.sol"
    abi_names = {entry.get("name") for entry in token["abi"]}
    assert {"transfer", "check", "NotAllowed"} <= abi_names
    assert re.fullmatch(r"0x(?:[0-9a-f]{2})+", token["bytecode"])
    assert re.fullmatch(r"0x(?:[0-9a-f]{2})+", token["deployedBytecode"])
    assert len(token["bytecode"]) > len(token["deployedBytecode"])  # init code wraps the runtime code
    assert token["compiler"] == {
        "version": result.compiler_version,
        "evmVersion": EVM_VERSION,
        "optimizer": {"enabled": True, "runs": OPTIMIZER_RUNS},
    }
    assert re.fullmatch(r"[0-9a-f]{64}", token["buildHash"])


def test_warnings_are_reported_without_failing(built: tuple[Path, Path, BuildResult]) -> None:
    _, _, result = built
    assert UNUSED_WARNING in result.warnings


def test_unchanged_sources_are_not_recompiled(built: tuple[Path, Path, BuildResult]) -> None:
    contracts_dir, build_dir, first = built
    artifact_file = build_dir / "contracts" / "Token.json"
    mtime = artifact_file.stat().st_mtime_ns
    again = build_contracts(contracts_dir, build_dir)
    assert not again.compiled
    assert again.artifacts == first.artifacts and again.warnings == first.warnings
    assert artifact_file.stat().st_mtime_ns == mtime
    assert load_artifact("Token", build_dir, contracts_dir) == first.artifacts["Token"]
    with pytest.raises(KeyError, match="Token"):
        load_artifact("Nope", build_dir, contracts_dir)


def test_changed_source_recompiles_and_drops_stale_artifacts(
    built: tuple[Path, Path, BuildResult], tmp_path: Path
) -> None:
    contracts_dir, build_dir, first = built
    shutil.copytree(contracts_dir, tmp_path / "contracts")
    shutil.copytree(build_dir, tmp_path / "build")
    token_sol = tmp_path / "contracts" / "Token.sol"
    token_sol.write_text(token_sol.read_text().replace("contract Token", "contract Coin"))

    result = build_contracts(tmp_path / "contracts", tmp_path / "build")

    assert result.compiled
    assert _artifact_files(tmp_path / "build") == ["Coin.json"]
    assert result.artifacts["Coin"]["buildHash"] != first.artifacts["Token"]["buildHash"]


def test_cli_build_lists_sizes_and_warnings(built: tuple[Path, Path, BuildResult]) -> None:
    contracts_dir, build_dir, first = built
    result = CliRunner().invoke(
        contracts, ["build", "--contracts-dir", str(contracts_dir), "--build-dir", str(build_dir)]
    )
    assert result.exit_code == 0, result.output
    size = (len(first.artifacts["Token"]["deployedBytecode"]) - 2) // 2
    assert re.search(rf"^  Token\s+{size} bytes$", result.stdout, re.M)
    assert "up to date" in result.stdout
    assert "found via SOLC_BINARY" in result.stdout
    assert UNUSED_WARNING in result.stderr


def test_cli_syntax_error_prints_location_and_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Also the PATH rung end to end: a fake native solc that forwards to the adapter."""
    calls = tmp_path / "calls.log"
    bin_dir = tmp_path / "bin"
    _executable(bin_dir / "solc", f'echo "$@" >> "{calls}"\nexec node "{SOLCJS_ADAPTER}" "$@"')
    monkeypatch.delenv("SOLC_BINARY")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    contracts_dir = tmp_path / "contracts"
    contracts_dir.mkdir()
    # The multi-byte character before the error checks that columns count characters while
    # solc's offsets count bytes.
    (contracts_dir / "Broken.sol").write_text(
        "// SPDX-License-Identifier: Apache-2.0\n"
        "pragma solidity ^0.8.24;\n"
        "contract Broken { /* é */ function f() public { uint256 x = ; } }\n"
    )

    result = CliRunner().invoke(
        contracts, ["build", "--contracts-dir", str(contracts_dir), "--build-dir", str(tmp_path / "build")]
    )

    assert result.exit_code == 1
    assert "contracts/Broken.sol:3:61: ParserError: Expected primary expression." in result.stderr
    assert "--standard-json" in calls.read_text().split()
    assert not (tmp_path / "build" / "contracts").exists()


def test_compile_input_returns_output_and_formatted_warnings_or_raises() -> None:
    """The one compile step the build and the static analysis (backend/chain/analysis.py) share."""
    solc, _ = find_solc()
    source = "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.0;\ncontract C { function f() external pure { uint256 x; } }\n"
    compiler_input = {
        "language": "Solidity",
        "sources": {"contracts/C.sol": {"content": source}},
        "settings": {"outputSelection": {"*": {"*": ["abi"]}}},
    }
    output, warnings = compile_input(compiler_input, solc)
    assert [entry["name"] for entry in output["contracts"]["contracts/C.sol"]["C"]["abi"]] == ["f"]
    assert warnings == ["contracts/C.sol:3:43: Warning: Unused local variable."]

    compiler_input["sources"]["contracts/C.sol"]["content"] = source.replace("uint256 x;", "uint256 x = ;")
    with pytest.raises(CompilationError) as raised:
        compile_input(compiler_input, solc)
    assert raised.value.lines == ["contracts/C.sol:3:55: ParserError: Expected primary expression."]


def _run_adapter(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SOLCJS_ADAPTER), *args], input=stdin, capture_output=True, text=True, timeout=60)


def test_adapter_answers_version_like_native_solc() -> None:
    done = _run_adapter("--version")
    assert done.returncode == 0
    assert re.fullmatch(
        r"solc, the solidity compiler commandline interface\n"
        rf"Version: {re.escape(SOLC_VERSION)}\+commit\.[0-9a-f]{{8}}\.Emscripten\.clang\n",
        done.stdout,
    )
    assert solcx.wrapper.get_solc_version(SOLCJS_ADAPTER) == Version(SOLC_VERSION)


def test_adapter_standard_json_prints_only_json() -> None:
    compiler_input = {
        "language": "Solidity",
        "sources": {"C.sol": {"content": "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.0;\ncontract C { function f() external {} }"}},
        "settings": {"outputSelection": {"*": {"*": ["abi"]}}},
    }
    done = _run_adapter("--standard-json", stdin=json.dumps(compiler_input))
    assert done.returncode == 0, done.stderr
    output: dict[str, Any] = json.loads(done.stdout)
    assert [entry["name"] for entry in output["contracts"]["C.sol"]["C"]["abi"]] == ["f"]


def test_adapter_rejects_other_arguments() -> None:
    done = _run_adapter("--bin", "x.sol")
    assert done.returncode != 0
    assert done.stdout == ""
    assert "unrecognised option '--bin x.sol'" in done.stderr


@pytest.fixture
def compilers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """One candidate on every rung of the lookup, all present at once."""
    explicit = _fake_solc(tmp_path / "explicit" / "solc", SOLC_VERSION)
    on_path = _fake_solc(tmp_path / "bin" / "solc", SOLC_VERSION)
    solcx_dir = tmp_path / "solcx"
    pinned = _executable(solcx_dir / f"solc-v{SOLC_VERSION}", "exit 0")
    _executable(solcx_dir / "solc-v0.8.99", "exit 0")
    monkeypatch.setenv("SOLC_BINARY", str(explicit))
    monkeypatch.setenv("PATH", f"{on_path.parent}{os.pathsep}{_path_without_solc()}")
    monkeypatch.setenv("SOLCX_BINARY_PATH", str(solcx_dir))
    return {"explicit": explicit, "path": on_path, "pinned": pinned, "solcx_dir": solcx_dir}


def test_lookup_prefers_solc_binary(compilers: dict[str, Path]) -> None:
    assert find_solc() == (compilers["explicit"], "SOLC_BINARY")


def test_lookup_warns_about_but_uses_a_solc_binary_of_another_version(compilers: dict[str, Path]) -> None:
    _fake_solc(compilers["explicit"], "0.8.29")
    with pytest.warns(SolcVersionWarning, match=rf"is solc 0\.8\.29\+commit\.0123abcd, not the pinned {re.escape(SOLC_VERSION)}"):
        assert find_solc() == (compilers["explicit"], "SOLC_BINARY")


def test_lookup_rejects_a_solc_binary_that_is_not_executable(compilers: dict[str, Path]) -> None:
    compilers["explicit"].chmod(0o644)
    with pytest.raises(SolcNotFoundError, match="SOLC_BINARY"):
        find_solc()


def test_lookup_then_path(compilers: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOLC_BINARY")
    assert find_solc() == (compilers["path"], "PATH")


@pytest.mark.parametrize("answer", ["0.8.29", None], ids=["other-version", "no-version"])
def test_lookup_skips_a_path_solc_that_is_not_the_pinned_version(
    compilers: dict[str, Path], monkeypatch: pytest.MonkeyPatch, answer: str | None
) -> None:
    monkeypatch.delenv("SOLC_BINARY")
    if answer is None:
        _executable(compilers["path"], "exit 0")
    else:
        _fake_solc(compilers["path"], answer)
    assert find_solc() == (compilers["pinned"], "py-solc-x")


def test_lookup_then_pinned_py_solc_x_install(compilers: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOLC_BINARY")
    monkeypatch.setenv("PATH", _path_without_solc())
    assert find_solc() == (compilers["pinned"], "py-solc-x")


def test_lookup_ignores_py_solc_x_installs_of_other_versions(
    compilers: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOLC_BINARY")
    monkeypatch.setenv("PATH", _path_without_solc())
    compilers["pinned"].unlink()  # only solc-v0.8.99 is left
    assert find_solc() == (SOLCJS_ADAPTER, "npm solc (solcjs-adapter.js)")


def test_lookup_falls_back_to_the_adapter(compilers: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOLC_BINARY")
    monkeypatch.setenv("PATH", _path_without_solc())
    shutil.rmtree(compilers["solcx_dir"])
    compilers["solcx_dir"].mkdir()
    assert find_solc() == (SOLCJS_ADAPTER, "npm solc (solcjs-adapter.js)")


def test_adapter_fallback_restores_a_lost_executable_bit(
    compilers: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    copy = tmp_path / "solcjs-adapter.js"
    shutil.copy(SOLCJS_ADAPTER, copy)
    copy.chmod(0o644)
    monkeypatch.setattr(solc_module, "SOLCJS_ADAPTER", copy)
    monkeypatch.delenv("SOLC_BINARY")
    monkeypatch.setenv("PATH", _path_without_solc())
    shutil.rmtree(compilers["solcx_dir"])
    compilers["solcx_dir"].mkdir()
    path, _ = find_solc()
    assert path == copy and copy.stat().st_mode & stat.S_IXUSR


def test_lookup_without_node_names_what_to_install(
    compilers: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOLC_BINARY")
    monkeypatch.setenv("PATH", str(compilers["solcx_dir"]))  # neither solc nor node
    shutil.rmtree(compilers["solcx_dir"])
    compilers["solcx_dir"].mkdir()
    with pytest.raises(SolcNotFoundError, match=r"install Node\.js \(the `node` command\)"):
        find_solc()
