# The MLflow tracking server of the compose stack, with the PostgreSQL driver.
FROM python:3.11-slim
RUN pip install --no-cache-dir "mlflow==3.17.2" "psycopg2-binary>=2.9" \
    && useradd --create-home --uid 1000 mlflow && mkdir /mlartifacts && chown mlflow /mlartifacts
USER mlflow
EXPOSE 5000
