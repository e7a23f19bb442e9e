#!/usr/bin/env bash
# Brings up the services Tokenmeter's tests and apps need, natively (no Docker):
#   postgres     Debian's PostgreSQL cluster    postgresql://tokenmeter:tokenmeter@127.0.0.1:5432/tokenmeter
#   kafka        Apache Kafka (KRaft, 1 node)    127.0.0.1:9092 (controller 127.0.0.1:9093)
#   stripe-mock  Stripe's API mock               http://127.0.0.1:12111 (https 127.0.0.1:12112)
#
# Usage: bash scripts/services.sh up|down|status [postgres] [kafka] [stripe-mock] [postgres-replica] [--replica]
#        (no service named: all three; --replica adds postgres-replica)
#
#   postgres-replica  a streaming replica of that Postgres   postgresql://tokenmeter:tokenmeter@127.0.0.1:5434/tokenmeter
#        (read-only, for DATABASE_READ_URL; docs/operations.md "A read replica"). Only with --replica
#        or when named: plain `up` never creates it. `up` makes it once (a Debian cluster filled by
#        pg_basebackup, streaming through a physical replication slot) and afterwards only starts it.
#        It never restarts or reconfigures the primary beyond a role and, if missing, one pg_hba line
#        (applied with a reload); a primary that cannot stream without a restart is reported, not touched.
#        `down` drops the replica and its slot (a slot left behind would keep WAL on the primary).
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
#   TOKENMETER_PG_REPLICA_PORT     the replica's port (default 5434; 5433 is the chaos harness's)
#   TOKENMETER_PG_REPLICA_CLUSTER  the replica's Debian cluster name, also its slot's (default tokenmeter_replica)
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

PG_REPLICA_PORT="${TOKENMETER_PG_REPLICA_PORT:-5434}"
PG_REPLICA_CLUSTER="${TOKENMETER_PG_REPLICA_CLUSTER:-tokenmeter_replica}"
PG_REPLICA_SLOT="$PG_REPLICA_CLUSTER"
PG_REPLICATION_USER=tokenmeter_replicator
PG_REPLICATION_PASSWORD=tokenmeter_replicator
PG_REPLICA_MARKER="$LOCAL/postgres-replica.created-by-services"
PG_REPLICA_START_TIMEOUT="${PG_REPLICA_START_TIMEOUT:-60}"

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
# Postgres read replica (streaming, physical): a Debian cluster on PG_REPLICA_PORT
# ---------------------------------------------------------------------------------------------

# psql as the tokenmeter superuser on the primary / the replica: one value per line, no psqlrc.
pg_primary() {
  PGPASSWORD="$PG_PASSWORD" PGCONNECT_TIMEOUT=3 psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -tAqX -v ON_ERROR_STOP=1 "$@"
}
pg_replica() {
  PGPASSWORD="$PG_PASSWORD" PGCONNECT_TIMEOUT=3 psql -h "$PG_HOST" -p "$PG_REPLICA_PORT" -U "$PG_USER" -d postgres -tAqX -v ON_ERROR_STOP=1 "$@"
}

# "t": a standby answers on the replica port; "f": a server that is not one; "": nothing we can log in to.
replica_recovery_state() { pg_replica -c 'select pg_is_in_recovery()' 2>/dev/null || true; }

# Both report the same system identifier only when one is a physical copy of the other.
replica_follows_primary() {
  local sql='select system_identifier from pg_control_system()'
  [ "$(pg_replica -c "$sql" 2>/dev/null)" = "$(pg_primary -c "$sql")" ]
}

# "port status datadir logfile" of the Debian cluster <$1>/$2, or nothing.
replica_cluster() {
  pg_lsclusters -h 2>/dev/null | awk -v v="$1" -v n="$2" '$1 == v && $2 == n { print $3, $4, $6, $7; exit }'
}

