# The ews image: one image, three services (`ews worker ingest|triggers|notify`).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 EWS_WEB_HOST=0.0.0.0 EWS_CONFIG_DIR=/etc/ews EWS_DATA_DIR=/var/lib/ews
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY services ./services
RUN pip install --no-cache-dir . && useradd --system --uid 10001 ews && mkdir -p /var/lib/ews && chown ews /var/lib/ews
COPY config /etc/ews
USER ews
EXPOSE 6061 6062 6063
ENTRYPOINT ["ews"]
CMD ["--help"]
