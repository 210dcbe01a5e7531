"""The Ctrl-C contract of every entry point (airtime/interrupts.py), on a body that stands in
for the worst case: one that swallows the KeyboardInterrupt and goes on, as a thread stuck
on an import lock or a library catching it would. The real pipeline is interrupted in
tests/integration/test_interrupt.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from airtime import interrupts

ROOT = Path(__file__).resolve().parents[2]
STUCK = """
import argparse, sys, time
from airtime import entrypoint, interrupts
interrupts.GRACE_SECONDS = float(sys.argv[1])

def body(settings, args):
    said = False
    while True:
        try:
            if not said:  # inside the try: a Ctrl-C right after it is swallowed too
                said = True
                print("working", flush=True)
            time.sleep(60)
        except KeyboardInterrupt:
            print("swallowed", flush=True)

sys.exit(entrypoint.run(argparse.ArgumentParser(prog="stuck"), body, []))
"""


def _start_stuck(grace: float, home: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRTIME_")}
    env |= {"AIRTIME_HOME": str(home), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", STUCK, str(grace)], env=env, cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stdout is not None and proc.stdout.readline() == "working\n"
    return proc


def test_a_process_that_does_not_stop_on_ctrl_c_still_exits_130_after_the_grace_period(tmp_path: Path) -> None:
    proc = _start_stuck(0.5, tmp_path)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == interrupts.EXIT_CODE, err
    assert "swallowed" in out and time.monotonic() - started < 20
    assert err.splitlines() == ["interrupted; `stuck` resumes"]


def test_a_second_ctrl_c_exits_at_once(tmp_path: Path) -> None:
    proc = _start_stuck(600, tmp_path)
    proc.send_signal(signal.SIGINT)
    assert proc.stdout is not None and proc.stdout.readline() == "swallowed\n"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == interrupts.EXIT_CODE, err
    assert err.splitlines() == ["interrupted; `stuck` resumes"]


def test_an_interrupt_a_library_turned_into_another_error_is_still_an_interrupt() -> None:
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise RuntimeError("Query interrupted") from None  # DuckDB's; the context stays
    except RuntimeError as exc:
        assert interrupts.noted(exc) == interrupts.Interrupt()
    assert interrupts.noted(ValueError("a bug")) is None


@pytest.mark.parametrize("stopped, line", [
    (interrupts.Interrupt("load", "2020-07-22"),
     "interrupted during load of 2020-07-22 (an unfinished step keeps nothing); `airtime run` resumes"),
    (interrupts.Interrupt(None, "2020-07-22"),
     "interrupted while running 2020-07-22 (an unfinished step keeps nothing); `airtime run` resumes"),
    (interrupts.Interrupt(), "interrupted; `airtime run` resumes"),
])
def test_the_line_says_the_step_and_date_it_stopped_in(stopped: interrupts.Interrupt, line: str) -> None:
    assert stopped.line("airtime run") == line
    assert interrupts.Interrupt().line(None) == "interrupted"
