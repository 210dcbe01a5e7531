"""Fill in the project-specific parts of the Cloud Endpoints service configuration.

    python -m deploy.endpoints.render --project my-project --out build/api_config.yaml
    python -m deploy.endpoints.render --project my-project --out build/api_config.yaml \\
        --host airtime-gateway-abc123-uc.a.run.app --backend grpcs://airtime-abc123-uc.a.run.app

GKE (ESPv2 as a sidecar): the service is airtime.endpoints.<project>.cloud.goog and ESPv2's
`--backend=grpc://127.0.0.1:50051` flag names the backend, so the configuration has no
`backend` section: a `backend.rules[].address` would take priority over the flag
(GoogleCloudPlatform/esp-v2, docker/generic/start_proxy.py, `--enable_backend_address_override`).

Cloud Run (ESPv2 as its own Cloud Run service in front of the server's): the service name is
the ESPv2 service's host name and every method goes to the server's Cloud Run URL over
`grpcs://` ("Set up Cloud Endpoints gRPC for Cloud Run with ESPv2",
https://cloud.google.com/endpoints/docs/grpc/set-up-cloud-run-espv2). ESPv2 then calls it
with a Google ID token whose audience it derives from that address
(esp-v2 src/go/configinfo/service_info.go, determineBackendAuthJwtAud), which is what Cloud
Run's IAM check (roles/run.invoker for ESPv2's service account) expects.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

TEMPLATE = Path(__file__).with_name("api_config.yaml")
PLACEHOLDER = "PROJECT_ID"
# Project IDs: 6-30 characters, lowercase letters, digits, hyphens, starting with a letter
# (https://cloud.google.com/resource-manager/docs/creating-managing-projects).
PROJECT_ID = re.compile(r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$")
HOST = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$")


class RenderError(ValueError):
    """A bad argument, named with the rule it breaks."""


def render(project: str, *, host: str | None = None, backend: str | None = None,
           template: Path = TEMPLATE) -> dict:
    """The service configuration for a project (and, with host and backend, for Cloud Run)."""
    if not PROJECT_ID.fullmatch(project):
        raise RenderError(f"--project {project!r}: not a Google Cloud project ID "
                          "(6-30 lowercase letters, digits or hyphens, starting with a letter)")
    if (host is None) != (backend is None):
        raise RenderError("--host and --backend go together (ESPv2 on Cloud Run needs both)")
    if host is not None and not HOST.fullmatch(host):
        raise RenderError(f"--host {host!r}: a bare host name, without scheme or path")
    if backend is not None and not re.fullmatch(r"grpcs?://[^/\s]+", backend):
        raise RenderError(f"--backend {backend!r}: grpcs://<host> of the server's Cloud Run service")
    text = template.read_text().replace(PLACEHOLDER, project)
    config = yaml.safe_load(text)
    if host is not None:
        config["name"] = host
        for provider in config.get("authentication", {}).get("providers", []):
            provider["audiences"] = host  # callers mint ID tokens for the URL they call
        config["backend"] = {"rules": [{"selector": "*", "address": backend}]}
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.endpoints.render", description=__doc__.split("\n")[0])
    parser.add_argument("--project", required=True, help="Google Cloud project ID")
    parser.add_argument("--out", type=Path, required=True, help="where to write the configuration")
    parser.add_argument("--host", help="Cloud Run: host name of the ESPv2 service (the Endpoints service name)")
    parser.add_argument("--backend", help="Cloud Run: grpcs://<host> of the server's Cloud Run service")
    args = parser.parse_args(argv)
    try:
        config = render(args.project, host=args.host, backend=args.backend)
    except RenderError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")  # nothing half-written at --out
    tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    tmp.replace(args.out)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
