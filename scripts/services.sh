#!/usr/bin/env bash
# Brings up the services Tokenmeter's tests and apps need, natively (no Docker):
#   postgres     Debian's PostgreSQL cluster    postgresql://tokenmeter:tokenmeter@127.0.0.1:5432/tokenmeter
#   kafka        Apache Kafka (KRaft, 1 node)    127.0.0.1:9092 (controller 127.0.0.1:9093)
#   stripe-mock  Stripe's API mock               http://127.0.0.1:12111 (https 127.0.0.1:12112)
#
# Usage: bash scripts/services.sh up|down|status [postgres] [kafka] [stripe-mock]
#        (no service named: all three)
#
# `up` is idempotent: a service that already answers is left alone. Downloads (Kafka jars from
# Maven Central, stripe-mock from the Go module proxy) are cached in $TOKENMETER_CACHE
# (default ~/.cache/tokenmeter), outside the checkout, so a fresh clone reuses them.
# Runtime state (Kafka data, logs, pid files) lives in .local/ in the checkout (gitignored).
# `down` stops Kafka and stripe-mock by pid file, and the Postgres cluster only if this script
# started it (recorded in .local/postgres.started-by-services).
#
# Environment knobs:
#   TOKENMETER_CACHE       download cache (default ~/.cache/tokenmeter)
#   TOKENMETER_STATE_DIR   runtime state: Kafka data and logs, pid files, the lock (default .local/)
#   TOKENMETER_PG_PORT     Postgres port (default 5432)
#   TOKENMETER_PG_CLUSTER  name of the Debian cluster to create when none serves that port
#                          (default main, or tokenmeter when main exists)
#   TOKENMETER_PG_DATABASES  databases to create (default "tokenmeter tokenmeter_test")
#   TOKENMETER_KAFKA_PORT  Kafka client port (default 9092)
#   TOKENMETER_KAFKA_CONTROLLER_PORT  KRaft controller port (default 9093)
# The chaos harness (scripts/chaos) uses these to run a second, disposable Postgres cluster and
# Kafka broker on other ports, so its faults never touch the services above.
#   KAFKA_START_TIMEOUT    seconds to wait for Kafka (default 120)
#   KAFKA_HEAP_OPTS        default -Xms512m -Xmx512m
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="${TOKENMETER_STATE_DIR:-$ROOT/.local}"
CACHE="${TOKENMETER_CACHE:-$HOME/.cache/tokenmeter}"

STRIPE_MOCK_VERSION="v0.203.0" # newest tag the Go module proxy serves (go list -m -versions)
STRIPE_MOCK_HTTP="127.0.0.1:12111"
STRIPE_MOCK_HTTPS="127.0.0.1:12112"

KAFKA_POM="$ROOT/infra/kafka/pom.xml"
KAFKA_HOST=127.0.0.1
KAFKA_PORT="${TOKENMETER_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${TOKENMETER_KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-120}"

PG_HOST=127.0.0.1
PG_PORT="${TOKENMETER_PG_PORT:-5432}"
PG_USER=tokenmeter
PG_PASSWORD=tokenmeter
read -ra PG_DATABASES <<<"${TOKENMETER_PG_DATABASES:-tokenmeter tokenmeter_test}"
PG_MARKER="$LOCAL/postgres.started-by-services"

say() { printf '[services] %s\n' "$*"; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# True when something accepts TCP connections on host:port.
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

# True when the pid in file $1 is alive and its command line contains $2 (guards against pid reuse).
pid_alive() {
  local file="$1" pattern="$2" pid
  [ -f "$file" ] || return 1
  pid="$(cat "$file" 2>/dev/null)" || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$pattern"
}

APT_UPDATED=""
apt_install() {
  have apt-get || die "need to install $* but apt-get is missing; install it by hand"
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "$APT_UPDATED" ]; then
    say "apt-get update"
    $SUDO apt-get update -q
    APT_UPDATED=1
  fi
  say "apt-get install -y $*"
  $SUDO apt-get install -y -q -o Dpkg::Use-Pty=0 "$@" 9>&-
}

# Serialises up/down per checkout (two `npm test` at once must not start two brokers).
# The daemons are started with fd 9 closed so they do not keep holding the lock.
lock() {
  mkdir -p "$LOCAL"
  exec 9>"$LOCAL/services.lock"
  if ! flock -n 9; then
    say "another services.sh is running in this checkout; waiting for it"
    flock 9
  fi
}

# ---------------------------------------------------------------------------------------------
# Postgres
# ---------------------------------------------------------------------------------------------

