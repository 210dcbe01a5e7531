"""Ctrl-C (SIGINT) in any step of `airtime run`, and in a step's own entry point: exit 130
within seconds and one line on stderr saying where it stopped and which command resumes;
never a traceback, never a hang; and the command it names then finishes the day.

Issue 19 found, on a generated ~1M-row day: a hang for good at 25% (the ingest's typing
threads waiting on a module lock that the interrupt left held), and a traceback with exit 1
at 45% and 60% (DuckDB turns the KeyboardInterrupt into RuntimeError('Query interrupted')).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from airtime import interrupts, sample
from tests.pipeline_helpers import ROOT, make_source

ROWS = 1_000_000  # steps long enough to be caught in the middle (ingest ~1 s, load ~0.5 s)
DAY = sample.run_date_for(sample.DEFAULT_END_DATE).isoformat()
# the interrupted process may use its whole grace period; more than that is a hang
EXIT_WITHIN = interrupts.GRACE_SECONDS + 15
LINE = re.compile(r"interrupted during (\w+) of (\S+) \(an unfinished step keeps nothing\); `(.+)` resumes")


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_source(tmp_path_factory.mktemp("interrupt-source"), rows=ROWS)


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRTIME_")}
    # a progress line (or heartbeat log line) every 50 ms tells the test which step runs
    return env | {"AIRTIME_HOME": str(home), "PYTHONPATH": str(ROOT), "AIRTIME_HEARTBEAT_SECONDS": "0.05"}


def _default_sigint() -> None:
    # a job started in the background by a non-interactive shell inherits SIGINT ignored
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt_during(args: list[str], marker: str, home: Path, *, on_stderr: bool = False
                     ) -> tuple[int, list[str]]:
    """Run `python -m <args>`, send SIGINT when a line containing `marker` shows up (on stdout,
    or stderr for a step's heartbeat logs); the exit code and the stderr lines."""
    proc = subprocess.Popen([sys.executable, "-m", *args], env=_env(home), cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_default_sigint)
    watched = proc.stderr if on_stderr else proc.stdout
    seen = []
    for line in watched:
        seen.append(line)
        if marker in line:
            proc.send_signal(signal.SIGINT)
            break
    else:
        proc.wait(timeout=EXIT_WITHIN)
        pytest.fail(f"never saw {marker!r} (exit {proc.returncode}):\n{''.join(seen)}{proc.stderr.read()}")
    try:
        _, err = proc.communicate(timeout=EXIT_WITHIN)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"still running {EXIT_WITHIN}s after Ctrl-C during {marker!r}")
    if on_stderr:
        err = "".join(seen) + err
    return proc.returncode, err.splitlines()


def _as_module(command: str) -> list[str]:
    """`airtime ...` as `python -m cli ...` (the test does not rely on the installed script)."""
    words = shlex.split(command)
    assert words[0] == "airtime", command
    return ["cli", *words[1:]]


def test_ctrl_c_in_each_step_exits_130_with_one_line_and_the_named_command_resumes(source: Path,
                                                                                  tmp_path: Path) -> None:
    command = ["cli", "run", "--date", DAY, "--source", str(source)]
    for step in ("ingest", "preprocess", "load"):
        code, err = interrupt_during(command, f"… {step}:", tmp_path)
        assert code == interrupts.EXIT_CODE, "\n".join(err)
        assert len(err) == 1 and "Traceback" not in err[0], "\n".join(err)
        found = LINE.fullmatch(err[0])
        assert found and found.group(1, 2) == (step, DAY), err[0]
        command = _as_module(found[3])
        assert command == ["cli", "run", "--date", DAY, "--source", str(source)]
    done = subprocess.run([sys.executable, "-m", *command], env=_env(tmp_path), cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"run {DAY}: published" in done.stdout, done.stdout


def test_ctrl_c_in_a_step_entry_point_exits_130_naming_the_command_to_run_again(source: Path,
                                                                               tmp_path: Path) -> None:
    args = ["steps.ingest", "--date", DAY, "--source", str(source)]
    code, err = interrupt_during(args, "ingest still running", tmp_path, on_stderr=True)
    assert code == interrupts.EXIT_CODE, "\n".join(err)
    assert not any("Traceback" in line for line in err), "\n".join(err)
    found = LINE.fullmatch(err[-1])
    assert found and found.group(1, 2) == ("ingest", DAY), err[-1]
    assert shlex.split(found[3]) == ["python", "-m", *args]