replica_slot_exists() {
  [ "$(pg_primary -c "select count(*) from pg_replication_slots where slot_name = '$PG_REPLICA_SLOT'")" = 1 ]
}

# An inactive slot of that name holds WAL on the primary for a replica that no longer reads it.
# Prints how many were dropped (0 or 1).
replica_drop_slot() {
  pg_primary -c "select count(pg_drop_replication_slot(slot_name)) from pg_replication_slots where slot_name = '$1' and not active"
}

replication_login() {
  PGPASSWORD="$PG_REPLICATION_PASSWORD" PGCONNECT_TIMEOUT=3 \
    psql "host=$PG_HOST port=$PG_PORT user=$PG_REPLICATION_USER dbname=postgres replication=true" -tAqX -c 'IDENTIFY_SYSTEM' 2>&1 >/dev/null
}

# What the primary needs for a streaming replica, done only in ways that need no restart (others
# share it): a replication role, and a pg_hba line for it when none admits it (then a reload).
# wal_level and max_wal_senders only change with a restart: checked, and reported if wrong.
replica_prepare_primary() {
  local wal_level senders used err hba i
  wal_level="$(pg_primary -c 'show wal_level')"
  case "$wal_level" in
    replica | logical) ;;
    *) die "postgres-replica: the primary has wal_level=$wal_level; streaming needs replica (PostgreSQL's default), which only a restart applies, and services.sh never restarts a running Postgres. Run ALTER SYSTEM SET wal_level = replica and restart it at a quiet moment" ;;
  esac
  read -r senders used < <(pg_primary -F ' ' -c "select current_setting('max_wal_senders')::int, (select count(*) from pg_stat_replication)")
  [ "$used" -lt "$senders" ] \
    || die "postgres-replica: all $senders WAL senders of the primary are in use (max_wal_senders, which only a restart raises)"

  pg_primary >/dev/null <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_REPLICATION_USER') THEN
    CREATE ROLE $PG_REPLICATION_USER LOGIN REPLICATION PASSWORD '$PG_REPLICATION_PASSWORD';
  ELSIF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_REPLICATION_USER' AND rolcanlogin AND rolreplication) THEN
    ALTER ROLE $PG_REPLICATION_USER LOGIN REPLICATION PASSWORD '$PG_REPLICATION_PASSWORD';
  END IF;
END
\$\$;
SQL

  err="$(replication_login)" && return
  case "$err" in
    *"no pg_hba.conf entry"*) ;;
    *) die "postgres-replica: cannot open a replication connection to $PG_HOST:$PG_PORT as $PG_REPLICATION_USER: $err" ;;
  esac
  hba="$(pg_primary -c 'show hba_file')"
  say "postgres-replica: allowing replication connections for $PG_REPLICATION_USER from $PG_HOST in $hba (a reload, no restart)"
  printf '# scripts/services.sh (postgres-replica): streaming replication on this machine\nhost    replication     %s    %s/32    scram-sha-256\n' \
    "$PG_REPLICATION_USER" "$PG_HOST" | $SUDO tee -a "$hba" >/dev/null
  pg_primary -c 'select pg_reload_conf()' >/dev/null
  for i in $(seq 1 20); do
    err="$(replication_login)" && return
    sleep 0.25
  done
  die "postgres-replica: still no replication connection after adding the pg_hba line (an earlier line of $hba may reject it): $err"
}

replica_log_tail() {
  local log="$1"
  if $SUDO test -s "$log"; then
    echo "----- last lines of $log -----" >&2
    $SUDO tail -n 30 "$log" >&2
  fi
}

