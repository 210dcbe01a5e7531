# syntax=docker/dockerfile:1
# One image for the gRPC server (`airtime serve`, the default command) and every workflow step
# (`python -m steps.<ingest|preprocess|load|verify|notify|catchup>`).
# Runs as uid 10001 on a read-only root filesystem: the only writable path is /tmp (an
# emptyDir in Kubernetes), where TMPDIR and AIRTIME_HOME point.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
# tini as PID 1 forwards SIGTERM to the server and reaps children; copied into the final stage.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*
# The venv gets no pip of its own (24 MB the final image never uses): the base image's pip
# installs into it with --python.
RUN python -m venv --without-pip /opt/venv
WORKDIR /src
# Dependencies first, pinned by constraints.txt: this layer stays cached until one of these
# two files changes, not on every source edit.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip --python /opt/venv/bin/python install -c constraints.txt -r /tmp/requirements.txt
# The source, generated protobuf code (airtime/v1/) included: it is checked in, not built here.
COPY README.md ./
COPY airtime ./airtime
COPY steps ./steps
COPY grpc_server ./grpc_server
COPY workflows ./workflows
COPY cli ./cli
RUN pip --python /opt/venv/bin/python install -c constraints.txt . \
    && /opt/venv/bin/python -c "import cli.main, grpc_server.server, steps.dag"

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
