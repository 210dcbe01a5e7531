# syntax=docker/dockerfile:1
# One image for the gRPC server (`airtime serve`, the default command) and every workflow step
# (`python -m steps.<catchup|ingest|preprocess|gate|load|verify|notify>`).
# Runs as uid 10001 on a read-only root filesystem: the only writable path is /tmp (an
# emptyDir in Kubernetes), where TMPDIR and AIRTIME_HOME point.
#
# The base is a build argument (docs/image.md):
# - production: the official slim Python image, pinned by the digest of its multi-architecture
#   index (python:3.11.14-slim-bookworm; the digest as published in several public projects'
#   Dockerfiles, not re-checked against Docker Hub from here: no registry is reachable);
# - where no registry is reachable: Debian bookworm from the package mirror with Debian's
#   Python 3.11 (.ci/build-debian-base; `make image` picks it when it cannot pull).
# Both give `python` on PATH, pip (used with --python) and the venv module.
ARG PYTHON_IMAGE=docker.io/library/python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

FROM ${PYTHON_IMAGE} AS builder
# PIP_CERT: the system CA bundle (both bases have ca-certificates) rather than pip's own
# certifi copy, so a build machine whose TLS is re-signed can mount its bundle over it.
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt
# tini as PID 1 forwards SIGTERM to the server and reaps children; copied into the final stage.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*
# The venv gets no pip of its own (the final image never installs anything): the base image's
# pip installs into it with --python.
RUN python -m venv --without-pip /opt/venv
WORKDIR /src
# Dependencies first, pinned by constraints.txt: this layer stays cached until one of these
# two files changes, not on every source edit. Only [project.dependencies]: the extras
# (workflows, bench, dev) are for the command line on a workstation, not the image.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip --python /opt/venv/bin/python install -c constraints.txt -r /tmp/requirements.txt
# What no run, server or store loads (Arrow Flight, pyarrow's S3 filesystem, headers and test
# suites, the models of AWS services other than S3 and its credentials): measured and listed
# in docker/prune-venv.py; the imports below and tests/container prove the rest still works.
COPY docker/prune-venv.py /tmp/prune-venv.py
RUN python /tmp/prune-venv.py /opt/venv/lib/python3.11/site-packages \
    && /opt/venv/bin/python -c "import pyarrow.parquet, pyarrow.dataset, pyarrow.compute, pyarrow.csv, pyarrow.fs, duckdb, numpy, boto3; boto3.client('s3', region_name='us-east-1'); boto3.client('sts', region_name='us-east-1')"
# The source, generated protobuf code (airtime/v1/) included: it is checked in, not built here.
COPY README.md ./
COPY airtime ./airtime
COPY steps ./steps
COPY grpc_server ./grpc_server
COPY workflows ./workflows
COPY cli ./cli
RUN pip --python /opt/venv/bin/python install -c constraints.txt . \
    && /opt/venv/bin/python -c "import cli.main, cli.pipeline, cli.queries, cli.serving, grpc_server.server, steps.dag"

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TMPDIR=/tmp \
    HOME=/tmp \
    AIRTIME_HOME=/tmp/airtime
RUN groupadd --system --gid 10001 airtime \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp \
        --shell /usr/sbin/nologin airtime
COPY --from=builder /usr/bin/tini /usr/bin/tini
COPY --from=builder /opt/venv /opt/venv
WORKDIR /tmp
USER 10001:10001
EXPOSE 50051 9464
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["airtime", "serve"]