# A new cluster filled by pg_basebackup from the primary: -R writes standby.signal and the
# primary_conninfo, -C -S creates the physical slot it streams through, -c fast starts the backup
# at once (an immediate checkpoint on the primary, instead of waiting for a spread one).
# --no-sync: the replica's first start syncs the data directory anyway (see the conf below).
replica_build() {
  local ver="$1" conf settings port status datadir log started
  say "postgres-replica: creating cluster $ver/$PG_REPLICA_CLUSTER on port $PG_REPLICA_PORT"
  # initdb --no-sync: its files are replaced by the base backup at once.
  $SUDO pg_createcluster "$ver" "$PG_REPLICA_CLUSTER" -p "$PG_REPLICA_PORT" --start-conf=manual -- --no-sync >/dev/null
  echo "$ver $PG_REPLICA_CLUSTER" >"$PG_REPLICA_MARKER"
  read -r port status datadir log < <(replica_cluster "$ver" "$PG_REPLICA_CLUSTER")
  case "$datadir" in
    */"$PG_REPLICA_CLUSTER") ;;
    *) die "postgres-replica: unexpected data directory '$datadir' for cluster $ver/$PG_REPLICA_CLUSTER" ;;
  esac
  # A hot standby refuses to start with any of these lower than its primary's.
  settings="$(pg_primary -c "select format('%s = %s', name, setting) from pg_settings
    where name in ('max_connections', 'max_worker_processes', 'max_wal_senders', 'max_prepared_transactions', 'max_locks_per_transaction')
    order by name")"
  conf="/etc/postgresql/$ver/$PG_REPLICA_CLUSTER/conf.d/tokenmeter-replica.conf"
  # recovery_init_sync_method: the first start after a base backup fsyncs the whole data directory
  # file by file (seconds for a few thousand files); one syncfs() per file system does the same.
  printf '# scripts/services.sh: a hot standby of %s:%s\nhot_standby = on\nrecovery_init_sync_method = syncfs\n%s\n' \
    "$PG_HOST" "$PG_PORT" "$settings" | $SUDO tee "$conf" >/dev/null

  replica_drop_slot "$PG_REPLICA_SLOT" >/dev/null
  as_postgres find "$datadir" -mindepth 1 -delete
  say "postgres-replica: pg_basebackup from $PG_HOST:$PG_PORT into $datadir (slot $PG_REPLICA_SLOT)"
  started=$SECONDS
  as_postgres env PGPASSWORD="$PG_REPLICATION_PASSWORD" "/usr/lib/postgresql/$ver/bin/pg_basebackup" \
    -h "$PG_HOST" -p "$PG_PORT" -U "$PG_REPLICATION_USER" -D "$datadir" -X stream -C -S "$PG_REPLICA_SLOT" -R -c fast --no-sync \
    || die "postgres-replica: pg_basebackup failed (see above)"
  say "postgres-replica: base backup of $($SUDO du -sh "$datadir" | cut -f1) in $((SECONDS - started))s"
}

# Starts the cluster and waits until it streams and has replayed what the primary had when asked,
# so whoever started it reads current data.
replica_start() {
  local ver="$1" log="$2" target deadline
  say "postgres-replica: starting cluster $ver/$PG_REPLICA_CLUSTER"
  if ! $SUDO pg_ctlcluster "$ver" "$PG_REPLICA_CLUSTER" start 9>&-; then
    replica_log_tail "$log"
    return 1
  fi
  target="$(pg_primary -c 'select pg_current_wal_lsn()')"
  deadline=$((SECONDS + PG_REPLICA_START_TIMEOUT))
  until [ "$(pg_replica -c "select status = 'streaming' and pg_last_wal_replay_lsn() >= '$target' from pg_stat_wal_receiver" 2>/dev/null)" = t ]; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      replica_log_tail "$log"
      return 1
    fi
    sleep 0.2
  done
}

