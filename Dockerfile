# syntax=docker/dockerfile:1
# servewell's container image: `docker build --build-arg EXTRAS=postgres,redis -t servewell .`
#
# Stage 1 builds wheels for servewell and every dependency (compilers live here only);
# stage 2 installs those wheels into a slim Python with no build tools, as a non-root
# user, with SERVEWELL_HOME (the SQLite registry and the artifact store) on a volume.
# docs/deploy.md says how to run it; CI lints this file with hadolint (it cannot build).

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
# Extras to install, comma-separated (postgres, redis, celery, parquet, text): the
# registry on PostgreSQL, the shared limits/cache on Redis and the Celery batch workers
# are what many replicas need.
ARG EXTRAS=postgres,redis,celery,llm
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential=12.9 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[${EXTRAS}]"

FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
ARG EXTRAS=postgres,redis,celery,llm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SERVEWELL_HOME=/var/lib/servewell \
    SERVEWELL_SERVER__HOST=0.0.0.0 \
    SERVEWELL_SERVER__PORT=8000
RUN groupadd --system --gid 10001 servewell \
    && useradd --system --uid 10001 --gid servewell --home-dir /var/lib/servewell \
       --shell /usr/sbin/nologin servewell \
    && mkdir -p /var/lib/servewell \
    && chown servewell:servewell /var/lib/servewell
COPY --from=build /wheels /wheels
# --no-index: only the wheels built above, whose versions stage 1 resolved (DL3013 asks
# for pins that stage 1 already fixed).
# hadolint ignore=DL3013
RUN pip install --no-cache-dir --no-index --find-links /wheels "servewell[${EXTRAS}]" \
    && rm -rf /wheels
USER 10001:10001
WORKDIR /var/lib/servewell
VOLUME ["/var/lib/servewell"]
EXPOSE 8000
# Readiness, not liveness: a replica still loading its models is not healthy to route to.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('SERVEWELL_SERVER__PORT', '8000'); sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{port}/v2/health/ready', timeout=2).status != 200)"]
# Auth stays on (API keys from the registry): --host 0.0.0.0 without --no-auth.
ENTRYPOINT ["servewell"]
CMD ["serve", "--host", "0.0.0.0"]
