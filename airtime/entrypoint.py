"""The one entry-point wrapper of every airtime process: each step, catch-up, notify,
the query server and the command line.

It parses the arguments and the settings (a bad setting is one line and exit 2, never a
traceback), sets up logging and the crash drills, runs the body and turns an
AirtimeError into its exit code: the contract Argo's retryStrategy reads
(airtime/errors.py). A Ctrl-C is exit 130 and one line saying where it stopped, whatever
a library made of it (airtime/interrupts.py). Anything else is a bug: its traceback is
printed and the exit is 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import shlex
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from airtime import faults, interrupts, logs
from airtime.errors import AirtimeError, ConfigError

if TYPE_CHECKING:
    from pydantic import ValidationError

    from airtime.settings import Settings

log = logging.getLogger("airtime")

Body = Callable[["Settings", argparse.Namespace], int]
Report = Callable[[AirtimeError], None]
# the command that resumes the work a Ctrl-C stopped (None: say nothing about resuming)
Resume = Callable[[argparse.Namespace, interrupts.Interrupt], str | None]


def parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def settings_error(exc: ValidationError) -> ConfigError:
    """One line naming each bad AIRTIME_* variable, its value and the rule it breaks."""
    parts = []
    for error in exc.errors():
        name = "AIRTIME_" + "_".join(str(p) for p in error["loc"]).upper()
        parts.append(f"{name}={error.get('input')!r}: {error['msg']}")
    return ConfigError("bad settings: " + "; ".join(parts))


def load_settings() -> Settings:
    # pydantic is imported here, once the arguments are parsed, not with this module: the
    # command line's `--help` and usage errors then never pay its ~0.1 s (issue 25)
    from pydantic import ValidationError

    from airtime.settings import Settings

    try:
        return Settings()
    except ValidationError as exc:
        raise settings_error(exc) from None


def log_error(exc: AirtimeError) -> None:
    log.error("%s", exc)


def run(parser: argparse.ArgumentParser, body: Body, argv: list[str] | None = None, *,
        log_format: str | None = None, quiet: Callable[[argparse.Namespace], bool] | None = None,
        report: Report = log_error, resume: Resume | None = None,
        preload: Callable[[argparse.Namespace], bool] | None = None) -> int:
    """Parse, configure, run `body`; the process's exit code. `log_format` forces a format
    (notify always writes JSON); `quiet(args)` shows only warnings on a text terminal (the
    CLI prints its own progress); `resume` names the command that resumes after a Ctrl-C
    (default: the same command line again); `preload(args)` says whether the body runs
    work that imports lazily on worker threads (default: yes; see interrupts.preload). In a
    command's own process (`argv` from its command line), the modules airtime never uses
    are hidden (interrupts.UNUSED), whatever the command."""
    args = parser.parse_args(argv)  # argparse itself exits 2 with usage on bad arguments
    try:
        settings = load_settings()
    except ConfigError as exc:
        sys.stderr.write(f"{parser.prog}: {exc}\n")
        return exc.exit_code
    fmt = log_format or settings.log_format
    logs.configure(fmt, "WARNING" if quiet and quiet(args) and fmt == "text" else settings.log_level)
    faults.arm(settings.crash_at, settings.crash_once)

    def resume_hint(stopped: interrupts.Interrupt) -> str | None:
        return resume(args, stopped) if resume else _same_command(parser, argv)

    with interrupts.handled(resume_hint):
        try:
            interrupts.preload(hide_unused=argv is None, lazy=preload is None or preload(args))
            return body(settings, args)
        except BaseException as exc:
            stopped = interrupts.noted(exc)
            if stopped is not None:
                return interrupts.say(stopped)
            if isinstance(exc, AirtimeError):
                report(exc)
                return exc.exit_code
            raise


def _same_command(parser: argparse.ArgumentParser, argv: list[str] | None) -> str:
    return shlex.join([*parser.prog.split(), *(sys.argv[1:] if argv is None else argv)])

