"""The whole daily job on the gcp profile against the emulators, compared with the local
profile, through the `airtime` command line as an operator would run it.

    .ci/install-emulators && .venv/bin/python -m tests.gcp_profile_check [--date D]

Starts fake-gcs-server and local-bigquery on loopback, uploads the bundled sample to
gs://airtime-source/incoming/dt=D/, runs `airtime run` on both profiles, then compares
`airtime query period` (every slot, JSON) and the ledgers. Exit 0 when they are equal.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests import emulators
from tests.gcp_helpers import new_profile

ROOT = Path(__file__).resolve().parents[1]


def airtime(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("AIRTIME_")} | env
    full["PYTHONPATH"] = str(ROOT)
    done = subprocess.run([sys.executable, "-m", "cli", *args], env=full, cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        sys.exit(f"airtime {' '.join(args)} failed with exit {done.returncode}:\n{done.stderr}")
    return done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--date", type=dt.date.fromisoformat, default=dt.date(2026, 11, 30))
    args = parser.parse_args()
    day = args.date.isoformat()
    # the widest period one query may ask for (366 days), around the run date
    start, end = args.date - dt.timedelta(days=183), args.date + dt.timedelta(days=182)
    from airtime.resources import bundled_sample

    with tempfile.TemporaryDirectory(prefix="airtime-gcp-check-") as tmp:
        work = Path(tmp)
        with emulators.fake_gcs_server(work) as gcs, \
                emulators.local_bigquery(work, storage_emulator_host=gcs.url) as bq:
            print(f"fake-gcs-server {gcs.url} (pid {gcs.pid}), local-bigquery {bq.url} (pid {bq.pid})")
            os.environ["STORAGE_EMULATOR_HOST"] = gcs.url  # for the upload below
            profile = new_profile(gcs, bq)
            profile.upload_day(bundled_sample(), args.date)
            gcp_env = profile.env() | {"AIRTIME_HOME": str(work / "gcp-home")}
            local_env = {"AIRTIME_HOME": str(work / "local-home")}

            outputs = {}
            for name, env in (("local", local_env), ("gcp", gcp_env)):
                run = airtime(env, "run", "--date", day)
                print(f"--- {name}: airtime run --date {day}\n{run.stdout.strip()}")
                ledger = airtime(env, "runs").stdout
                rows = json.loads(airtime(env, "query", "period", "--start", start.isoformat(),
                                          "--end", end.isoformat(), "--format", "json").stdout)
                outputs[name] = (rows, ledger)
            print(f"--- gcp ledger\n{outputs['gcp'][1].strip()}")
        local_rows, gcp_rows = outputs["local"][0], outputs["gcp"][0]
        if local_rows != gcp_rows:
            print(f"DIFFERENT: local {_count(local_rows)} vs gcp {_count(gcp_rows)}")
            return 1
        print(f"SAME: `airtime query period` gives identical output on both profiles "
              f"({_count(local_rows)})")
        return 0


def _count(rows: object) -> str:
    if isinstance(rows, dict):
        rows = rows.get("slots", rows.get("rows", rows))
    return f"{len(rows)} slots" if isinstance(rows, list) else "?"


if __name__ == "__main__":
    sys.exit(main())