postgres_replica_up() {
  local started=$SECONDS ver state port status datadir log
  # The cluster name is also the slot's, which allows only these.
  [[ "$PG_REPLICA_CLUSTER" =~ ^[a-z0-9_]{1,63}$ ]] || die "postgres-replica: TOKENMETER_PG_REPLICA_CLUSTER must be lowercase letters, digits and _"
  pg_login_ok || die "postgres-replica: the primary on $PG_HOST:$PG_PORT is not up"
  ver=$(($(pg_primary -c 'show server_version_num') / 10000))
  [ -x "/usr/lib/postgresql/$ver/bin/pg_basebackup" ] \
    || die "postgres-replica: the primary runs PostgreSQL $ver, whose server binaries are not installed here (postgresql-$ver)"

  state="$(replica_recovery_state)"
  if [ "$state" = t ]; then
    replica_follows_primary \
      || die "postgres-replica: the standby on $PG_HOST:$PG_REPLICA_PORT is a copy of another primary (set TOKENMETER_PG_REPLICA_PORT)"
    if [ "$(pg_replica -c 'select pg_is_wal_replay_paused()')" = t ]; then
      say "postgres-replica: WARNING: replay is paused (pg_wal_replay_pause()); SELECT pg_wal_replay_resume() on it resumes it"
    fi
    say "postgres-replica: already running on $PG_HOST:$PG_REPLICA_PORT"
    return
  fi
  if [ -n "$state" ] || port_open "$PG_HOST" "$PG_REPLICA_PORT"; then
    die "postgres-replica: something that is not a standby of the primary listens on $PG_HOST:$PG_REPLICA_PORT (set TOKENMETER_PG_REPLICA_PORT)"
  fi

  replica_prepare_primary
  read -r port status datadir log < <(replica_cluster "$ver" "$PG_REPLICA_CLUSTER") || true
  if [ -n "${port:-}" ]; then
    # Defined but stopped (a reboot, a crash): its slot kept the WAL it has not seen, so starting
    # it is enough. Anything else (no slot, another port, not a standby) is rebuilt: it is a copy.
    if [ "$port" = "$PG_REPLICA_PORT" ] && [ "${status%%,*}" = down ] && replica_slot_exists \
      && $SUDO test -f "$datadir/standby.signal" && replica_start "$ver" "$log"; then
      say "postgres-replica: up on $PG_HOST:$PG_REPLICA_PORT, streaming from $PG_HOST:$PG_PORT (cluster $ver/$PG_REPLICA_CLUSTER, ready in $((SECONDS - started))s)"
      return
    fi
    say "postgres-replica: cluster $ver/$PG_REPLICA_CLUSTER cannot resume streaming; making it again"
    $SUDO pg_dropcluster --stop "$ver" "$PG_REPLICA_CLUSTER"
  fi
  replica_build "$ver"
  read -r port status datadir log < <(replica_cluster "$ver" "$PG_REPLICA_CLUSTER")
  replica_start "$ver" "$log" || die "postgres-replica: cluster $ver/$PG_REPLICA_CLUSTER is not streaming after ${PG_REPLICA_START_TIMEOUT}s (log above)"
  say "postgres-replica: up on $PG_HOST:$PG_REPLICA_PORT, streaming from $PG_HOST:$PG_PORT (cluster $ver/$PG_REPLICA_CLUSTER, ready in $((SECONDS - started))s)"
}

# Drops the cluster and its slot rather than only stopping it: a stopped replica's slot would keep
# every WAL segment written after it on the primary (a shared disk); it is only a copy, which `up` makes again.
postgres_replica_down() {
  if [ ! -f "$PG_REPLICA_MARKER" ]; then
    say "postgres-replica: not created by services.sh from this checkout; leaving it as it is"
    return
  fi
  local ver name
  read -r ver name <"$PG_REPLICA_MARKER"
  if [ -n "$(replica_cluster "$ver" "$name")" ]; then
    say "postgres-replica: dropping cluster $ver/$name (created by services.sh)"
    $SUDO pg_dropcluster --stop "$ver" "$name" || true
  fi
  # The primary's WAL sender lets go of the slot a moment after the replica stopped.
  local i
  for i in $(seq 1 20); do
    pg_login_ok || break
    [ "$(pg_primary -c "select count(*) from pg_replication_slots where slot_name = '$name'")" = 0 ] && break
    if [ "$(replica_drop_slot "$name")" = 1 ]; then
      say "postgres-replica: replication slot $name dropped on the primary"
      break
    fi
    sleep 0.25
  done
  rm -f "$PG_REPLICA_MARKER"
}

