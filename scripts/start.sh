#!/usr/bin/env bash
# `npm start`: brings up Postgres, Kafka and stripe-mock, applies migrations, seeds the price
# book, then runs the ingestor, the API, the invoicer and the notifier until Ctrl-C.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/services.sh up
export DATABASE_URL="${DATABASE_URL:-postgresql://tokenmeter:tokenmeter@127.0.0.1:5432/tokenmeter}"
export KAFKA_BROKERS="${KAFKA_BROKERS:-127.0.0.1:9092}"
export PORT="${PORT:-3000}"

echo "[start] applying migrations to ${DATABASE_URL#*@}"
npm run --silent db:migrate
npm run --silent db:seed

pids=()
cleanup() {
  echo "[start] stopping (services keep running; npm run services:down stops them)"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait || true
}
trap cleanup INT TERM EXIT

npm run --silent start:ingestor & pids+=($!)
npm run --silent start:api & pids+=($!)
npm run --silent start:invoicer & pids+=($!)
npm run --silent start:notifier & pids+=($!)

cat <<INFO
[start] Tokenmeter is starting:
  API            http://127.0.0.1:${PORT}   (docs: /docs, OpenAPI: /openapi.json, health: /health/ready)
  HTTP ingest    POST http://127.0.0.1:${PORT}/v1/events  (Authorization: Bearer \${TOKENMETER_INGEST_TOKEN:-dev-ingest-token})
  Kafka          ${KAFKA_BROKERS}  topic gateway.usage.v1, dead letters gateway.usage.v1.dlq, budget alerts tokenmeter.alerts.v1
  Postgres       ${DATABASE_URL#*@}
  stripe-mock    http://127.0.0.1:12111
  Demo traffic   npm run demo   (in another terminal: four weeks of usage for five accounts, and keys to sign in)
  Ctrl-C stops the apps.
INFO
wait -n "${pids[@]}"
