# The coding backend for Label Studio (also runs the compose file's MLflow server).
#
#   docker build -t label-studio-coding-backend .
#
# Build arguments (docker compose passes them from .env; README: "Building offline or behind a proxy"):
#   BASE_IMAGE       a Debian-based image with Python 3.11 and venv (default python:3.11-slim)
#   TORCH_SPEC       which torch (default torch==2.13.0)
#   TORCH_INDEX_URL  where torch comes from (default: PyTorch's CPU index; a CUDA index for GPUs)
#   PIP_INDEX_URL    where everything else comes from (default: PyPI)
#   MODEL_NAME       the sentence transformer, fetched from the Hugging Face hub at build time ...
#   MODEL_SRC        ... unless this folder of the build context holds a saved model (default docker/model)
# Wheels in docker/wheels/ are preferred to any index (a local torch wheel, say); certificates
# (*.crt) in docker/certs/ are trusted at build and run time (a proxy that inspects TLS).
# The model is baked into the image: containers never fetch anything.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ARG TORCH_SPEC=torch==2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG PIP_INDEX_URL=https://pypi.org/simple
ARG MODEL_NAME=sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2
ARG MODEL_SRC=docker/model

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \
    PATH=/opt/venv/bin:$PATH \
    HF_HOME=/tmp/hf-home \
    MODEL_DIR=/data/models \
    PORT=9090

COPY docker/certs/ /usr/local/share/ca-certificates/extra/
RUN set -eu; \
    if ls /usr/local/share/ca-certificates/extra/*.crt > /dev/null 2>&1; then update-ca-certificates; fi; \
    useradd --create-home --uid 1000 coder; \
    mkdir -p /app /data/models /mlflow; \
    chown -R coder /data /mlflow; \
    python3 -m venv /opt/venv

WORKDIR /app
COPY docker/wheels/ /tmp/wheels/
RUN pip install --find-links /tmp/wheels --index-url "${TORCH_INDEX_URL}" --extra-index-url "${PIP_INDEX_URL}" \
        "${TORCH_SPEC}" && rm -rf /tmp/wheels
# Dependencies first (a layer that survives changes of code and README: an empty README stands in
# for the metadata's), then the package itself.
COPY pyproject.toml setup.py ./
RUN mkdir backend label_config && touch backend/__init__.py label_config/__init__.py README.md \
    && pip install --index-url "${PIP_INDEX_URL}" ".[scale]" && pip uninstall -y label-studio-coding-backend \
    && rm -rf backend label_config build *.egg-info README.md
COPY README.md ./
COPY backend ./backend
COPY label_config ./label_config
RUN pip install --no-deps . && rm -rf build *.egg-info

# The model: a saved folder from the build context, or MODEL_NAME from the hub, saved to /opt/model.
COPY ${MODEL_SRC}/ /opt/model/
RUN set -eu; \
    if [ -f /opt/model/config.json ]; then \
        echo "model: the folder ${MODEL_SRC} of the build context"; \
    else \
        rm -rf /opt/model; \
        python -c "import sys; from sentence_transformers import SentenceTransformer; SentenceTransformer(sys.argv[1]).save('/opt/model')" "${MODEL_NAME}"; \
        rm -rf /tmp/hf-home; \
    fi; \
    python -c "from sentence_transformers import SentenceTransformer; SentenceTransformer('/opt/model')"
ENV MODEL_NAME=/opt/model \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1

USER coder
VOLUME ["/data"]
EXPOSE 9090
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 CMD ["coding-backend", "healthcheck"]
CMD ["coding-backend", "serve", "--host", "0.0.0.0"]
