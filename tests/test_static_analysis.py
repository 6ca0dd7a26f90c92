"""Slither over contracts/: no High or Medium finding, every Low one accepted in the docs.

See docs/static-analysis.md for the scope and the accepted Low findings. Slither runs once for
the module (about 20 s, most of it solcjs compiling OpenZeppelin); the whole file takes about 30 s.
"""
from __future__ import annotations

import re

import pytest

from backend.chain.analysis import Finding, all_detector_classes, analysis_input, run_slither
from backend.chain.compiler import CompilationError, standard_json_input
from backend.paths import PROJECT_ROOT

DOC = PROJECT_ROOT / "docs" / "static-analysis.md"
_ROW = re.compile(r"^\|\s*`([\w-]+)`\s*\|\s*`([^`]+)`\s*\|", re.M)


@pytest.fixture(scope="module")
def findings() -> list[Finding]:
    return run_slither()


def accepted_lows() -> set[tuple[str, str]]:
    """(detector, location) pairs from the "Accepted Low findings" table of the docs."""
    text = DOC.read_text(encoding="utf-8")
    section = re.search(r"^## Accepted Low findings\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert section, f"{DOC} has no '## Accepted Low findings' section"
    return set(_ROW.findall(section[1]))


def _listing(findings: list[Finding]) -> str:
    return "\n".join(f"- {f.impact} `{f.detector}` `{f.location}`: {f.description}" for f in findings)


def test_analysis_compiles_the_build_input_with_ast_output():
    build, analysis = standard_json_input(), analysis_input()
    assert analysis["sources"] == build["sources"]
    assert {k: v for k, v in analysis["settings"].items() if k != "outputSelection"} == {
        k: v for k, v in build["settings"].items() if k != "outputSelection"
    }
    assert analysis["settings"]["outputSelection"]["*"][""] == ["ast"]
    assert "ast" not in str(standard_json_input()["settings"]["outputSelection"])  # the build is untouched


def test_every_detector_runs():
    # Slither 0.11.6 ships about a hundred; a broken import would quietly shrink the list.
    assert len(all_detector_classes()) >= 90


BAD_SOL = """\
// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

contract Bad {
    function kill() external {
        selfdestruct(payable(msg.sender));
    }

    function sum(uint256[] calldata xs) external pure returns (uint256) {
        uint256 total;
        for (uint256 i; i < xs.length; ++i) total += xs[i];
        return total;
    }
}
"""


@pytest.mark.slow
def test_findings_are_reported_and_located(tmp_path):
    """The gate is not vacuous: a known-bad contract yields High and Medium findings, located."""
    (tmp_path / "contracts").mkdir()
    (tmp_path / "contracts" / "Bad.sol").write_text(BAD_SOL)
    found = {(f.impact, f.detector, f.location, f.file) for f in run_slither(tmp_path / "contracts")}
    assert ("High", "suicidal", "Bad.kill()", "contracts/Bad.sol") in found
    assert ("Medium", "uninitialized-local", "Bad.sum(uint256[])", "contracts/Bad.sol") in found


def test_compile_errors_are_reported_as_the_build_reports_them(tmp_path):
    """The analysis compiles through compiler.compile_input: same errors, same locations."""
    (tmp_path / "contracts").mkdir()
    (tmp_path / "contracts" / "Broken.sol").write_text(BAD_SOL.replace("uint256 total;", "uint256 total = ;"))
    with pytest.raises(CompilationError) as raised:
        run_slither(tmp_path / "contracts")
    assert raised.value.lines == ["contracts/Broken.sol:10:25: ParserError: Expected primary expression."]


@pytest.mark.slow
def test_findings_lie_in_contracts(findings):
    assert findings, "Slither reported nothing in contracts/: the Low findings accepted in the docs are gone too"
    assert all(f.file.startswith("contracts/") for f in findings)


@pytest.mark.slow
def test_no_high_or_medium_finding_in_contracts(findings):
    serious = [f for f in findings if f.impact in ("High", "Medium")]
    assert not serious, (
        "Slither reports High/Medium findings in contracts/ (fix them; see docs/static-analysis.md):\n"
        + _listing(serious)
    )


@pytest.mark.slow
def test_every_low_finding_is_accepted_in_the_docs(findings):
    accepted = accepted_lows()
    unlisted = [f for f in findings if f.impact == "Low" and (f.detector, f.location) not in accepted]
    assert not unlisted, (
        f"Low findings not listed under 'Accepted Low findings' in {DOC.relative_to(PROJECT_ROOT)} "
        "(fix them, or add a row with the reason they are acceptable):\n" + _listing(unlisted)
    )


@pytest.mark.slow
def test_no_stale_accepted_low(findings):
    reported = {(f.detector, f.location) for f in findings if f.impact == "Low"}
    stale = sorted(accepted_lows() - reported)
    assert not stale, (
        f"{DOC.relative_to(PROJECT_ROOT)} accepts Low findings Slither no longer reports; delete their rows: {stale}"
    )
