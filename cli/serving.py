"""`airtime serve`: the gRPC query service, and HTTP/JSON with --http-port."""

from __future__ import annotations

import argparse

from airtime.settings import Settings
from grpc_server.server import serve


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    if args.metrics_port is not None:
        settings = settings.model_copy(update={"metrics_port": args.metrics_port})
    serve(settings, args.port if args.port is not None else settings.server_port, http_port=args.http_port)
    return 0