as_postgres() {
  if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else (cd / && sudo -u postgres "$@"); fi
}

pg_login_ok() {
  have psql || return 1
  PGPASSWORD="$PG_PASSWORD" PGCONNECT_TIMEOUT=3 psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres \
    -tAqX -c 'select 1' >/dev/null 2>&1
}

# Creates the missing databases; $1.. is the command prefix that runs psql as a role allowed to.
pg_ensure_databases() {
  local db exists
  for db in "${PG_DATABASES[@]}"; do
    exists="$("$@" -tAqX -v ON_ERROR_STOP=1 -c "select 1 from pg_database where datname = '$db'")"
    if [ "$exists" != 1 ]; then
      say "postgres: creating database $db"
      "$@" -qX -v ON_ERROR_STOP=1 -c "create database \"$db\" owner $PG_USER" >/dev/null
    fi
  done
}

pg_server_installed() {
  have pg_ctlcluster && have pg_lsclusters && compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null
}

postgres_up() {
  if port_open "$PG_HOST" "$PG_PORT" && pg_login_ok; then
    pg_ensure_databases env PGPASSWORD="$PG_PASSWORD" psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres
    say "postgres: already running on $PG_HOST:$PG_PORT"
    return
  fi

  if ! pg_server_installed; then
    say "postgres: server not installed; installing Debian's postgresql (first run only)"
    apt_install --no-install-recommends postgresql
    pg_server_installed || die "postgres: installed postgresql but found no server in /usr/lib/postgresql"
  fi

  local ver name status
  read -r ver name status < <(pg_lsclusters -h | awk -v p="$PG_PORT" '$3 == p { print $1, $2, $4; exit }') || true
  if [ -z "${ver:-}" ]; then
    ver="$(basename "$(dirname "$(dirname "$(compgen -G '/usr/lib/postgresql/*/bin/postgres' | sort -V | tail -n1)")")")"
    name="${TOKENMETER_PG_CLUSTER:-main}"
    if [ -z "${TOKENMETER_PG_CLUSTER:-}" ] && [ -d "/etc/postgresql/$ver/main" ]; then name=tokenmeter; fi
    say "postgres: creating cluster $ver/$name on port $PG_PORT"
    $SUDO pg_createcluster "$ver" "$name" -p "$PG_PORT" >/dev/null
    status=down
  fi

  if [ "$status" != online ]; then
    say "postgres: starting cluster $ver/$name"
    $SUDO pg_ctlcluster "$ver" "$name" start 9>&-
    echo "$ver $name" >"$PG_MARKER"
  fi

  as_postgres psql -p "$PG_PORT" -qX -v ON_ERROR_STOP=1 >/dev/null <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') THEN
    CREATE ROLE $PG_USER LOGIN SUPERUSER PASSWORD '$PG_PASSWORD';
  ELSE
    ALTER ROLE $PG_USER LOGIN SUPERUSER PASSWORD '$PG_PASSWORD';
  END IF;
END
\$\$;
SQL
  pg_ensure_databases as_postgres psql -p "$PG_PORT" -d postgres

  local i
  for i in $(seq 1 30); do
    pg_login_ok && break
    sleep 1
  done
  pg_login_ok || die "postgres: cluster $ver/$name is up but cannot log in as $PG_USER over TCP on $PG_HOST:$PG_PORT (check pg_hba.conf)"
  say "postgres: up on $PG_HOST:$PG_PORT (cluster $ver/$name)"
}

postgres_down() {
  if [ -f "$PG_MARKER" ]; then
    local ver name
    read -r ver name <"$PG_MARKER"
    say "postgres: stopping cluster $ver/$name (started by services.sh)"
    $SUDO pg_ctlcluster "$ver" "$name" stop || true
    rm -f "$PG_MARKER"
  else
    say "postgres: not started by services.sh; leaving it as it is"
  fi
}

postgres_status() {
  if port_open "$PG_HOST" "$PG_PORT" && { ! have psql || pg_login_ok; }; then
    say "postgres: up   postgresql://$PG_USER:$PG_PASSWORD@$PG_HOST:$PG_PORT/tokenmeter"
  else
    say "postgres: down postgresql://$PG_USER:$PG_PASSWORD@$PG_HOST:$PG_PORT/tokenmeter"
    return 1
  fi
}

# ---------------------------------------------------------------------------------------------
# Kafka
# ---------------------------------------------------------------------------------------------

KAFKA_DIR="$LOCAL/kafka"
KAFKA_PID="$KAFKA_DIR/kafka.pid"

