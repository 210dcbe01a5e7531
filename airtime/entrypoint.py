"""`python -m steps.<step>`: the container entry point of one pipeline step.

Parses the settings and arguments, wires the dependencies, runs the step and exits with
the error's exit code, which is what Argo's retryStrategy looks at."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from pathlib import Path

from airtime import faults, logs
from airtime.errors import AirtimeError
from airtime.settings import Settings

log = logging.getLogger("airtime.step")


def parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def step_main(step: str, argv: list[str] | None = None) -> int:
    from airtime import pipeline

    parser = argparse.ArgumentParser(prog=f"python -m steps.{step}", description=f"airtime {step} step")
    parser.add_argument("--date", type=parse_date, help="run date (default: today in the business timezone)")
    parser.add_argument("--source", help="source folder or gs:// prefix of the day's files")
    parser.add_argument("--emit", type=Path, help="write the step's manifest URI to this file (Argo output)")
    args = parser.parse_args(argv)
    settings = Settings()
    logs.configure(settings.log_format, settings.log_level)
    faults.arm(settings.crash_at, settings.crash_once)
    run_date = args.date or pipeline.today(settings)
    extra = {"run_date": run_date.isoformat(), "step": step}
    try:
        ctx = pipeline.make_context(settings, run_date, args.source)
        result = pipeline.run_step(ctx, step)
    except AirtimeError as exc:
        log.error("%s failed: %s", step, exc, extra=extra)
        return exc.exit_code
    if args.emit:
        args.emit.parent.mkdir(parents=True, exist_ok=True)
        args.emit.write_text(result.manifest_uri)
    log.info("%s %s in %.1fs: %s", step, "skipped (already done)" if result.skipped else "done",
             result.seconds, result.manifest_uri, extra=extra)
    return 0


def run(step: str) -> None:
    sys.exit(step_main(step))
