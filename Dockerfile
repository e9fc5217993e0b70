# The gateway image used by compose.yaml. Providers without an API key are served by the
# built-in simulator, so the image runs with no secrets at all.
FROM python:3.11-slim

WORKDIR /srv/gateway
COPY pyproject.toml README.md ./
COPY app ./app
RUN pip install --no-cache-dir . \
    && useradd --system --no-create-home gateway
USER gateway

EXPOSE 8000
CMD ["python", "-m", "app", "serve", "--host", "0.0.0.0", "--port", "8000"]