kafka_libs_dir() {
  # Cache key: the pom's content, so changing the Kafka version fetches the new jars.
  local version key
  version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$KAFKA_POM")"
  key="$(sha256sum "$KAFKA_POM" | cut -c1-12)"
  echo "$CACHE/kafka-$version-$key"
}

# JVM options as Kafka's own kafka-run-class.sh / kafka-server-start.sh (G1, 20 ms pauses, headless).
read -ra KAFKA_HEAP <<<"${KAFKA_HEAP_OPTS:--Xms512m -Xmx512m}"
KAFKA_JAVA_OPTS=(
  "${KAFKA_HEAP[@]}" -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
  -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true
  "-Dlog4j.configuration=file:$ROOT/infra/kafka/log4j.properties" "-Dkafka.logs.dir=$KAFKA_DIR/logs"
)

kafka_fetch() {
  local dir
  dir="$(kafka_libs_dir)"
  if [ -f "$dir/.complete" ]; then
    return
  fi
  have java || apt_install openjdk-17-jre-headless
  have mvn || apt_install maven
  say "kafka: fetching $(basename "$dir" | cut -d- -f1-2) jars from Maven Central into $dir (first run only; Maven output follows)"
  rm -rf "$dir/libs.tmp"
  mkdir -p "$dir"
  # -B: no progress bars, one "Downloaded from central" line per artifact (the matching
  # "Downloading" lines are dropped to halve the noise); sed also drops stray colour codes.
  mvn -B -Dstyle.color=never -f "$KAFKA_POM" dependency:copy-dependencies -DoutputDirectory="$dir/libs.tmp" 2>&1 \
    | sed -u -e 's/\x1b\[[0-9;]*m//g' -e '/^\[INFO\] Downloading from /d' \
    || die "kafka: maven could not fetch the jars (see above)"
  rm -rf "$dir/libs"
  mv "$dir/libs.tmp" "$dir/libs"
  touch "$dir/.complete"
  say "kafka: jars cached ($(find "$dir/libs" -name '*.jar' | wc -l) jars)"
}

kafka_log_tail() {
  local f
  for f in "$KAFKA_DIR/logs/server.log" "$KAFKA_DIR/logs/stdout.log"; do
    if [ -s "$f" ]; then
      echo "----- last lines of $f -----" >&2
      tail -n 40 "$f" >&2
    fi
  done
}

# Waits until a metadata request (kafkajs admin listTopics) succeeds, or, without kafkajs
# (node_modules not installed yet), until the broker logs "Kafka Server started".
# $1 = deadline (epoch seconds), $2 = broker pid (fail fast if it exits), $3 = number of lines
# already in server.log before this start (older "started" lines do not count).
kafka_wait_ready() {
  local deadline="$1" pid="${2:-}" skip="${3:-0}"
  while ! port_open "$KAFKA_HOST" "$KAFKA_PORT"; do
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      kafka_log_tail
      die "kafka: the broker exited during start-up (logs above)"
    fi
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 1
  done
  if have node && [ -f "$ROOT/node_modules/kafkajs/package.json" ]; then
    KJS="$ROOT/node_modules/kafkajs" BROKER="$KAFKA_HOST:$KAFKA_PORT" DEADLINE="$deadline" node -e '
      const { Kafka, logLevel } = require(process.env.KJS);
      const deadline = Number(process.env.DEADLINE) * 1000;
      const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
      (async () => {
        for (;;) {
          const admin = new Kafka({ clientId: "services-sh", brokers: [process.env.BROKER], logLevel: logLevel.NOTHING,
            connectionTimeout: 2000, requestTimeout: 5000, retry: { retries: 0 } }).admin();
          try {
            await admin.connect();
            await admin.listTopics();
            await admin.disconnect();
            process.exit(0);
          } catch (e) {
            await admin.disconnect().catch(() => {});
            if (Date.now() > deadline) { console.error("[services] kafka metadata request failed: " + e.message); process.exit(1); }
            await sleep(500);
          }
        }
      })();' || return 1
  else
    until tail -n "+$((skip + 1))" "$KAFKA_DIR/logs/server.log" 2>/dev/null | grep -q 'Kafka Server started'; do
      [ "$(date +%s)" -lt "$deadline" ] || return 1
      sleep 1
    done
  fi
}

