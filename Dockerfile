# The coding backend for Label Studio. CPU torch by default; for a CUDA build:
#   docker build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126 .
# The model named by MODEL_NAME is fetched at build time, so containers start offline.
FROM python:3.11-slim

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG MODEL_NAME=sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HOME=/models \
    MODEL_NAME=${MODEL_NAME} \
    MODEL_DIR=/data/models \
    PORT=9090

RUN useradd --create-home --uid 1000 coder && mkdir -p /app /data/models /models /mlflow \
    && chown -R coder /data /models /mlflow

WORKDIR /app
RUN pip install --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"
COPY pyproject.toml README.md ./
COPY backend ./backend
RUN pip install . && rm -rf /root/.cache

USER coder
RUN python -c "import os; from sentence_transformers import SentenceTransformer; SentenceTransformer(os.environ['MODEL_NAME'])"
ENV HF_HUB_OFFLINE=1

VOLUME ["/data", "/models"]
EXPOSE 9090
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 CMD ["coding-backend", "healthcheck"]
CMD ["coding-backend", "serve", "--host", "0.0.0.0"]
