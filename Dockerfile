# syntax=docker/dockerfile:1
# Synthgate image: Airflow 3 (api-server, scheduler, dag-processor, triggerer, Celery
# worker) and the MLflow server, all from the project's lock file. See docker-compose.yml.
FROM python:3.11-slim-bookworm

# torch is pinned in requirements.lock; PyPI's Linux wheel is a CUDA build (several GB),
# so the CPU wheel index is added by default. Build with --build-arg TORCH_INDEX_URL=
# (empty) to use PyPI only.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG SYNTHGATE_UID=50000

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    AIRFLOW_HOME=/opt/airflow

# curl: healthchecks; git: DVC.
RUN apt-get update \
    && apt-get install --yes --no-install-recommends curl git \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --gid "${SYNTHGATE_UID}" synthgate \
    && useradd --uid "${SYNTHGATE_UID}" --gid synthgate --home-dir /opt/airflow \
        --create-home --shell /bin/bash synthgate \
    && mkdir -p /opt/airflow/logs /opt/airflow/auth \
    && chown -R synthgate:synthgate /opt/airflow

WORKDIR /opt/synthgate

# Dependencies first (cached until requirements.lock changes), then the project itself.
COPY requirements.lock ./
RUN pip install ${TORCH_INDEX_URL:+--extra-index-url "${TORCH_INDEX_URL}"} -r requirements.lock

COPY --chown=synthgate:synthgate . .
RUN pip install --no-deps -e . \
    && python -c "import airflow, mlflow, pipelines"

USER synthgate
EXPOSE 8080 5000
CMD ["airflow", "version"]
