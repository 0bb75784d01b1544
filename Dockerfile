# One image for every registry process: the command decides (web: nginx in front of gunicorn, started by
# `manage.py runregistry --web-only`, the default; worker: celery --app registry_site worker; beat: celery
# --app registry_site beat).

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
# Every dependency, transitive ones too, is pinned there: --no-deps lets nothing unpinned in.
RUN /opt/venv/bin/pip install --no-deps --requirement /tmp/requirements.txt

FROM python:3.11-slim AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    REGISTRY_DATA_DIR=/var/lib/registry \
    LISTEN_ADDRESS=0.0.0.0:8000
# nginx holds the clients and sends local blob files (registry_site/front.py); Debian's, without its service.
RUN apt-get update \
 && apt-get install --yes --no-install-recommends nginx \
 && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/default
RUN groupadd --system --gid 10001 registry \
 && useradd --system --uid 10001 --gid registry --home-dir /var/lib/registry --no-create-home registry
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY manage.py ./
COPY dcos_bundle ./dcos_bundle
COPY telemetry ./telemetry
COPY blobs ./blobs
COPY access ./access
COPY packages_app ./packages_app
COPY ingest ./ingest
COPY operations ./operations
COPY portal ./portal
COPY registry_site ./registry_site
# Static files into $REGISTRY_DATA_DIR/static, served by WhiteNoise. The key only lets settings load
# (without it one would be generated into the image); no image ever carries a real one.
RUN SECRET_KEY=collectstatic-only python manage.py collectstatic --no-input \
 && chown -R registry:registry /var/lib/registry
USER registry
# 8000: web; 9100: a worker's metrics (WORKER_METRICS_PORT).
EXPOSE 8000 9100
CMD ["python", "manage.py", "runregistry", "--web-only", "--front", "nginx"]
