"""The commands that read: `runs` (the ledger) and `query` (the published forecast, from the
warehouse or from a running `airtime serve`)."""

from __future__ import annotations

import argparse
import sys

from airtime import query, query_rules
from airtime.resources import open_warehouse
from airtime.settings import Settings
from airtime.warehouse import SlotFilter
from cli.ledger import render_runs, runs_report
from cli.output import render, render_codes
from grpc_server.auth import parse_inline, read_client_token


def cmd_runs(settings: Settings, args: argparse.Namespace) -> int:
    sys.stdout.write(render_runs(runs_report(open_warehouse(settings), args.date), args.format))
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
        # imported only here: grpc and the generated stubs cost a local query ~0.1 s (issue 25)
        from grpc_server.client import query_rows

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

