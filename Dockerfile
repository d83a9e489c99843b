# Kollega: one image for every process (worker, scheduler, serve); the command picks which.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PLAYWRIGHT_BROWSERS_PATH=/ms-playwright \
    KOLLEGA_VAR_DIR=/var/lib/kollega \
    KOLLEGA_CONFIG=/app/config/kollega.toml \
    KOLLEGA_DEMO_CONFIG=/app/config/demo.toml \
    KOLLEGA_SCHEDULER__SCHEDULES_DIR=/app/schedules

WORKDIR /app
COPY pyproject.toml README.md ./
COPY core ./core
COPY connectors ./connectors
COPY robots ./robots
COPY sandbox ./sandbox
COPY config ./config
COPY schedules ./schedules

# xmlsec1: the XML-signature program pysaml2 verifies SAML assertions with (core/web/saml.py).
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends xmlsec1 \
    && rm -rf /var/lib/apt/lists/*

RUN pip install . \
    && playwright install --with-deps chromium \
    && useradd --system --create-home --uid 10001 kollega \
    && mkdir -p /var/lib/kollega && chown kollega /var/lib/kollega

USER kollega
VOLUME ["/var/lib/kollega"]
EXPOSE 8000
ENTRYPOINT ["kollega"]
CMD ["worker"]
