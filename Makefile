# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install proto golden bench bench-month bench-preprocess bench-grpc bench-cli clean image image-test bench-cold-start gcp-setup-venv test-slow tools

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The Pulumi program's venv (deploy/gcp, docs/deploy.md). Its own, not an extra of
# pyproject.toml: pulumi 3.272 needs protobuf < 7 and the project's generated gRPC code
# protobuf >= 7.35.1, so neither venv can hold both. deploy/gcp/Pulumi.yaml points `pulumi up`
# at it; the program and its tests import nothing that needs protobuf, grpc or duckdb.
GCP_VENV := .venv-gcp
GCP_STAMP := $(GCP_VENV)/.installed

$(GCP_STAMP): deploy/gcp/requirements.txt
	$(PYTHON) -m venv $(GCP_VENV)
	$(GCP_VENV)/bin/pip install -q --upgrade pip
	$(GCP_VENV)/bin/pip install -q -r deploy/gcp/requirements.txt
	touch $(GCP_STAMP)

gcp-setup-venv: $(GCP_STAMP)

# The daily job on the bundled synthetic sample, local profile, then the result.
run: $(STAMP)
	$(BIN)/airtime run --date 2026-11-30  # the bundled sample is the delivery of that day
	$(BIN)/airtime runs
	$(BIN)/airtime query period --start 2026-12-01 --end 2026-12-07 --format table --limit 15

# Regenerate airtime/v1 from proto/ (a test fails when it is stale).
proto: $(STAMP)
	$(BIN)/python -m grpc_server.codegen

# Regenerate the Argo golden YAML (tests/golden/workflows) after an intended change.
golden: $(STAMP)
	$(BIN)/python -m tests.unit.test_workflows_golden

# Installs the offline validators (helm, kubernetes-validate, check-jsonschema), h2load and promtool in CI, and the
# Google Cloud emulators, then runs every test but the slow ones (markers `slow` and `big`,
# pyproject.toml), which `make test-slow` runs: CI (.ci/run, Cloud Build) runs both, in that
# order, so fast feedback comes first and nothing is left out. Outside CI an emulator that
# cannot be installed here (no Python 3.13) only makes its tests skip, with the reason.
# The program's tests (tests/gcp_setup, under Pulumi's mocks) run in .venv-gcp after the rest:
# the main run leaves them out (pulumi is not in .venv), and --confcutdir keeps
# tests/conftest.py, which imports the project (hypothesis, grpc), out of theirs.
test: $(STAMP) $(GCP_STAMP) tools
	$(BIN)/python -m pytest -q --durations=15 -m "not slow and not big" --ignore=tests/container --ignore=tests/gcp_setup
	$(GCP_VENV)/bin/python -m pytest -q tests/gcp_setup --confcutdir=tests/gcp_setup
	if [ "$${CI:-}" = "true" ]; then $(MAKE) image-test MARKS="not big"; else echo "make test: the container tests run in CI or with make image-test"; fi

# The slow tests `make test` leaves out: the gcp profile's pipeline scenarios and the Argo
# model on the gcp profile (emulators), re-recording the Google API calls, and in CI the 10M-row
# day in containers (marker big, tests/container/test_day_at_scale.py).
test-slow: $(STAMP) tools
	$(BIN)/python -m pytest -q --durations=15 -m "slow or big" --ignore=tests/container --ignore=tests/gcp_setup
	if [ "$${CI:-}" = "true" ]; then $(MAKE) image-test MARKS=big; else echo "make test-slow: the 10M-row container test runs in CI or with make image-test MARKS=big"; fi

# What the tests need beside the venvs; in CI a missing one fails instead of skipping.
tools:
	bash .ci/install-tools
	bash .ci/install-emulators || [ "$${CI:-}" != "true" ]
	# h2load, for the attack test that replays issue 20's command (it skips without, outside CI)
	if [ "$${CI:-}" = "true" ]; then bash .ci/install-bench-tools; fi
	# promtool, for the alerting rules' tests (they skip without it, outside CI)
	if [ "$${CI:-}" = "true" ]; then bash .ci/install-monitoring-tools; fi

# The container image with Podman (docs/image.md): on the official slim Python image when a
# registry is reachable, else on Debian bookworm built from the package mirror.
# AIRTIME_IMAGE names it (default localhost/airtime:dev), AIRTIME_IMAGE_BASE picks the base;
# AIRTIME_CONTAINER_ENGINE=docker builds it with a Docker daemon instead (Cloud Build).
image:
	if [ "$${AIRTIME_CONTAINER_ENGINE:-podman}" != docker ]; then bash .ci/install-podman; fi
	bash .ci/build-image

# The image exercised for real (tests/container/): user, read-only root, `airtime run`,
# `airtime serve` from the host, metrics, SIGTERM, and the rendered DAG one container per task.
# Run by `make test` in CI (MARKS="not big") and `make test-slow` (MARKS=big); outside CI the
# tests skip with the reason when no engine is there. MARKS selects by marker; empty: all.
# The engine (tests/container/podman.py): AIRTIME_CONTAINER_ENGINE=docker|podman, else docker
# when a Docker daemon answers on its socket (a Cloud Build step, .ci/run-in-docker), else
# podman, which the tests install with .ci/install-podman when it is missing.
MARKS ?=
image-test: $(STAMP)
	$(BIN)/python -m pytest -q $(if $(MARKS),-m "$(MARKS)") tests/container

# The whole day (`airtime run` from the CSVs) at 10M audience rows beside its floor
# (bench/floor.py: read, forecast, write, read back) and a pandas script reading the same CSVs,
# alternating; each day's ratio to the floor and to pandas against issue 25's targets;
# `--steps` adds each step's peak RSS alone.
bench: $(STAMP)
	$(BIN)/python -m bench.day --steps

# A month of days in one home at 10M audience rows: 30 deliveries each the previous shifted by
# a day, each `airtime run` then `airtime prune`; per day time, peak RSS, scratch and bytes
# stored, day 30 against day 2, and the plot bench/out/month-10000000.png. Thirty whole days:
# `python -m bench.month --rows 1000000` is the quicker look.
bench-month: $(STAMP)
	$(BIN)/python -m bench.month

# The forecast alone (typed Parquet in) against a pandas groupby-apply baseline.
bench-preprocess: $(STAMP)
	$(BIN)/python -m bench.preprocess

# gRPC query service vs a FastAPI + pandas baseline and a bare grpc.aio echo, 1M slots,
# driven by h2load (installed from Debian's nghttp2-client by .ci/install-bench-tools).
bench-grpc: $(STAMP)
	bash .ci/install-bench-tools
	$(BIN)/python -m bench.grpc_service

# Cold start of `airtime serve` (process start to health SERVING and a first GetProgramSlots
# answer) on a published 1M-slot run, median of 5; what a scale-to-zero Cloud Run instance pays.
bench-cold-start: $(STAMP)
	$(BIN)/python -m bench.cold_start --slots 1000000 --runs 5

# Start-up of the command line (`airtime --help`, a local `airtime query program` on the bundled
# sample) against main's, side by side; BASELINE=<git ref> compares against another.
bench-cli: $(STAMP)
	$(BIN)/python -m bench.cli_start --baseline $${BASELINE:-main}
	$(BIN)/python -m bench.cli_start --baseline $${BASELINE:-main} --without pandas

clean:
	rm -rf .airtime .pytest_cache build *.egg-info
