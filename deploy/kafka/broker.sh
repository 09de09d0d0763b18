#!/usr/bin/env bash
# A real single-node Apache Kafka broker (KRaft, combined broker+controller) for tests and
# the demo, fetched from Maven Central by deploy/kafka/pom.xml. No Docker, no ZooKeeper.
#
#   broker.sh fetch    copy Kafka and its dependencies into $KAFKA_LIBS_DIR (once; Maven)
#   broker.sh start    fetch if needed, format storage once, start in the background, wait
#                      until it answers a metadata request, print "127.0.0.1:<port>"
#   broker.sh stop     SIGTERM, up to 30 s for a clean shutdown, then SIGKILL; idempotent
#   broker.sh status   exit 0 iff running and answering (prints the bootstrap address)
#
# Environment (relative paths are taken from the current directory):
#   KAFKA_PORT             PLAINTEXT listener on 127.0.0.1            (default 19092)
#   KAFKA_CONTROLLER_PORT  KRaft CONTROLLER listener on 127.0.0.1     (default 19093)
#   KAFKA_DATA_DIR         properties, pid, KRaft logs, broker log    (default var/kafka/<port>)
#   KAFKA_LIBS_DIR         the fetched jars                           (default var/kafka/libs)
#   KAFKA_HEAP_OPTS        JVM heap                                   (default -Xms256m -Xmx768m)
#   KAFKA_START_TIMEOUT    seconds to wait for the broker to answer   (default 60)
# Defaults are under the repo root (resolved from this script), whatever the current directory.
#
# Exit status: 0 success; 1 failure (start prints the broker log tail on stderr);
# 2 usage; status: 3 when not running, 1 when running but not answering.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
POM="$SCRIPT_DIR/pom.xml"

abspath() { case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/$1" ;; esac; }

KAFKA_PORT="${KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-19093}"
KAFKA_DATA_DIR="$(abspath "${KAFKA_DATA_DIR:-$REPO_ROOT/var/kafka/$KAFKA_PORT}")"
KAFKA_LIBS_DIR="$(abspath "${KAFKA_LIBS_DIR:-$REPO_ROOT/var/kafka/libs}")"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-60}"

BOOTSTRAP="127.0.0.1:$KAFKA_PORT"
PID_FILE="$KAFKA_DATA_DIR/broker.pid"
PROPS="$KAFKA_DATA_DIR/server.properties"
LOG4J="$KAFKA_DATA_DIR/log4j.properties"
LOG_DIR="$KAFKA_DATA_DIR/log"           # human-readable broker log (log4j)
KRAFT_DIR="$KAFKA_DATA_DIR/kraft"       # Kafka's own data: topic partitions + metadata log
BROKER_LOG="$LOG_DIR/server.log"
BROKER_OUT="$LOG_DIR/stdout.log"        # JVM stdout/stderr (crashes before log4j is up)

if [[ -x "$REPO_ROOT/.venv/bin/python" ]]; then PYTHON="$REPO_ROOT/.venv/bin/python"; else PYTHON=python3; fi

die() { echo "broker.sh: $*" >&2; exit 1; }

for v in KAFKA_PORT KAFKA_CONTROLLER_PORT KAFKA_START_TIMEOUT; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a number, got '${!v}'"
done
[[ "$KAFKA_PORT" != "$KAFKA_CONTROLLER_PORT" ]] || die "KAFKA_PORT and KAFKA_CONTROLLER_PORT must differ"

