"""Static analysis of contracts/ with Slither, on exactly what the build compiles.

Slither gets its ASTs from crytic-compile's standard-JSON platform (`SolcStandardJson`),
fed with `compiler.standard_json_input()` (every source inlined, same optimizer and EVM
version) and compiled by the compiler `find_solc()` picks, so the analysis sees the build's
compiler and settings. Only the output selection differs: Slither needs every source's `ast`
and crytic-compile the bytecode source maps; the build's own input is not touched. (The
platform adds an empty `remappings` list, which changes nothing with inlined sources.)

crytic-compile runs solc as `solc --standard-json --allow-paths <dir>`, an option the solcjs
adapter rejects (and which means nothing with inlined sources). `_BuildInput.compile` therefore
runs the compiler the way the build does, through `compiler.compile_input` (py-solc-x with
`--standard-json` only, and the build's error reporting), and hands the output to the
platform's own parser, `parse_standard_json_output`.

All of Slither's detectors run. A finding is kept when any of its elements lies in contracts/;
those entirely inside OpenZeppelin (node_modules/@openzeppelin) are out of scope. See
docs/static-analysis.md; tests/test_static_analysis.py holds contracts/ to it.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crytic_compile import CryticCompile
from crytic_compile.compilation_unit import CompilationUnit
from crytic_compile.compiler.compiler import CompilerVersion
from crytic_compile.platform.solc_standard_json import SolcStandardJson, parse_standard_json_output
from slither import Slither
from slither.detectors import all_detectors
from slither.detectors.abstract_detector import AbstractDetector

from backend.chain.compiler import compile_input, standard_json_input
from backend.chain.solc import find_solc, solc_version
from backend.paths import CONTRACTS_DIR

# What Slither and crytic-compile read: the unit ASTs, and per contract the ABI, bytecodes and
# their source maps (parse_standard_json_output indexes all of these), plus NatSpec.
_ANALYSIS_OUTPUTS = [
    "abi",
    "evm.bytecode.object",
    "evm.bytecode.sourceMap",
    "evm.deployedBytecode.object",
    "evm.deployedBytecode.sourceMap",
    "userdoc",
    "devdoc",
]

IMPACTS = ("High", "Medium", "Low", "Informational", "Optimization")


@dataclass(frozen=True)
class Finding:
    detector: str  # Slither's detector argument, e.g. "reentrancy-events"
    impact: str  # High, Medium, Low, Informational or Optimization
    confidence: str  # High, Medium or Low
    file: str  # e.g. "contracts/Financing.sol"
    lines: tuple[int, ...]
    contract: str | None  # the contract of the located element, if any
    function: str | None  # e.g. "repay(uint256,uint64)", when that element is in a function
    description: str

    @property
    def location(self) -> str:
        """`Contract.function(sig)`, or `Contract`, or the file: how docs/static-analysis.md names it."""
        if self.contract and self.function:
            return f"{self.contract}.{self.function}"
        return self.contract or self.file


def analysis_input(contracts_dir: Path = CONTRACTS_DIR) -> dict[str, Any]:
    """The build's standard-JSON input with the output Slither needs selected for every unit."""
    compiler_input = copy.deepcopy(standard_json_input(contracts_dir))
    compiler_input["settings"]["outputSelection"] = {"*": {"*": _ANALYSIS_OUTPUTS, "": ["ast"]}}
    return compiler_input


def run_slither(contracts_dir: Path = CONTRACTS_DIR) -> list[Finding]:
    """Run every Slither detector; return the findings that touch `contracts_dir`, sorted.

    A finding is in scope when any of its elements lies in `contracts_dir`; it is located at
    the first such element. Findings entirely inside OpenZeppelin are dropped.
    """
    contracts_dir = contracts_dir.resolve()
    project_root = contracts_dir.parent
    solc, _ = find_solc()
    platform = _BuildInput(analysis_input(contracts_dir), solc)
    slither = Slither(CryticCompile(platform, cwd=str(project_root)))
    for detector in all_detector_classes():
        slither.register_detector(detector)
    findings = set()
    for per_detector in slither.run_detectors():
        for result in per_detector:
            finding = _finding(result, project_root, f"{contracts_dir.name}/")
            if finding is not None:
                findings.add(finding)
    return sorted(findings, key=lambda f: (IMPACTS.index(f.impact), f.detector, f.file, f.lines, f.description))


def all_detector_classes() -> list[type[AbstractDetector]]:
    """Every detector Slither ships (what `slither .` runs by default)."""
    return [
        d for d in vars(all_detectors).values()
        if isinstance(d, type) and issubclass(d, AbstractDetector) and d is not AbstractDetector
    ]


def _finding(result: dict[str, Any], project_root: Path, prefix: str) -> Finding | None:
    for element in result.get("elements") or []:
        mapping = element.get("source_mapping") or {}
        file = _project_path(mapping, project_root)
        if file is None or not file.startswith(prefix):
            continue
        contract, function = _owner(element)
        return Finding(
            detector=result["check"],
            impact=result["impact"],
            confidence=result["confidence"],
            file=file,
            lines=tuple(mapping.get("lines") or ()),
            contract=contract,
            function=function,
            description=result["description"].strip(),
        )
    return None


def _project_path(mapping: dict[str, Any], project_root: Path) -> str | None:
    absolute = mapping.get("filename_absolute")
    if not absolute:
        return None
    try:
        return Path(absolute).resolve().relative_to(project_root).as_posix()
    except ValueError:
        return None  # outside the project


def _owner(element: dict[str, Any]) -> tuple[str | None, str | None]:
    """The contract and function an element of a Slither result belongs to."""
    kind = element.get("type")
    name = element.get("name")
    parent = (element.get("type_specific_fields") or {}).get("parent") or {}
    if kind == "contract":
        return name, None
    if kind == "function":
        contract = (parent.get("name") if parent.get("type") == "contract" else None)
        signature = (element.get("type_specific_fields") or {}).get("signature") or name
        return contract, signature
    if parent:
        contract, function = _owner(parent)
        if parent.get("type") == "contract":
            return contract, None
        return contract, function
    return None, None


class _BuildInput(SolcStandardJson):
    """crytic-compile's standard-JSON platform, compiling as the build does.

    The prepared input goes in as the platform's target; `compile` replaces only the step that
    runs solc (see the module docstring) and keeps the platform's output parsing.
    """

    def __init__(self, compiler_input: dict[str, Any], solc: Path) -> None:
        super().__init__(compiler_input)
        self._solc = solc
        # crytic-compile names the platform by str(target): the whole JSON. Keep it short.
        self._target = "anchorline-standard-json"

    def compile(self, crytic_compile: Any, **kwargs: Any) -> None:
        compiler_input = self.to_dict()
        optimizer = compiler_input["settings"].get("optimizer", {})
        unit = CompilationUnit(crytic_compile, "standard_json")
        unit.compiler_version = CompilerVersion(
            compiler="solc",
            version=solc_version(self._solc).split("+")[0],
            optimized=bool(optimizer.get("enabled")),
            optimize_runs=optimizer.get("runs"),
            via_ir=bool(compiler_input["settings"].get("viaIR", False)),
        )
        output, _ = compile_input(compiler_input, self._solc)  # the build reports the warnings
        sources = {name: source["content"] for name, source in compiler_input["sources"].items()}
        parse_standard_json_output(output, unit, solc_working_dir=str(crytic_compile.working_dir))
        # Slither reads source text through crytic-compile; give it the text that was compiled.
        crytic_compile.src_content = {
            str(filename.absolute): sources[filename.used]
            for filename in unit.filenames if filename.used in sources
        }
