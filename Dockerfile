# krakenwatch: dashboard + /metrics + /api/verify + monitor in one process (`krakenwatch up`), and
# the signing gateway (`krakenwatch gateway`) from the same image.
#
#   docker build -t krakenwatch .
#   docker run --rm --env-file .env -p 127.0.0.1:8501:8501 -v krakenwatch-data:/data krakenwatch
#   docker run --rm --env-file .env krakenwatch check      # one-shot verification, exit code
#   docker run --rm --env-file .env -p 127.0.0.1:8788:8788 -v krakenwatch-data:/data \
#     krakenwatch gateway --host 0.0.0.0                    # bots use http://HOST:8788
#
# Keep /data on a volume: it holds the nonce high-water marks (losing them can cause
# EAPI:Invalid nonce after a restart) and the event database.

# ---- build: a virtualenv with the dependencies, then the package (no dev extra, no tests) ----
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /src

# Dependencies first, from pyproject.toml alone: this layer is rebuilt only when it changes.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
    && pip install --requirement requirements.txt

# Then the code (README.md is the package's long description).
COPY README.md ./
COPY broker ./broker
COPY dashboard ./dashboard
COPY gateway ./gateway
COPY simulator ./simulator
RUN pip install --no-deps .

# ---- runtime: the virtualenv only, as an unprivileged numeric user ----
FROM python:3.11-slim

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HOME=/home/krakenwatch \
    KRAKENWATCH_DATA_DIR=/data

RUN groupadd --system --gid 10001 krakenwatch \
    && useradd --system --no-log-init --uid 10001 --gid 10001 --create-home \
       --home-dir /home/krakenwatch --shell /usr/sbin/nologin krakenwatch \
    && mkdir -m 0700 /data \
    && chown 10001:10001 /data

COPY --from=build /opt/venv /opt/venv

WORKDIR /home/krakenwatch
USER 10001:10001
VOLUME /data
# 8501: the dashboard (the default command); 8788: the gateway (`gateway --host 0.0.0.0`)
EXPOSE 8501 8788

# The dashboard's liveness: Streamlit's endpoint, checked with the image's own Python (no curl in
# the image). A gateway container overrides it with GET /healthz on 8788 (deploy/docker-compose.yml).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4).status == 200 else 1)"]

ENTRYPOINT ["krakenwatch"]
CMD ["up", "--address", "0.0.0.0", "--port", "8501"]
