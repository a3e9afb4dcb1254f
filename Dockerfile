# syntax=docker/dockerfile:1
# punchclock's container image: a build stage resolves the locked dependencies into a virtual environment,
# the runtime stage copies only that environment onto the same base image and runs as a non-root user.
#
#   docker build -t punchclock:0.1.0 .
#   docker run -p 8000:8000 -v punchclock-data:/data punchclock:0.1.0
#
# BASE_IMAGE must provide python3 (>= 3.11) with the venv module at the same path in both stages.
ARG BASE_IMAGE=python:3.11-slim-bookworm
# checkov:skip=CKV_DOCKER_7: the base image is a build argument whose default carries a version tag
# checkov:skip=CKV_DOCKER_2: no HEALTHCHECK on purpose; Kubernetes probes /healthz and /readyz instead

FROM ${BASE_IMAGE} AS build
ARG UV_VERSION=0.13.8
ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=python3 \
    UV_PROJECT_ENVIRONMENT=/opt/punchclock \
    UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1 \
    UV_NO_CACHE=1
# uv itself comes pinned from PyPI; every other package comes from uv.lock with its recorded hash.
RUN python3 -m venv /opt/uv && /opt/uv/bin/pip install --quiet "uv==${UV_VERSION}"
WORKDIR /src
# Dependencies first, so a source-only change reuses this layer.
COPY pyproject.toml uv.lock README.md ./
RUN /opt/uv/bin/uv sync --frozen --no-dev --no-install-project
COPY src ./src
RUN /opt/uv/bin/uv sync --frozen --no-dev --no-editable

FROM ${BASE_IMAGE} AS runtime
# A fixed numeric user, so Kubernetes' runAsNonRoot can verify it without a passwd lookup.
RUN groupadd --system --gid 10001 punchclock \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin punchclock \
 && mkdir -p /data \
 && chown 10001:10001 /data
COPY --from=build /opt/punchclock /opt/punchclock
# The root filesystem may be read-only: bytecode is compiled at build time, the database lives on /data and
# anything temporary goes to /tmp. DATABASE_URL is left unset on purpose: its default, sqlite:///punchclock.db,
# resolves against the working directory to /data/punchclock.db, and an unset DATABASE_URL lets a mounted
# secret named by DATABASE_URL_FILE take effect.
ENV PATH=/opt/punchclock/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PUNCHCLOCK_HOST=0.0.0.0 \
    PORT=8000
VOLUME ["/data"]
WORKDIR /data
USER 10001:10001
EXPOSE 8000
# No HEALTHCHECK: liveness (/healthz) and readiness (/readyz) are probed by the orchestrator.
# Exec form: the server is PID 1 and receives SIGTERM itself, which starts its drain.
ENTRYPOINT ["punchclock"]
CMD ["serve"]
# Last, so a new revision reuses every layer above.
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="punchclock" \
      org.opencontainers.image.description="Records a durable timestamp for every POST /app." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.source="https://github.com/punchclock/punchclock"
