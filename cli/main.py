"""`airtime`: the command line of the pipeline and the query service.

Exit codes say what failed: 0 ok, 1 unexpected, 2 usage/settings, 3 bad input,
4 verification, 5 storage/warehouse (transient), 6 nothing published, 7 unknown program,
130 interrupted (Ctrl-C; the line on stderr says where, and which command resumes).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import getpass
import logging
import shlex
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console

from airtime import entrypoint, interrupts, query, query_rules, retention, sample
from airtime.entrypoint import parse_date
from airtime.errors import AirtimeError, ConfigError
from airtime.progress import Progress, watching
from airtime.resources import artifact_store, bundled_sample, open_store, open_warehouse, source_location
from airtime.sample import DEFAULT_END_DATE
from airtime.schedule import today
from airtime.settings import Settings
from airtime.warehouse import SlotFilter
from cli.ledger import render_runs, runs_report
from cli.output import FORMATS, render, render_codes
from grpc_server.auth import parse_inline, read_client_token
from grpc_server.client import query_rows
from grpc_server.server import serve
from steps import gate, runner, verify
from steps.ingest import delivery_folder
from steps.scaffold import StepResult, make_context

# piped output (CI logs, `make run | tee`) gets a readable width instead of 80 columns
out = Console() if Console().is_terminal else Console(width=130)
log = logging.getLogger("airtime")


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
    sample.add_argument("--end-date", type=parse_date, default=DEFAULT_END_DATE,
                        help=f"date of the last exhibition (default {DEFAULT_END_DATE}); availability"
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


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    run_date = args.date or today(settings.timezone)
    return _run_dates(settings, [run_date], args.source)


def cmd_backfill(settings: Settings, args: argparse.Namespace) -> int:
    if args.end < args.start:
        raise ConfigError(f"--end {args.end} is before --start {args.start}")
    days = [args.start + dt.timedelta(days=i) for i in range((args.end - args.start).days + 1)]
    if args.max_bad_rows is not None:
        settings = settings.model_copy(update={"max_bad_rows": args.max_bad_rows})
    if not args.same_files:
        source = open_store(source_location(settings, args.source))  # refused first without one (gcp)
        missing = [day for day in days if not source.list(delivery_folder(day))]
        if missing and not args.skip_missing:
            # a day without its folder would ingest the root's files: one delivery under many dates
            raise ConfigError(_no_day_folders(source.uri(""), days, missing))
        for day in missing:
            out.print(f"[yellow]skip {day}[/yellow]: no delivery in {source.uri(delivery_folder(day))}")
        days = [day for day in days if day not in missing]
    return _run_dates(settings, days, args.source)


def _no_day_folders(source: str, days: list[dt.date], missing: list[dt.date]) -> str:
    which = "any of the dates" if len(missing) == len(days) else \
        f"{len(missing)} of the {len(days)} dates (" + ", ".join(map(str, missing[:5])) \
        + (", ..." if len(missing) > 5 else "") + ")"
    return (f"{source} has no dt=YYYY-MM-DD/ folder for {which} from {days[0]} to {days[-1]}; backfill"
            " reads each date's delivery from its own folder. Add the folders, pass --skip-missing to"
            " skip those dates, or --same-files if the files at the root are the delivery of every date")


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


@contextlib.contextmanager
def _watch(progress: Progress, what: str, every: float) -> Iterator[None]:
    """A live line on a terminal; elsewhere a printed line every `every` seconds."""
    if out.is_terminal:
        with out.status(f"  {what} ...") as spinner, \
                watching(progress, lambda snap: spinner.update(f"  {what}: {snap}"), 0.5):
            yield
    else:
        with watching(progress, lambda snap: out.print(f"  … {what}: {snap}"), every):
            yield


class _StepProgress:
    """While a step runs: on a terminal a live line (phase, rows, rows/s, elapsed), elsewhere
    a printed line every 10 s; when it ends, one line saying what it did."""

    def __init__(self, heartbeat_seconds: float) -> None:
        self.progress = Progress()
        self._every = heartbeat_seconds
        self._watch: contextlib.ExitStack | None = None

    def __call__(self, step: str, result: StepResult | None) -> None:
        if result is None:
            self._watch = contextlib.ExitStack()
            self._watch.enter_context(_watch(self.progress, step, self._every))
            return
        self.stop()
        note = "skipped, already done" if result.skipped else f"{result.seconds:.2f}s"
        rows = ", ".join(f"{name} {o.rows:,} rows" for name, o in result.manifest.outputs.items())
        if step == "load":
            rows = "raw_audience, raw_availability, forecast and the ledger row, in one transaction"
        elif step == "verify":
            rows = "counts and checksums match the manifests"
        elif step == "gate":
            rows = f"delivery {result.manifest.extra.get('decision', 'passed')}"
        out.print(f"  [green]✓[/green] {step:<10} {note:<22} {rows}")

    def stop(self) -> None:
        if self._watch is not None:
            self._watch.close()
            self._watch = None


def _run_dates(settings: Settings, days: list[dt.date], source: str | None) -> int:
    where = source_location(settings, source)  # refused before any work without a source (gcp)
    for run_date in days:
        out.print(f"[bold]run {run_date}[/bold] (profile {settings.profile}, source "
                  f"{'bundled sample' if where == str(bundled_sample()) else where})")
        progress = _StepProgress(settings.heartbeat_seconds)
        try:
            result = runner.run_day(settings, run_date, source, on_step=progress, progress=progress.progress)
        finally:
            progress.stop()
        record = result.record
        out.print(f"  run {run_date}: [bold green]{record.state}[/bold green]; forecast "
                  f"{record.forecast_rows:,} slots, {record.quarantined_rows} rows quarantined")
    return 0


def cmd_runs(settings: Settings, args: argparse.Namespace) -> int:
    sys.stdout.write(render_runs(runs_report(open_warehouse(settings), args.date), args.format))
    return 0


def cmd_accept(settings: Settings, args: argparse.Namespace) -> int:
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # a container user with no passwd entry
        user = "unknown"
    by = f"{user}@{socket.gethostname()}"
    ctx = make_context(settings, args.date, needs_source=False)
    ctx.generation, ctx.pinned = args.generation or gate.held_generation(ctx).generation, True
    uri = gate.accept(ctx, args.reason, by)
    out.print(f"accepted generation {ctx.gen} of {args.date} ({uri}); publishing exactly it")
    progress = _StepProgress(settings.heartbeat_seconds)
    try:
        result = runner.run_day(settings, args.date, on_step=progress, progress=progress.progress,
                                generation=ctx.gen)
    finally:
        progress.stop()
    out.print(f"  run {args.date} generation {ctx.gen}: [bold green]{result.record.state}[/bold green]")
    return 0


def cmd_verify(settings: Settings, args: argparse.Namespace) -> int:
    ctx = make_context(settings, args.date, needs_source=False)
    figures = verify.recheck(ctx)
    out.print(f"run {args.date} generation {ctx.gen}: the warehouse holds what was loaded ("
              + ", ".join(f"{table} {f.rows:,} rows" for table, f in figures.items())
              + ") and every artifact matches its manifest")
    return 0


def cmd_prune(settings: Settings, args: argparse.Namespace) -> int:
    store, warehouse = artifact_store(settings), open_warehouse(settings)
    removals = retention.plan_removals(store, warehouse, settings.retention_days)
    for removal in removals:
        record = removal.record
        out.print(f"{'would remove' if args.dry_run else 'remove'} {record.run_date} generation"
                  f" {record.generation} ({removal.why}): {len(removal.keys)} objects")
        if not args.dry_run:
            retention.remove(store, warehouse, removal)
    out.print(f"{len(removals)} generation(s) {'to remove' if args.dry_run else 'removed'};"
              f" published generations of the last {settings.retention_days} days kept")
    return 0


def _query_filter(args: argparse.Namespace, max_days: int | None) -> SlotFilter:
    """The filter of a period or program query, by the rules the server keeps too."""
    if args.kind == "period":
        return query_rules.period_query(args.start, args.end, args.signal, args.program, max_days=max_days)
    return query_rules.program_query(args.program, signal=args.signal, date=args.date, start=args.start,
                                     end=args.end, max_days=max_days)


def _client_token(settings: Settings, args: argparse.Namespace) -> str | None:
    """The bearer token `--server` sends: --token, --token-file, AIRTIME_QUERY_TOKEN,
    AIRTIME_QUERY_TOKEN_FILE, else the first of AIRTIME_TOKENS (a server's own, on its host).
    A named file that yields none is exit 2 naming it, never a call without a token."""
    if args.token:
        return args.token
    if args.token_file is not None:
        return read_client_token(args.token_file, "token file (--token-file)")
    if settings.query_token and settings.query_token.strip():
        return settings.query_token.strip()
    if settings.query_token_file is not None:
        return read_client_token(settings.query_token_file, "token file (AIRTIME_QUERY_TOKEN_FILE)")
    return (parse_inline(settings.tokens) or [None])[0] if settings.tokens else None


def cmd_query(settings: Settings, args: argparse.Namespace) -> int:
    if args.kind == "codes":
        sys.stdout.write(render_codes(query.run_codes(open_warehouse(settings), args.run), args.format))
        return 0
    # with --server the server applies its own maximum range
    where = _query_filter(args, None if args.server else settings.max_range_days)
    program = args.kind == "program"
    if args.server:
        token = _client_token(settings, args)
        # with a private CA (or a self-signed server certificate) AIRTIME_TLS_CERT_FILE names it
        tls = (settings.tls_cert_file or True) if args.tls else False
        run_date, rows = query_rows(args.server, where, program=program, token=token, tls=tls,
                                    run_date=args.run)
    else:
        run, rows = query.run_query(open_warehouse(settings), where, run_date=args.run)
        run_date = run.run_date
    total = len(rows)
    if args.limit is not None:
        rows = rows[: args.limit]
    shown = f"{len(rows)} of {total}" if len(rows) < total else str(total)
    title = f"forecast of run {run_date} ({shown} rows)"
    sys.stdout.write(render(rows, args.format, title, run_date=run_date))
    return 0


def cmd_sample(settings: Settings, args: argparse.Namespace) -> int:
    progress = Progress()
    progress.phase("writing audience rows")
    with _watch(progress, "sample-data", settings.heartbeat_seconds):
        audience, availability = sample.generate(args.out, rows=args.rows, seed=args.seed,
                                                 end_date=args.end_date, progress=progress)
    out.print(f"wrote {audience} and {availability}")
    day = sample.run_date_for(args.end_date)
    out.print(f"their delivery day: {day}  (airtime run --date {day} --source {args.out})")
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    if args.metrics_port is not None:
        settings = settings.model_copy(update={"metrics_port": args.metrics_port})
    serve(settings, args.port if args.port is not None else settings.server_port, http_port=args.http_port)
    return 0


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


COMMANDS = {
    "run": cmd_run,
    "backfill": cmd_backfill,
    "runs": cmd_runs,
    "verify": cmd_verify,
    "accept": cmd_accept,
    "prune": cmd_prune,
    "query": cmd_query,
    "sample-data": cmd_sample,
    "serve": cmd_serve,
    "workflows": cmd_workflows,
}


def _report(exc: AirtimeError) -> None:
    # plain text, never wrapped: operators grep it and paste it into tickets
    sys.stderr.write(f"error ({type(exc).__name__}): {exc}\n")


def main(argv: list[str] | None = None) -> int:
    def body(settings: Settings, args: argparse.Namespace) -> int:
        if getattr(args, "max_bad_rows", None) is not None:
            settings = settings.model_copy(update={"max_bad_rows": args.max_bad_rows})
        return COMMANDS[args.command](settings, args)

    # a terminal shows the commands' own output, not INFO lines; the server logs requests
    return entrypoint.run(build_parser(), body, argv, quiet=lambda args: args.command != "serve",
                          report=_report, resume=_resume)


if __name__ == "__main__":
    sys.exit(main())
