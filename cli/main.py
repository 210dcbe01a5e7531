"""`airtime`: the command line of the pipeline and the query service.

Exit codes say what failed: 0 ok, 1 unexpected, 2 usage/settings, 3 bad input,
4 verification, 5 storage/warehouse (transient), 6 nothing published, 7 unknown program,
130 interrupted (Ctrl-C; the line on stderr says where, and which command resumes).
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from airtime import entrypoint, interrupts
from airtime.entrypoint import parse_date
from airtime.errors import AirtimeError, ConfigError

if TYPE_CHECKING:
    from airtime.settings import Settings

# The parser imports nothing heavy and each command's module is imported only when that
# command runs: `airtime --help` and a local query would otherwise pay for the gRPC server,
# aiohttp, the pipeline's steps and pyarrow (0.8 s of imports, issue 25).
# tests/unit/test_cli_imports.py checks that the light commands stay light.
COMMANDS = {
    "run": "cli.pipeline:cmd_run",
    "backfill": "cli.pipeline:cmd_backfill",
    "runs": "cli.queries:cmd_runs",
    "verify": "cli.pipeline:cmd_verify",
    "accept": "cli.pipeline:cmd_accept",
    "prune": "cli.pipeline:cmd_prune",
    "query": "cli.queries:cmd_query",
    "sample-data": "cli.pipeline:cmd_sample",
    "serve": "cli.serving:cmd_serve",
    "workflows": "cli.main:cmd_workflows",
}
# the commands that only read: they start no worker threads that import lazily mid-step, so
# they skip interrupts.preload's imports; like every command in its own process they never
# import pandas (DuckDB would, binding a query's first parameter where the bench extra
# installs it: ~0.3 s of a local query; interrupts.UNUSED)
READS = {"runs", "query", "workflows"}
# here, not imported with cli/output: the parser's choices must not import rich and pyarrow
FORMATS = ("table", "json", "jsonl", "csv")


def _positive(text: str) -> int:
    value = _count(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"not a count (0 or more): {text!r}")
    return value


def _add_query_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--signal", help="only this signal (e.g. SP1)")
    parser.add_argument("--format", choices=FORMATS, default="table")
    parser.add_argument("--limit", type=int, help="print at most this many rows")
    parser.add_argument("--server", metavar="HOST:PORT", help="ask a running `airtime serve` instead of the warehouse")
    token = parser.add_mutually_exclusive_group()
    token.add_argument("--token", help="bearer token for --server. Every local user can read a command line"
                                       " (ps, /proc): prefer --token-file or AIRTIME_QUERY_TOKEN")
    token.add_argument("--token-file", type=Path, metavar="PATH",
                       help="read the bearer token for --server from this file (its first line that is not"
                            " blank or a # comment; default: AIRTIME_QUERY_TOKEN, AIRTIME_QUERY_TOKEN_FILE,"
                            " then the first of AIRTIME_TOKENS)")
    parser.add_argument("--tls", action="store_true", help="use TLS with --server")
    parser.add_argument("--run", type=parse_date, metavar="YYYY-MM-DD",
                        help="read this published run (default: the latest); see `airtime runs`")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="airtime", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run (or resume) the daily job for one date")
    run.add_argument("--date", type=parse_date, help="run date (default: today in America/Sao_Paulo)")
    run.add_argument("--source", help="folder, gs:// or s3:// prefix with the day's files"
                                      " (default on the local profile: the bundled sample)")
    run.add_argument("--max-bad-rows", type=_count, help="tolerate and quarantine up to N bad rows (default 0)")

    backfill = sub.add_parser("backfill", help="one run per date, in order")
    backfill.add_argument("--start", type=parse_date, required=True)
    backfill.add_argument("--end", type=parse_date, required=True)
    backfill.add_argument("--source", required=True, help="folder, gs:// or s3:// prefix holding dt=YYYY-MM-DD/ folders")
    missing = backfill.add_mutually_exclusive_group()
    missing.add_argument("--skip-missing", action="store_true",
                         help="go on past days without a dt=YYYY-MM-DD/ delivery (default: refuse to start)")
    missing.add_argument("--same-files", action="store_true",
                         help="days without a dt=YYYY-MM-DD/ folder take the files at the source's root:"
                              " the same delivery for every such date")
    backfill.add_argument("--max-bad-rows", type=_count, help="tolerate and quarantine up to N bad rows a day")

    runs = sub.add_parser("runs", help="every run and every attempt of its steps")
    runs.add_argument("--date", type=parse_date, help="only this run date")
    runs.add_argument("--format", choices=("table", "json"), default="table")

    verify = sub.add_parser("verify", help="re-check a loaded day against its manifests (exit 4 if it differs)")
    verify.add_argument("--date", type=parse_date, required=True)

    accept = sub.add_parser("accept", help="accept the delivery the data-quality gate held and publish exactly it"
                                           " (the decision is kept in the ledger)")
    accept.add_argument("--date", type=parse_date, required=True)
    accept.add_argument("--reason", required=True, help="why the delivery is right (kept with the decision)")
    accept.add_argument("--generation", help="the held generation to accept (default: the date's newest held one;"
                                             " see `airtime runs --date`)")

    prune = sub.add_parser("prune", help="remove generations no reader needs: superseded, replaced or past"
                                         " AIRTIME_RETENTION_DAYS (see docs/operations.md)")
    prune.add_argument("--dry-run", action="store_true", help="only list what would be removed")

    query = sub.add_parser("query", help="the published forecast")
    kinds = query.add_subparsers(dest="kind", required=True)
    period = kinds.add_parser("period", help="slots in a date range")
    period.add_argument("--start", type=parse_date, required=True)
    period.add_argument("--end", type=parse_date, required=True)
    period.add_argument("--program", help="only this program code")
    _add_query_args(period)
    program = kinds.add_parser("program", help="slots of one program")
    program.add_argument("--program", required=True)
    program.add_argument("--date", type=parse_date)
    program.add_argument("--start", type=parse_date)
    program.add_argument("--end", type=parse_date)
    _add_query_args(program)
    codes = kinds.add_parser("codes", help="the signals and programs of a published run, with their slots"
                                           " (reads the warehouse: no --server)")
    codes.add_argument("--run", type=parse_date, metavar="YYYY-MM-DD",
                       help="this published run (default: the latest); see `airtime runs`")
    codes.add_argument("--format", choices=FORMATS, default="table")

    sample = sub.add_parser("sample-data", help="write synthetic input files in the real formats")
    sample.add_argument("out", type=Path)
    sample.add_argument("--rows", type=_positive, default=20_000, help="audience rows")
    sample.add_argument("--seed", type=int, default=7)
    sample.add_argument("--end-date", type=parse_date,
                        help="date of the last exhibition (default: the bundled sample's); availability"
                             " starts a few days later")

    serve = sub.add_parser("serve", help="the gRPC query service (and HTTP/JSON with --http-port)")
    serve.add_argument("--port", type=int, help="gRPC port (default 50051, AIRTIME_SERVER_PORT)")
    serve.add_argument("--http-port", type=int,
                       help="also serve the HTTP/JSON routes of the proto's google.api.http rules"
                            " on this port (default: off)")
    serve.add_argument("--metrics-port", type=int,
                       help="Prometheus /metrics port (default 9464, AIRTIME_METRICS_PORT; 0 = off)")

    workflows = sub.add_parser("workflows", help="Argo resources (Hera)")
    wf = workflows.add_subparsers(dest="action", required=True)
    render = wf.add_parser("render", help="write the WorkflowTemplate and CronWorkflow YAML")
    render.add_argument("--out", type=Path, default=Path("build/workflows"))
    apply = wf.add_parser("apply", help="server-side apply them to the current cluster")
    apply.add_argument("--out", type=Path, help="apply these rendered files instead of rendering")
    return parser


def _resume(args: argparse.Namespace, stopped: interrupts.Interrupt) -> str | None:
    """The command that finishes what a Ctrl-C stopped: the date it stopped on, then the
    rest of a backfill."""
    if args.command == "run":
        day = stopped.run_date or args.date
        command = ["airtime", "run", *(["--date", str(day)] if day else [])]
    elif args.command == "backfill":
        command = ["airtime", "backfill", "--start", str(stopped.run_date or args.start), "--end", str(args.end)]
        command += ["--skip-missing"] * args.skip_missing + ["--same-files"] * args.same_files
    else:
        return None
    if args.source:
        command += ["--source", args.source]
    if args.max_bad_rows is not None:
        command += ["--max-bad-rows", str(args.max_bad_rows)]
    return shlex.join(command)


def cmd_workflows(settings: Settings, args: argparse.Namespace) -> int:
    try:  # lazy: hera and kubernetes are the optional `workflows` extra, not in the image
        from workflows import cli as wf
    except ImportError as exc:
        raise ConfigError(f"{exc.name} is not installed: pip install 'airtime[workflows]'") from None

    if args.action == "render":
        wf.render_command(settings, args.out)
    else:
        wf.apply_command(settings, args.out)
    return 0


def _report(exc: AirtimeError) -> None:
    # plain text, never wrapped: operators grep it and paste it into tickets
    sys.stderr.write(f"error ({type(exc).__name__}): {exc}\n")


def main(argv: list[str] | None = None) -> int:
    def body(settings: Settings, args: argparse.Namespace) -> int:
        if getattr(args, "max_bad_rows", None) is not None:
            settings = settings.model_copy(update={"max_bad_rows": args.max_bad_rows})
        module, function = COMMANDS[args.command].split(":")
        return getattr(importlib.import_module(module), function)(settings, args)

    # a terminal shows the commands' own output, not INFO lines; the server logs requests
    return entrypoint.run(build_parser(), body, argv, quiet=lambda args: args.command != "serve",
                          report=_report, resume=_resume, preload=lambda args: args.command not in READS)


if __name__ == "__main__":
    sys.exit(main())
