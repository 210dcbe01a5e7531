"""The command line imports only what a command uses (issue 25): `--help` and a usage error
import nothing heavy, and the commands that read locally never load the query server or gRPC.

Light: `airtime --help`, every command's `--help`, a usage error. They must import neither
the gRPC server, grpc, aiohttp, pyarrow, DuckDB nor pydantic: only the parser runs.
Local reads: `runs` and `query period|program|codes` without --server. They read the DuckDB
warehouse through Arrow, so pyarrow is theirs; never the server, grpc or aiohttp, and in
their own process never pandas (DuckDB imports it, where installed, on a query's first bound
parameter; interrupts.UNUSED hides it).

Each command runs in its own interpreter, which writes the modules it holds at exit; what a
command imports is asserted, never how long it takes."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli.main import COMMANDS, build_parser

ROOT = Path(__file__).resolve().parents[2]
PROBE = ("import atexit, json, os, sys\n"
         "atexit.register(lambda: open(os.environ['MODULES_OUT'], 'w').write(json.dumps(sorted(sys.modules))))\n"
         "from cli.main import main\n"
         "sys.exit(main(sys.argv[1:]))\n")
SERVER = ("grpc_server.server", "grpc_server.http", "grpc_server.servicer", "grpc_server.client", "grpc", "aiohttp")
HEAVY = (*SERVER, "pyarrow", "duckdb", "numpy", "pandas", "pydantic", "rich", "steps")


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and sub-command of the parser (`query`, `query period`, ...)."""
    found = [path] if path else []
    for action in parser._actions:  # noqa: SLF001
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for name, child in action.choices.items():
                found += _commands(child, (*path, name))
    return found


def imported(tmp_path: Path, *args: str) -> tuple[int, set[str]]:
    """The exit code of `airtime ARGS` and the modules its process held at exit."""
    out = tmp_path / "modules.json"
    env = {**os.environ, "MODULES_OUT": str(out), "AIRTIME_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    return done.returncode, set(json.loads(out.read_text()))


def loaded(modules: set[str], roots: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if m in roots or m.startswith(tuple(r + "." for r in roots)))


@pytest.mark.parametrize("words", [(), *_commands(build_parser())], ids=lambda w: " ".join(w) or "airtime")
def test_help_imports_nothing_heavy(tmp_path: Path, words: tuple[str, ...]) -> None:
    code, modules = imported(tmp_path, *words, "--help")
    assert code == 0
    assert loaded(modules, HEAVY) == []


def test_a_usage_error_imports_nothing_heavy(tmp_path: Path) -> None:
    code, modules = imported(tmp_path, "query", "program")  # --program is required
    assert code == 2
    assert loaded(modules, HEAVY) == []


@pytest.mark.parametrize(("words", "exit_code"), [
    (("runs",), 0),
    # an empty home: nothing published (exit 6), after every module of the command is imported
    (("query", "program", "--program", "KVOB"), 6),
    (("query", "period", "--start", "2026-12-01", "--end", "2026-12-07"), 6),
    (("query", "codes"), 6),
], ids=lambda w: " ".join(w) if isinstance(w, tuple) else str(w))
def test_a_local_read_never_loads_the_server_grpc_or_aiohttp(tmp_path: Path, words: tuple[str, ...],
                                                             exit_code: int) -> None:
    code, modules = imported(tmp_path, *words)
    assert code == exit_code
    assert loaded(modules, SERVER) == []


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_names_a_function_that_exists(command: str) -> None:
    module, function = COMMANDS[command].split(":")
    assert callable(getattr(importlib.import_module(module), function))


def test_every_command_of_the_parser_has_a_function() -> None:
    assert {words[0] for words in _commands(build_parser())} == set(COMMANDS)


def test_a_local_query_of_a_published_day_never_imports_pandas(tmp_path: Path) -> None:
    """DuckDB imports pandas, where installed, to bind a query's first parameter (~0.3 s);
    a command in its own process hides it (interrupts.UNUSED), reads included."""
    pytest.importorskip("pandas", reason="pandas is not installed: nothing to hide")
    env = {**os.environ, "AIRTIME_HOME": str(tmp_path / "home"), "AIRTIME_PROFILE": "local", "PYTHONPATH": str(ROOT)}
    assert subprocess.run([sys.executable, "-m", "cli", "run"], cwd=ROOT, env=env, capture_output=True,
                          timeout=120).returncode == 0
    out = tmp_path / "modules.json"
    own_process = PROBE.replace("sys.exit(main(sys.argv[1:]))", "sys.argv[0] = 'airtime'\nsys.exit(main())")
    done = subprocess.run([sys.executable, "-c", own_process, "query", "program", "--program", "KVOB",
                           "--format", "json"], cwd=ROOT, env={**env, "MODULES_OUT": str(out)},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)  # it answered, from a bound query
    modules = set(json.loads(out.read_text()))
    assert "duckdb" in modules and loaded(modules, ("pandas",)) == []