kafka_up() {
  if pid_alive "$KAFKA_PID" kafka.Kafka; then
    kafka_wait_ready "$(($(date +%s) + KAFKA_START_TIMEOUT))" "$(cat "$KAFKA_PID")" \
      || { kafka_log_tail; die "kafka: running (pid $(cat "$KAFKA_PID")) but not answering on $KAFKA_HOST:$KAFKA_PORT"; }
    say "kafka: already running on $KAFKA_HOST:$KAFKA_PORT (pid $(cat "$KAFKA_PID"))"
    return
  fi
  if port_open "$KAFKA_HOST" "$KAFKA_PORT"; then
    kafka_wait_ready "$(($(date +%s) + 10))" \
      || die "kafka: something listens on $KAFKA_HOST:$KAFKA_PORT but does not answer Kafka metadata requests"
    say "kafka: already running on $KAFKA_HOST:$KAFKA_PORT (not started from this checkout)"
    return
  fi

  kafka_fetch
  have java || apt_install openjdk-17-jre-headless
  local libs
  libs="$(kafka_libs_dir)/libs"
  mkdir -p "$KAFKA_DIR/data" "$KAFKA_DIR/logs"
  sed -e "s#@KAFKA_DATA_DIR@#$KAFKA_DIR/data#" -e "s#@KAFKA_PORT@#$KAFKA_PORT#g" -e "s#@KAFKA_CONTROLLER_PORT@#$KAFKA_CONTROLLER_PORT#g" \
    "$ROOT/infra/kafka/server.properties" >"$KAFKA_DIR/server.properties"

  if [ ! -f "$KAFKA_DIR/data/meta.properties" ]; then
    local cluster_id
    cluster_id="$(java "${KAFKA_JAVA_OPTS[@]}" -cp "$libs/*" kafka.tools.StorageTool random-uuid)"
    say "kafka: formatting KRaft storage in $KAFKA_DIR/data (cluster id $cluster_id)"
    java "${KAFKA_JAVA_OPTS[@]}" -cp "$libs/*" kafka.tools.StorageTool format -t "$cluster_id" \
      -c "$KAFKA_DIR/server.properties" --ignore-formatted >>"$KAFKA_DIR/logs/stdout.log" 2>&1 \
      || { kafka_log_tail; die "kafka: storage format failed"; }
  fi

  say "kafka: starting broker on $KAFKA_HOST:$KAFKA_PORT (log: $KAFKA_DIR/logs/server.log)"
  local log_lines=0
  if [ -f "$KAFKA_DIR/logs/server.log" ]; then log_lines="$(wc -l <"$KAFKA_DIR/logs/server.log")"; fi
  nohup java "${KAFKA_JAVA_OPTS[@]}" -cp "$libs/*" kafka.Kafka "$KAFKA_DIR/server.properties" \
    >>"$KAFKA_DIR/logs/stdout.log" 2>&1 </dev/null 9>&- &
  local pid=$!
  echo "$pid" >"$KAFKA_PID"
  local started=$SECONDS
  if ! kafka_wait_ready "$(($(date +%s) + KAFKA_START_TIMEOUT))" "$pid" "$log_lines"; then
    kafka_log_tail
    kill "$pid" 2>/dev/null || true
    rm -f "$KAFKA_PID"
    die "kafka: not ready after ${KAFKA_START_TIMEOUT}s (logs above)"
  fi
  say "kafka: up on $KAFKA_HOST:$KAFKA_PORT (pid $pid, ready in $((SECONDS - started))s)"
}

stop_by_pidfile() {
  local label="$1" file="$2" pattern="$3" timeout="$4" pid i
  if ! pid_alive "$file" "$pattern"; then
    rm -f "$file"
    say "$label: not running from this checkout"
    return
  fi
  pid="$(cat "$file")"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout * 2; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "$label: still running after ${timeout}s; killing pid $pid"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
  say "$label: stopped (pid $pid)"
}

kafka_down() { stop_by_pidfile kafka "$KAFKA_PID" kafka.Kafka 30; }

kafka_status() {
  if port_open "$KAFKA_HOST" "$KAFKA_PORT"; then
    say "kafka: up   $KAFKA_HOST:$KAFKA_PORT"
  else
    say "kafka: down $KAFKA_HOST:$KAFKA_PORT"
    return 1
  fi
}

# ---------------------------------------------------------------------------------------------
# stripe-mock
# ---------------------------------------------------------------------------------------------

SM_DIR="$LOCAL/stripe-mock"
SM_PID="$SM_DIR/stripe-mock.pid"

stripe_mock_answers() {
  curl -sf -m 3 -o /dev/null -H 'Authorization: Bearer sk_test_123' "http://$STRIPE_MOCK_HTTP/v1/customers"
}

stripe_mock_up() {
  have curl || apt_install curl
  if stripe_mock_answers; then
    if pid_alive "$SM_PID" stripe-mock; then
      say "stripe-mock: already running on http://$STRIPE_MOCK_HTTP (pid $(cat "$SM_PID"))"
    else
      say "stripe-mock: already running on http://$STRIPE_MOCK_HTTP (not started from this checkout)"
    fi
    return
  fi

  local bindir="$CACHE/stripe-mock-$STRIPE_MOCK_VERSION"
  if [ ! -x "$bindir/stripe-mock" ]; then
    have go || die "stripe-mock: Go is needed to build it (go install github.com/stripe/stripe-mock@$STRIPE_MOCK_VERSION; needs Go >= 1.22.1)"
    say "stripe-mock: go install github.com/stripe/stripe-mock@$STRIPE_MOCK_VERSION into $bindir (first run only, about a minute)"
    mkdir -p "$bindir"
    (cd "$bindir" && GOBIN="$bindir" GOFLAGS=-buildvcs=false go install "github.com/stripe/stripe-mock@$STRIPE_MOCK_VERSION") \
      || die "stripe-mock: go install failed (see above)"
  fi

  mkdir -p "$SM_DIR"
  say "stripe-mock: starting on http://$STRIPE_MOCK_HTTP (log: $SM_DIR/stripe-mock.log)"
  nohup "$bindir/stripe-mock" -http-addr "$STRIPE_MOCK_HTTP" -https-addr "$STRIPE_MOCK_HTTPS" \
    >>"$SM_DIR/stripe-mock.log" 2>&1 </dev/null 9>&- &
  local pid=$! i
  echo "$pid" >"$SM_PID"
  for ((i = 0; i < 60; i++)); do
    stripe_mock_answers && break
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 20 "$SM_DIR/stripe-mock.log" >&2 || true
      rm -f "$SM_PID"
      die "stripe-mock: exited during start-up (log above)"
    fi
    sleep 0.5
  done
  if ! stripe_mock_answers; then
    tail -n 20 "$SM_DIR/stripe-mock.log" >&2 || true
    kill "$pid" 2>/dev/null || true
    rm -f "$SM_PID"
    die "stripe-mock: not answering on http://$STRIPE_MOCK_HTTP after 30s (log above)"
  fi
  say "stripe-mock: up on http://$STRIPE_MOCK_HTTP (pid $pid)"
}

stripe_mock_down() { stop_by_pidfile stripe-mock "$SM_PID" stripe-mock 10; }

stripe_mock_status() {
  if have curl && stripe_mock_answers; then
    say "stripe-mock: up   http://$STRIPE_MOCK_HTTP"
  else
    say "stripe-mock: down http://$STRIPE_MOCK_HTTP"
    return 1
  fi
}

# ---------------------------------------------------------------------------------------------

usage() {
  echo "usage: bash scripts/services.sh up|down|status [postgres] [kafka] [stripe-mock]" >&2
  exit 2
}

cmd="${1:-}"
shift || true
WANT_POSTGRES="" WANT_KAFKA="" WANT_STRIPE_MOCK=""
if [ $# -eq 0 ]; then set -- postgres kafka stripe-mock; fi
for service in "$@"; do
  case "$service" in
    postgres) WANT_POSTGRES=1 ;;
    kafka) WANT_KAFKA=1 ;;
    stripe-mock) WANT_STRIPE_MOCK=1 ;;
    *) usage ;;
  esac
done

case "$cmd" in
  up)
    lock
    start=$SECONDS
    if [ -n "$WANT_POSTGRES" ]; then postgres_up; fi
    if [ -n "$WANT_KAFKA" ]; then kafka_up; fi
    if [ -n "$WANT_STRIPE_MOCK" ]; then stripe_mock_up; fi
    say "all services up in $((SECONDS - start))s"
    ;;
  down)
    lock
    if [ -n "$WANT_STRIPE_MOCK" ]; then stripe_mock_down; fi
    if [ -n "$WANT_KAFKA" ]; then kafka_down; fi
    if [ -n "$WANT_POSTGRES" ]; then postgres_down; fi
    ;;
  status)
    rc=0
    if [ -n "$WANT_POSTGRES" ]; then postgres_status || rc=1; fi
    if [ -n "$WANT_KAFKA" ]; then kafka_status || rc=1; fi
    if [ -n "$WANT_STRIPE_MOCK" ]; then stripe_mock_status || rc=1; fi
    exit "$rc"
    ;;
  *)
    usage
    ;;
esac
