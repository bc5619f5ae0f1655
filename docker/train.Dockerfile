# Offline jobs: data generation, training (TensorFlow + tf2onnx), batch item indexing.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2 \
    PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY service ./service
COPY training ./training
RUN pip install ".[train]" \
    && useradd --create-home --uid 10001 recsys \
    && mkdir -p /data /bundles && chown recsys /data /bundles  # named volumes inherit this

USER recsys
ENTRYPOINT ["recsys"]
