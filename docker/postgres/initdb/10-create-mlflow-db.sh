#!/bin/sh
# Runs once, on the first start of the postgres service (empty data volume): creates
# MLflow's role and database beside Airflow's (POSTGRES_DB). Values come from the
# environment set in docker-compose.yml; psql variables quote them safely.
set -eu
psql --no-psqlrc --set ON_ERROR_STOP=1 \
  --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  --set mlflow_db="$MLFLOW_DB" \
  --set mlflow_user="$MLFLOW_DB_USER" \
  --set mlflow_password="$MLFLOW_DB_PASSWORD" <<'SQL'
CREATE ROLE :"mlflow_user" LOGIN PASSWORD :'mlflow_password';
CREATE DATABASE :"mlflow_db" OWNER :"mlflow_user";
SQL
