# The suite's image: every entry point of pyproject.toml ([project.scripts]) on PATH, run as a
# non-root user. compose.yaml runs one container per component from it; see the README section
# "Running with Docker Compose".
#
#   docker build -t twc-charging-suite .
#   docker run --rm twc-charging-suite twc-exporter --help

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
# promtool comes from the same Prometheus release compose.yaml runs, so the blocks price-backfill
# writes are in the format that Prometheus reads (a test keeps the two tags equal).
ARG PROMETHEUS_IMAGE=prom/prometheus:v2.53.3

FROM ${PROMETHEUS_IMAGE} AS prometheus

# Build stage: install the package and its dependencies (wheels only, no compiler needed) into a
# virtual environment, then drop pip and setuptools from it. Only that environment moves on.
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY billing ./billing
COPY exporters ./exporters
COPY meter ./meter
COPY reports ./reports
COPY servicekit ./servicekit
COPY session_store ./session_store
COPY simulator ./simulator
COPY suite ./suite
COPY upstreams ./upstreams
# tzdata: slim images may lack /usr/share/zoneinfo; zoneinfo falls back to the Python package.
RUN python -m venv /opt/charging \
    && /opt/charging/bin/pip install --no-cache-dir . tzdata \
    && /opt/charging/bin/pip uninstall --yes setuptools pip

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="twc-charging-suite" \
      org.opencontainers.image.description="Prometheus-native monitoring and smart charging for Tesla Wall Connectors"
ENV PATH=/opt/charging/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# /data holds the session store's SQLite file. /prometheus is where price-backfill finds the
# Prometheus data volume; it belongs to uid 65534 (nobody), the user prom/prometheus runs as, so a
# fresh volume first mounted here gets the owner Prometheus needs (compose.yaml runs the backfill
# as that user too).
RUN groupadd --system --gid 10001 charging \
    && useradd --system --uid 10001 --gid charging --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin charging \
    && mkdir -p /data /prometheus \
    && chown charging:charging /data \
    && chown 65534:65534 /prometheus
COPY --from=build /opt/charging /opt/charging
COPY --from=prometheus /bin/promtool /usr/local/bin/promtool
USER 10001:10001
WORKDIR /data
VOLUME /data
# charging-sim 9880 (+ simulated Wall Connectors from 9890), the exporters 9881-9884, session-store 9885.
EXPOSE 9880 9881 9882 9883 9884 9885 9890
CMD ["session-store", "--help"]
