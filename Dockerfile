# One image for the gateway (`python -m api`, the default command) and the worker
# (`python -m worker`); docker-compose.yml runs both from it.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY api ./api
COPY activities ./activities
COPY capstan ./capstan
COPY keptn ./keptn
COPY store ./store
COPY worker ./worker
COPY workflows ./workflows
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
COPY --from=build /install /usr/local
# Nothing here needs root.
RUN useradd --system --uid 10001 --home-dir /var/lib/capstan --create-home capstan
USER capstan
WORKDIR /var/lib/capstan
ENV PYTHONUNBUFFERED=1 \
    CAPSTAN_DATA_DIR=/var/lib/capstan \
    CAPSTAN_LOG_FORMAT=json \
    CAPSTAN_API_HOST=0.0.0.0 \
    CAPSTAN_API_PORT=8080
EXPOSE 8080
CMD ["python", "-m", "api"]
