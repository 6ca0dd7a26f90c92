"""Compiling contracts/ into build/contracts/<Name>.json.

Every source, ours and OpenZeppelin's, goes into the standard-JSON input with its content, so
no import callback, --base-path or remapping is involved and native solc and solcjs compile
exactly the same input. Imports are resolved like solc with `--base-path <project root>
--include-path node_modules`: `./` and `../` relative to the importing unit, anything else
as a source unit name looked up under the project root, then node_modules. Our files keep
names like `contracts/Foo.sol`, so diagnostics and artifacts name the real files.
"""
from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import solcx
from solcx.exceptions import SolcError

from backend.chain.solc import find_solc, solc_version
from backend.paths import BUILD_DIR, CONTRACTS_DIR, NODE_MODULES

EVM_VERSION = "cancun"
# Runtime gas matters more than code size here (see docs/gas.md): a high runs value trades
# bytes for cheaper calls while every contract stays well under the EIP-170 limit.
OPTIMIZER_RUNS = 10_000
# EIP-170: larger runtime code cannot be deployed on a chain that enforces the limit.
MAX_DEPLOYED_BYTECODE_SIZE = 24576

_OUTPUTS = ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]
_BUILD_INFO = ".build-info.json"
_COMMENT_OR_STRING = re.compile(r"//[^\n]*|/\*.*?\*/|\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'", re.S)
# `import "x";`, `import "x" as X;`, `import * as X from "x";`, `import {A, B as C} from "x";`
_IMPORT = re.compile(r"\bimport\b[^;\"']*([\"'])(.*?)\1", re.S)


class CompilationError(Exception):
    """The build failed; `lines` are the messages to show, `file:line:column: Type: message`."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


@dataclass(frozen=True)
class BuildResult:
    compiled: bool  # False when the artifacts were already up to date
    artifacts: dict[str, dict[str, Any]]  # contract name -> artifact, as written to disk
    compiler_version: str
    solc_path: Path
    how_found: str
    warnings: list[str]  # from the compile that produced the artifacts


def standard_json_input(contracts_dir: Path = CONTRACTS_DIR) -> dict[str, Any]:
    """The exact standard-JSON input `build_contracts` compiles, every source inlined.

    Output is selected for our own files only; OpenZeppelin's are there to be imported.
    """
    contracts_dir = contracts_dir.resolve()
    own = [f"{contracts_dir.name}/{p.relative_to(contracts_dir).as_posix()}"
           for p in sorted(contracts_dir.rglob("*.sol"))]
    if not own:
        raise CompilationError([f"{contracts_dir}: no .sol files to compile"])
    sources: dict[str, str] = {}
    pending = list(own)
    while pending:
        unit = pending.pop()
        if unit in sources:
            continue
        text = _read_unit(unit, contracts_dir.parent)
        if text is None:
            continue  # solc reports the missing file at the import statement that names it
        sources[unit] = text
        pending.extend(_imports(unit, text))
    return {
        "language": "Solidity",
        "sources": {unit: {"content": sources[unit]} for unit in sorted(sources)},
        "settings": {
            "optimizer": {"enabled": True, "runs": OPTIMIZER_RUNS},
            "evmVersion": EVM_VERSION,
            "outputSelection": {unit: {"*": _OUTPUTS} for unit in own},
        },
    }


def build_contracts(
    contracts_dir: Path = CONTRACTS_DIR, build_dir: Path = BUILD_DIR, force: bool = False
) -> BuildResult:
    """Compile unless the artifacts already match the sources, settings and compiler."""
    solc, how_found = find_solc()
    version = solc_version(solc)
    compiler_input = standard_json_input(contracts_dir)
    digest = _build_hash(compiler_input, version)
    out_dir = build_dir / "contracts"
    if not force and (cached := _up_to_date(out_dir, digest)) is not None:
        artifacts, warnings = cached
        return BuildResult(False, artifacts, version, solc, how_found, warnings)

    output, warnings = compile_input(compiler_input, solc)
    artifacts = _artifacts(compiler_input, output, version, digest)
    _write(out_dir, artifacts, digest, warnings)
    return BuildResult(True, artifacts, version, solc, how_found, warnings)


def compile_input(compiler_input: dict[str, Any], solc: Path) -> tuple[dict[str, Any], list[str]]:
    """Compile a standard-JSON input whose sources are inlined, with `solc --standard-json`.

    Returns solc's output and its warnings, formatted `file:line:column: Type: message`.
    Raises CompilationError with the formatted errors if the sources do not compile, or with
    the compiler's exit status and stderr if the compiler itself fails.
    """
    sources = {unit: source["content"] for unit, source in compiler_input["sources"].items()}
    try:
        output = solcx.compile_standard(compiler_input, solc_binary=solc)
    except SolcError as exc:
        if exc.error_dict is None:  # the compiler itself failed, not the sources
            raise CompilationError([f"{solc} failed (exit status {exc.return_code}): {exc.stderr_data}"]) from exc
        raise CompilationError([_diagnostic(d, sources) for d in exc.error_dict]) from None
    return output, [_diagnostic(d, sources) for d in output.get("errors", [])]


def load_artifact(name: str, build_dir: Path = BUILD_DIR, contracts_dir: Path = CONTRACTS_DIR) -> dict[str, Any]:
    """One contract's artifact, compiling first if the sources changed since the last build."""
    artifacts = build_contracts(contracts_dir, build_dir).artifacts
    try:
        return artifacts[name]
    except KeyError:
        raise KeyError(f"no contract {name!r} in {contracts_dir}; there are: {', '.join(sorted(artifacts))}") from None


