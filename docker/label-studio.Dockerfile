# Label Studio from PyPI, for machines that reach PyPI but not Docker Hub (our CI). It stands in for
# heartexlabs/label-studio: the same data directory (/label-studio/data), port (8080) and
# environment variables (LABEL_STUDIO_*, DJANGO_DB and POSTGRE_* for PostgreSQL).
#
#   docker build -f docker/label-studio.Dockerfile --build-arg BASE_IMAGE=coding-base:bookworm .
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
ARG LABEL_STUDIO_VERSION=1.23.2
ARG PIP_INDEX_URL=https://pypi.org/simple

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    PATH=/opt/venv/bin:$PATH \
    LABEL_STUDIO_BASE_DATA_DIR=/label-studio/data

COPY docker/certs/ /usr/local/share/ca-certificates/extra/
RUN set -eu; \
    if ls /usr/local/share/ca-certificates/extra/*.crt > /dev/null 2>&1; then update-ca-certificates; fi; \
    useradd --uid 1001 --home-dir /label-studio --create-home label-studio; \
    mkdir -p /label-studio/data; \
    chown -R label-studio /label-studio; \
    python3 -m venv /opt/venv; \
    pip install --index-url "${PIP_INDEX_URL}" "label-studio==${LABEL_STUDIO_VERSION}"

USER label-studio
WORKDIR /label-studio
VOLUME ["/label-studio/data"]
EXPOSE 8080
CMD ["label-studio", "start", "--no-browser", "--internal-host", "0.0.0.0", "--port", "8080"]
