"""The README's examples work in the order written, in a fresh clone's folder: `make run`
(the Makefile's own recipe), then each line of the README's block on the real files.

Issue 19: after `make run` the README's real-file query exited 7, because the sample's run
of 2026-11-30 stayed the latest published run of the shared state folder."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.pipeline_helpers import ROOT

MARKER = "<!-- tests/integration/test_readme.py runs these lines"


def readme_lines() -> list[str]:
    """The lines of the README's code block after the marker."""
    after = (ROOT / "README.md").read_text().split(MARKER, 1)[1]
    block = re.search(r"```\n(.*?)```", after, re.S)
    assert block, "no code block after the marker"
    return block[1].strip().splitlines()


def make_run_lines() -> list[str]:
    """The recipe of the Makefile's `run` target, `$(BIN)` as the venv's bin folder."""
    recipe = re.search(r"^run: .*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.M)
    assert recipe, "no run target in the Makefile"
    return [line.strip().replace("$(BIN)", ".venv/bin") for line in recipe[1].splitlines()]


def test_the_readme_lines_on_the_real_files_work_after_make_run(tmp_path: Path, shared_data: Path) -> None:
    # the clone's .venv/bin/airtime runs this checkout
    venv_bin = tmp_path / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "airtime").write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m cli "$@"\n')
    (venv_bin / "airtime").chmod(0o755)

    lines = readme_lines()
    assert lines[0].startswith("DATA=") and "$DATA" in lines[1], lines
    lines[0] = f"DATA={shlex.quote(str(shared_data))}"  # where the real files are here
    script = "\n".join(f"{line} || {{ echo {shlex.quote(f'FAILED: {line}')} >&2; exit 1; }}"
                       for line in [*make_run_lines(), *lines])
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRTIME_")} | {"PYTHONPATH": str(ROOT)}
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert '"HUCK"' in done.stdout.splitlines()[-1], done.stdout[-2000:]
