"""`python -m steps.<step>`: the container entry point of one pipeline step.

Parses the arguments and settings (airtime/entrypoint.py), wires the context, runs the
step through the scaffold and exits with the error's exit code, which is what Argo's
retryStrategy looks at. Every log line carries the run date and the step.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from airtime import entrypoint, logs
from airtime.progress import heartbeat
from airtime.schedule import today
from airtime.settings import Settings
from steps.scaffold import Step, make_context, run_step

log = logging.getLogger("airtime.step")


def step_main(step: Step[Any], argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m steps.{step.name}", description=f"airtime {step.name} step")
    parser.add_argument("--date", type=entrypoint.parse_date,
                        help="run date (default: today in the business timezone)")
    parser.add_argument("--source", help="source folder, gs:// or s3:// prefix of the day's files")
    parser.add_argument("--emit", type=Path, help="write the step's manifest URI to this file (Argo output)")

    def body(settings: Settings, args: argparse.Namespace) -> int:
        run_date = args.date or today(settings.timezone)
        logs.bind(run_date=run_date.isoformat(), step=step.name)
        ctx = make_context(settings, run_date, args.source)
        with heartbeat(ctx.progress, log, step.name, settings.heartbeat_seconds):  # a pod's log hears from a long step
            result = run_step(step, ctx)
        if args.emit:
            args.emit.parent.mkdir(parents=True, exist_ok=True)
            args.emit.write_text(result.manifest_uri)
        log.info("%s %s in %.1fs: %s", step.name, "skipped (already done)" if result.skipped else "done",
                 result.seconds, result.manifest_uri)
        return 0

    def report(exc: Exception) -> None:
        log.error("%s failed: %s", step.name, exc)

    return entrypoint.run(parser, body, argv, report=report)