postgres_replica_status() {
  local url="postgresql://$PG_USER:$PG_PASSWORD@$PG_HOST:$PG_REPLICA_PORT/tokenmeter" lag=""
  if [ "$(replica_recovery_state)" != t ]; then
    say "postgres-replica: down $url"
    return 1
  fi
  # What the primary sees of it: WAL not yet replayed (bytes) and the time replay is behind.
  if pg_login_ok; then
    lag="$(pg_primary -c "select format(', replay %s bytes behind the primary (replay_lag %s), slot holds %s of WAL',
        pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn), coalesce(r.replay_lag::text, '0'),
        pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)))
      from pg_replication_slots s join pg_stat_replication r on r.pid = s.active_pid
      where s.slot_name = '$PG_REPLICA_SLOT'" 2>/dev/null || true)"
  fi
  if [ "$(pg_replica -c 'select pg_is_wal_replay_paused()' 2>/dev/null)" = t ]; then lag="$lag, replay PAUSED"; fi
  say "postgres-replica: up   $url (standby of $PG_HOST:$PG_PORT$lag)"
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
  echo "usage: bash scripts/services.sh up|down|status [postgres] [kafka] [stripe-mock] [postgres-replica] [--replica]" >&2
  exit 2
}

cmd="${1:-}"
shift || true
WANT_POSTGRES="" WANT_KAFKA="" WANT_STRIPE_MOCK="" WANT_REPLICA="" NAMED=""
for arg in "$@"; do
  case "$arg" in
    --replica) WANT_REPLICA=1 ;;
    postgres) WANT_POSTGRES=1 NAMED=1 ;;
    kafka) WANT_KAFKA=1 NAMED=1 ;;
    stripe-mock) WANT_STRIPE_MOCK=1 NAMED=1 ;;
    postgres-replica) WANT_REPLICA=1 NAMED=1 ;;
    *) usage ;;
  esac
done
if [ -z "$NAMED" ]; then WANT_POSTGRES=1 WANT_KAFKA=1 WANT_STRIPE_MOCK=1; fi
# The replica is never made unless asked for; once made from this checkout, plain `down` and
# `status` include it.
if [ -z "$NAMED" ] && [ "$cmd" != up ] && [ -f "$PG_REPLICA_MARKER" ]; then WANT_REPLICA=1; fi

case "$cmd" in
  up)
    lock
    start=$SECONDS
    if [ -n "$WANT_POSTGRES" ] || [ -n "$WANT_REPLICA" ]; then postgres_up; fi
    if [ -n "$WANT_REPLICA" ]; then postgres_replica_up; fi
    if [ -n "$WANT_KAFKA" ]; then kafka_up; fi
    if [ -n "$WANT_STRIPE_MOCK" ]; then stripe_mock_up; fi
    say "all services up in $((SECONDS - start))s"
    ;;
  down)
    lock
    if [ -n "$WANT_STRIPE_MOCK" ]; then stripe_mock_down; fi
    if [ -n "$WANT_KAFKA" ]; then kafka_down; fi
    if [ -n "$WANT_REPLICA" ]; then postgres_replica_down; fi
    if [ -n "$WANT_POSTGRES" ]; then postgres_down; fi
    ;;
  status)
    rc=0
    if [ -n "$WANT_POSTGRES" ]; then postgres_status || rc=1; fi
    if [ -n "$WANT_REPLICA" ]; then postgres_replica_status || rc=1; fi
    if [ -n "$WANT_KAFKA" ]; then kafka_status || rc=1; fi
    if [ -n "$WANT_STRIPE_MOCK" ]; then stripe_mock_status || rc=1; fi
    exit "$rc"
    ;;
  *)
    usage
    ;;
esac
