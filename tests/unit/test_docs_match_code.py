"""The DAG as the docs draw it is the DAG of steps/dag.py: every chain of step names joined by
arrows (`a -> b`, `a --> b`) in the README, docs/ and the modules that describe it names
the steps in steps/dag.py's order, all of them, `catchup` first where it is drawn."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from steps.dag import STEPS

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
