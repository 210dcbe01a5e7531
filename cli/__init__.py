"""`airtime`: the command line, the top floor: it drives the pipeline (steps/), the query
service (grpc_server/) and the Argo resources (workflows/)."""
