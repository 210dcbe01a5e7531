"""Entry point of `pulumi up` (Pulumi.yaml, runtime python): the stack's config to Names and
Options, then program.create. Run from deploy/gcp, so the repository root goes on sys.path for
`deploy.*` (the program imports deploy/names.py and deploy/gcp/iam.py, pure Python)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pulumi  # noqa: E402

from deploy.gcp.options import from_config  # noqa: E402
from deploy.gcp.program import create  # noqa: E402
from deploy.names import names_for  # noqa: E402

gcp_config = pulumi.Config("gcp")
names = names_for(pulumi.get_stack(), gcp_config.require("project"), gcp_config.get("region") or "us-central1")
create(names, from_config(pulumi.Config("airtime")))
