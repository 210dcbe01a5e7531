"""Generated from proto/airtime/v1 by `python -m grpc_server.codegen`. Do not edit."""