def _read_unit(unit: str, project_root: Path) -> str | None:
    for base in (project_root, NODE_MODULES):
        path = base / unit
        if path.is_file():
            return path.read_text(encoding="utf-8")
    return None


def _imports(unit: str, text: str) -> list[str]:
    # Comments go first: NatSpec examples may contain import statements.
    code = _COMMENT_OR_STRING.sub(lambda m: m[0] if m[0][0] in "\"'" else " ", text)
    names = []
    for match in _IMPORT.finditer(code):
        path = match[2]
        if path.startswith(("./", "../")):
            path = posixpath.normpath(posixpath.join(posixpath.dirname(unit), path))
        names.append(path)
    return names


def _build_hash(compiler_input: dict[str, Any], version: str) -> str:
    canonical = json.dumps({"compiler": version, "input": compiler_input}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _diagnostic(diagnostic: dict[str, Any], sources: dict[str, str]) -> str:
    """`file:line:column: Type: message`, from solc's byte offset into the source."""
    heading = f"{diagnostic.get('type', diagnostic['severity'])}: {diagnostic['message']}"
    location = diagnostic.get("sourceLocation")
    if not location:
        return heading
    text = sources.get(location["file"])
    start = location.get("start", -1)
    if text is None or start < 0:  # file-wide, e.g. a missing SPDX licence identifier
        return f"{location['file']}: {heading}"
    before = text.encode("utf-8")[:start].decode("utf-8", errors="replace")
    line = before.count("\n") + 1
    column = len(before) - before.rfind("\n")
    return f"{location['file']}:{line}:{column}: {heading}"


def _artifacts(
    compiler_input: dict[str, Any], output: dict[str, Any], version: str, digest: str
) -> dict[str, dict[str, Any]]:
    settings = compiler_input["settings"]
    artifacts: dict[str, dict[str, Any]] = {}
    for unit in settings["outputSelection"]:
        for name, contract in sorted(output.get("contracts", {}).get(unit, {}).items()):
            bytecode = contract["evm"]["bytecode"]["object"]
            if not contract["abi"] and not bytecode:
                continue  # an abstract contract with only internal functions: nothing to call or deploy
            if name in artifacts:
                raise CompilationError([
                    f"{unit}: contract {name} is also defined in {artifacts[name]['sourceName']}; "
                    "artifacts are named by contract, so names must be unique"
                ])
            artifacts[name] = {
                "contractName": name,
                "sourceName": unit,
                "abi": contract["abi"],
                "bytecode": "0x" + bytecode,
                "deployedBytecode": "0x" + contract["evm"]["deployedBytecode"]["object"],
                "compiler": {
                    "version": version,
                    "evmVersion": settings["evmVersion"],
                    "optimizer": settings["optimizer"],
                },
                "buildHash": digest,
            }
    return artifacts


def _up_to_date(out_dir: Path, digest: str) -> tuple[dict[str, dict[str, Any]], list[str]] | None:
    try:
        info = json.loads((out_dir / _BUILD_INFO).read_text(encoding="utf-8"))
        if info["buildHash"] != digest:
            return None
        artifacts = {
            name: json.loads((out_dir / f"{name}.json").read_text(encoding="utf-8")) for name in info["contracts"]
        }
        warnings: list[str] = info["warnings"]
    except (OSError, ValueError, KeyError):
        return None
    if any(artifact.get("buildHash") != digest for artifact in artifacts.values()):
        return None
    return artifacts, warnings


def _write(out_dir: Path, artifacts: dict[str, dict[str, Any]], digest: str, warnings: list[str]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, artifact in artifacts.items():
        _write_json(out_dir / f"{name}.json", artifact)
    for path in out_dir.glob("*.json"):
        if not path.name.startswith(".") and path.stem not in artifacts:
            path.unlink()  # a contract that was renamed or deleted
    # Last, so an interrupted build leaves a stale hash behind and the next one recompiles.
    _write_json(out_dir / _BUILD_INFO, {"buildHash": digest, "contracts": sorted(artifacts), "warnings": warnings})


def _write_json(path: Path, data: Any) -> None:
    """Write via a temporary file and rename, so readers never see half an artifact."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; artifacts are for everyone to read
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
