"""What the docs say of the pipeline is what the code declares. The DAG: every chain of step
names joined by arrows (`a -> b`, `a --> b`) in the README, docs/ and the modules that describe
it names the steps in steps/dag.py's order, all of them, `catchup` first where it is drawn. The
retry rule: the exit codes the docs call not retried are airtime/errors.py's."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from airtime.errors import NOT_RETRIED_EXIT_CODES
from cli.main import build_parser
from steps.dag import STEPS
from workflows.daily import RETRY_EXPRESSION

ROOT = Path(__file__).resolve().parents[2]
NAMES = [step.name for step in STEPS]
KNOWN = {"catchup", *NAMES}
FILES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), ROOT / "workflows" / "daily.py",
                ROOT / "steps" / "dag.py"])
CHAIN = re.compile(r"[\w()+'.]+(?:\s*-{1,2}>\s*[\w()+'.]+)+")
ARROW = re.compile(r"\s*-{1,2}>\s*")


def drawn_chains(text: str) -> list[list[str]]:
    """The step names of each arrow chain that joins at least two of them."""
    chains = []
    for match in CHAIN.finditer(text):
        names = [token for token in ARROW.split(match.group()) if token in KNOWN]
        if len(names) >= 2:
            chains.append(names)
    return chains


def test_a_chain_is_read_from_its_arrows() -> None:
    assert drawn_chains("the day's CSVs --> ingest --> gate (+x) --> ledger") == [["ingest", "gate"]]
    assert drawn_chains("`catchup -> ingest -> verify` and values -> settings") == [["catchup", "ingest", "verify"]]


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_dag_drawn_in_the_docs_is_the_dag_of_steps_dag(path: Path) -> None:
    for names in drawn_chains(path.read_text(encoding="utf-8")):
        assert names in (NAMES, ["catchup", *NAMES]), f"{path.relative_to(ROOT)} draws {' -> '.join(names)}"


def test_the_docs_draw_the_dag_somewhere() -> None:
    drawn = [path for path in FILES if drawn_chains(path.read_text(encoding="utf-8"))]
    assert {p.name for p in drawn} >= {"README.md", "deploy.md", "operations-argo.md", "daily.py", "dag.py"}


def test_the_docs_name_every_exit_code_the_retry_rule_refuses() -> None:
    rule = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    sentence = re.search(r"for every exit except (.+?), which retrying cannot fix", rule, re.S).group(1)
    assert sorted(int(n) for n in re.findall(r"\b(\d+) \(", sentence)) == sorted(NOT_RETRIED_EXIT_CODES)
    table = (ROOT / "docs" / "operations-argo.md").read_text(encoding="utf-8")
    refused = [cell for cell, retried in re.findall(r"^\| ([\d, ]+) \|.*\| (yes|no) \|$", table, re.M) if retried == "no"]
    assert sorted(int(n) for cell in refused for n in cell.split(",")) == sorted(NOT_RETRIED_EXIT_CODES)
    quoted = re.search(r"The rule is `(.+?)`", table).group(1)
    assert quoted.replace(" ", "") == RETRY_EXPRESSION.replace(" ", "")


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], set[str]]:
    """Each command of the CLI (`query period`...) and its long options."""
    found: dict[tuple[str, ...], set[str]] = {}
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]  # noqa: SLF001
    for action in subparsers:
        for name, child in action.choices.items():
            found |= _commands(child, (*path, name))
    if not subparsers:
        found[path] = {o for a in parser._actions for o in a.option_strings if o.startswith("--") and o != "--help"}  # noqa: SLF001
    return found


def test_the_readme_lists_every_command_and_option_of_the_cli() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Command line\n\n```\n(.*?)```", readme, re.S).group(1)
    for command, options in _commands(build_parser()).items():
        # `airtime workflows render [--out DIR] | apply`: a last word may share its parent's line
        lines = [x + " " for x in block.splitlines()]
        listed = any(x.startswith(f"airtime {' '.join(command)} ") for x in lines) or len(command) > 1 and any(
            x.startswith(f"airtime {' '.join(command[:-1])} ") and f"| {command[-1]} " in x for x in lines)
        assert listed, f"airtime {' '.join(command)} not in README.md's command list"
        missing = sorted(o for o in options if not re.search(re.escape(o) + r"\b", block))
        assert not missing, f"airtime {' '.join(command)}: {missing} not in README.md's command list"