# The version the pom pins; the libs dir counts as fetched when it holds that kafka jar.
kafka_version() { sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM" | head -n1; }

fetched() { [[ -f "$KAFKA_LIBS_DIR/kafka_2.13-$(kafka_version).jar" && -f "$KAFKA_LIBS_DIR/.complete" ]]; }

# Run "$@" holding an exclusive lock on file $1 (flock when available; else unlocked).
with_lock() {
    local lock="$1"; shift
    if command -v flock >/dev/null 2>&1; then
        mkdir -p "$(dirname "$lock")"
        ( flock -x 9; "$@" ) 9>"$lock"
    else
        "$@"
    fi
}

do_fetch() {
    fetched && return 0
    command -v mvn >/dev/null 2>&1 || die "Maven (mvn) is not installed; it fetches Kafka from Maven Central"
    local tmp="$KAFKA_LIBS_DIR.partial.$$"
    rm -rf "$tmp" "$tmp.log"
    echo "broker.sh: fetching Kafka $(kafka_version) from Maven Central into $KAFKA_LIBS_DIR" >&2
    # Maven's output is shown only when it fails (even -q -B prints stray ANSI resets).
    if ! mvn -B -q -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
            -Dkafka.libs.dir="$tmp" >"$tmp.log" 2>&1; then
        sed $'s/\e\\[[0-9;]*m//g' "$tmp.log" >&2
        rm -rf "$tmp" "$tmp.log"
        die "Maven could not fetch Kafka (see the output above)"
    fi
    rm -f "$tmp.log"
    touch "$tmp/.complete"
    # Swap whole directories so a half-done or older-version fetch never mixes jars.
    if [[ -e "$KAFKA_LIBS_DIR" ]]; then rm -rf "$KAFKA_LIBS_DIR.old.$$"; mv "$KAFKA_LIBS_DIR" "$KAFKA_LIBS_DIR.old.$$"; fi
    mv "$tmp" "$KAFKA_LIBS_DIR"
    rm -rf "$KAFKA_LIBS_DIR.old.$$"
}

fetch() { with_lock "$(dirname "$KAFKA_LIBS_DIR")/.fetch.lock" do_fetch; }

# pid of our broker if it is alive (and really is a Kafka broker on our properties file).
broker_pid() {
    [[ -f "$PID_FILE" ]] || return 1
    local pid; pid="$(cat "$PID_FILE" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    if [[ -r "/proc/$pid/cmdline" ]]; then
        tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "kafka.Kafka $PROPS" || return 1
    fi
    echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# 0 when the broker answers a metadata request listing at least one broker; 3 when the
# python at hand has no confluent_kafka (callers then rely on the TCP check alone).
metadata_ok() {
    "$PYTHON" - "$BOOTSTRAP" 2>/dev/null <<'EOF'
import sys
try:
    from confluent_kafka.admin import AdminClient
except ImportError:
    sys.exit(3)
admin = AdminClient({"bootstrap.servers": sys.argv[1], "log_level": 0})
try:
    md = admin.list_topics(timeout=5)
except Exception:
    sys.exit(1)
sys.exit(0 if md.brokers else 1)
EOF
}

reachable() {
    port_open "$KAFKA_PORT" || return 1
    local rc=0; metadata_ok || rc=$?
    [[ $rc -eq 0 || $rc -eq 3 ]]
}

log_tail() {
    local f
    for f in "$BROKER_OUT" "$BROKER_LOG"; do
        if [[ -s "$f" ]]; then echo "---- last lines of $f ----"; tail -n 40 "$f"; fi
    done
}

write_config() {
    mkdir -p "$KAFKA_DATA_DIR" "$LOG_DIR" "$KRAFT_DIR"
    cat >"$PROPS" <<EOF
# Written by deploy/kafka/broker.sh on every start; edits are overwritten.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$KRAFT_DIR

# One node: every replicated internal topic has one replica.
num.partitions=4
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
delete.topic.enable=true

# Kafka's defaults, spelled out: leave flushing to the OS page cache.
log.flush.interval.messages=9223372036854775807
log.flush.scheduler.interval.ms=9223372036854775807
log.flush.offset.checkpoint.interval.ms=60000

# Small machine (2 cores): fewer threads, a smaller compaction buffer.
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=33554432
EOF
    cat >"$LOG4J" <<EOF
# Written by deploy/kafka/broker.sh. WARN for everything but the start/stop lines.
log4j.rootLogger=WARN, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=$BROKER_LOG
log4j.appender.file.MaxFileSize=10MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=WARN
log4j.logger.org.apache.kafka=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.request.logger=WARN
log4j.logger.kafka.server.KafkaRaftServer=INFO
log4j.logger.kafka.server.BrokerServer=INFO
log4j.logger.kafka.server.ControllerServer=INFO
EOF
}

java_cmd() {
    local main="$1"; shift
    # shellcheck disable=SC2086  # KAFKA_HEAP_OPTS is a list of options
    printf '%s\0' java $KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -Djava.awt.headless=true -Dlog4j.configuration="file:$LOG4J" \
        -Dkafka.logs.dir="$LOG_DIR" -cp "$KAFKA_LIBS_DIR/*" "$main" "$@"
}

format_storage() {
    [[ -f "$KRAFT_DIR/meta.properties" ]] && return 0
    local uuid
    # A Kafka Uuid: 16 random bytes, base64url without padding; never starting with '-'.
    uuid="$("$PYTHON" -c 'import base64, uuid
while True:
    s = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
    if not s.startswith("-"):
        print(s)
        break')"
    local -a cmd; mapfile -d '' cmd < <(java_cmd kafka.tools.StorageTool format -t "$uuid" -c "$PROPS" --ignore-formatted)
    if ! "${cmd[@]}" >>"$BROKER_OUT" 2>&1; then
        log_tail >&2
        die "formatting KRaft storage in $KRAFT_DIR failed"
    fi
}

do_start() {
    local pid
    if pid="$(broker_pid)"; then
        if wait_ready "$pid"; then echo "$BOOTSTRAP"; return 0; fi
        log_tail >&2
        die "broker (pid $pid) is running but does not answer on $BOOTSTRAP"
    fi
    rm -f "$PID_FILE"
    local p
    for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
        ! port_open "$p" || die "port 127.0.0.1:$p is already in use by another process"
    done
    fetch
    write_config
    format_storage
    local -a cmd; mapfile -d '' cmd < <(java_cmd kafka.Kafka "$PROPS")
    echo "==== $(date '+%F %T') starting $BOOTSTRAP ====" >>"$BROKER_OUT"
    # Own session (survives the caller's Ctrl-C and process group); the pid written is the
    # JVM's own, because bash execs java in place; fd 9 (the start lock) is not inherited.
    local -a detach=(); if command -v setsid >/dev/null 2>&1; then detach=(setsid); fi
    "${detach[@]}" bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$PID_FILE" "${cmd[@]}" \
        </dev/null >>"$BROKER_OUT" 2>&1 9>&- &
    local i
    for i in $(seq 1 50); do [[ -s "$PID_FILE" ]] && break; sleep 0.1; done
    pid="$(cat "$PID_FILE" 2>/dev/null || true)"
    [[ -n "$pid" ]] || die "the broker process did not start"
    if wait_ready "$pid"; then
        echo "$BOOTSTRAP"
        return 0
    fi
    echo "broker.sh: the broker did not come up on $BOOTSTRAP" >&2
    log_tail >&2
    do_stop >/dev/null 2>&1 || true
    exit 1
}

# Wait until the broker answers, or it dies, or KAFKA_START_TIMEOUT passes.
wait_ready() {
    local pid="$1" deadline=$((SECONDS + KAFKA_START_TIMEOUT))
    while ((SECONDS < deadline)); do
        kill -0 "$pid" 2>/dev/null || { echo "broker.sh: the broker process exited" >&2; return 1; }
        if reachable; then return 0; fi
        sleep 0.3
    done
    echo "broker.sh: no answer within ${KAFKA_START_TIMEOUT}s" >&2
    return 1
}

do_stop() {
    local pid
    if ! pid="$(broker_pid)"; then rm -f "$PID_FILE"; return 0; fi
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
        echo "broker.sh: broker (pid $pid) still running after 30 s; SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
    rm -f "$PID_FILE"
}

do_status() {
    local pid
    if ! pid="$(broker_pid)"; then echo "not running ($BOOTSTRAP)"; return 3; fi
    if reachable; then echo "$BOOTSTRAP"; return 0; fi
    echo "running (pid $pid) but not answering on $BOOTSTRAP"
    return 1
}

case "${1:-}" in
    fetch) fetch ;;
    start) mkdir -p "$KAFKA_DATA_DIR"; with_lock "$KAFKA_DATA_DIR/.lock" do_start ;;
    stop) if [[ -d "$KAFKA_DATA_DIR" ]]; then with_lock "$KAFKA_DATA_DIR/.lock" do_stop; fi ;;
    status) do_status ;;
    *) echo "usage: $(basename "$0") fetch|start|stop|status" >&2; exit 2 ;;
esac
