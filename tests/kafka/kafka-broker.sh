#!/usr/bin/env bash
# Single-node Apache Kafka (KRaft, combined broker+controller) on loopback, for tests.
#
#   kafka-broker.sh start   DIR   start a broker whose files live in DIR; prints 127.0.0.1:PORT
#   kafka-broker.sh stop    DIR   SIGTERM, up to 20 s, then SIGKILL; no broker -> exit 0
#   kafka-broker.sh restart DIR   stop, then start on the same ports and the same data
#   kafka-broker.sh kill9   DIR   SIGKILL the broker (crash tests); start/restart recovers it
#   kafka-broker.sh status  DIR   exit 0 if the broker runs, 1 if not
#
# start on a DIR that already holds formatted data reuses that data and its ports.
# A watchdog stops the broker after ${KEEL_KAFKA_MAX_SECONDS:-2700} s in any case.
# Exit codes: 0 ok, 1 failure, 2 usage.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

START_TIMEOUT=${KEEL_KAFKA_START_TIMEOUT:-60}
MAX_SECONDS=${KEEL_KAFKA_MAX_SECONDS:-2700}
STOP_GRACE=20

usage() {
    echo "usage: ${0##*/} start|stop|restart|kill9|status DIR" >&2
    exit 2
}

[ $# -eq 2 ] && [ -n "$2" ] || usage
cmd=$1
case "$cmd" in
    start|restart) mkdir -p "$2" ;;
    stop|kill9)    [ -d "$2" ] || exit 0 ;;
    status)        [ -d "$2" ] || exit 1 ;;
    *)             usage ;;
esac
DIR=$(cd "$2" && pwd)

PROPS="$DIR/server.properties"
PIDFILE="$DIR/broker.pid"
WDFILE="$DIR/watchdog.pid"

# is_ours PID KIND: PID is this DIR's broker (KIND=broker) or watchdog (KIND=watchdog).
is_ours() {
    local pid=$1 cmdline
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
    cmdline=" $(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null)" || return 1
    case $2 in
        broker)   [[ "$cmdline" == *" kafka.Kafka $DIR/server.properties "* ]] ;;
        watchdog) [[ "$cmdline" == *" keel-kafka-watchdog "*" $DIR " ]] ;;
        *)        return 1 ;;
    esac
}

# alive PID: the process exists and is not a zombie waiting for its reaper.
alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ]
}

broker_pid() {
    local pid
    pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
    is_ours "$pid" broker && echo "$pid"
}

kill_watchdog() {
    local pid
    pid=$(cat "$WDFILE" 2>/dev/null) || return 0
    if is_ours "$pid" watchdog; then
        # The watchdog leads its own process group (setsid): take its sleep along.
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$WDFILE"
}

do_stop() {
    local pid i
    kill_watchdog
    if pid=$(broker_pid); then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < STOP_GRACE * 10; i++)); do
            alive "$pid" || break
            sleep 0.1
        done
        if alive "$pid"; then
            echo "${0##*/}: broker $pid still up after ${STOP_GRACE}s, sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
            while alive "$pid"; do sleep 0.05; done
        fi
    fi
    rm -f "$PIDFILE"
}

do_kill9() {
    local pid
    kill_watchdog
    if pid=$(broker_pid); then
        kill -KILL "$pid" 2>/dev/null || true
        while alive "$pid"; do sleep 0.05; done
    fi
    rm -f "$PIDFILE"
}

pick_ports() {
    "$(keel_kafka_python)" - <<'PY'
import socket
socks = []
for _ in range(2):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

new_cluster_id() {
    "$(keel_kafka_python)" - <<'PY'
import base64, os
while True:
    cid = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
    if not cid.startswith("-"):
        print(cid)
        break
PY
}

write_config() {
    local port=$1 cport=$2
    cat > "$PROPS" <<EOF
# Single-node KRaft broker+controller for keel's tests (written by kafka-broker.sh).
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$DIR/data

num.partitions=1
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=false
delete.topic.enable=true

offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=8
group.initial.rebalance.delay.ms=0
# Let clients ask for sessions shorter than Kafka's 6 s floor, so that
# failover with a short kafka.session.timeout.ms can be measured (bench/).
group.min.session.timeout.ms=1000

# After kill -9 the restarted node must wait until the controller expires the old
# broker registration (DUPLICATE_BROKER_REGISTRATION until then): keep that short.
broker.session.timeout.ms=4000
broker.heartbeat.interval.ms=500

# Small machine: few threads, a small cleaner buffer (the default is 128 MiB).
num.network.threads=2
num.io.threads=4
background.threads=4
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=16777216

# Make compaction and retention observable within a test: the cleaner looks for
# work every second and the log manager's periodic tasks start after one second.
# Topics still need small segment.ms/segment.bytes: the active segment is never cleaned.
log.cleaner.enable=true
log.cleaner.backoff.ms=1000
log.initial.task.delay.ms=1000
log.retention.check.interval.ms=5000
EOF
}

write_log4j() {
    cat > "$DIR/log4j.properties" <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$DIR/broker.log
log4j.appender.file.Append=true
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.org.apache.kafka.clients=WARN
log4j.logger.state.change.logger=WARN
EOF
}

start_watchdog() {
    local pid=$1
    # Own session and process group, no inherited descriptors: it must outlive this
    # script without holding the caller's pipes or DIR/.lock open.
    setsid bash -c '
        secs=$1 pid=$2 dir=$3
        is_broker() {
            [ -r "/proc/$pid/cmdline" ] && tr "\0" " " < "/proc/$pid/cmdline" | grep -qF "$dir/server.properties"
        }
        sleep "$secs"
        is_broker || exit 0
        echo "[$(date "+%F %T")] keel-kafka-watchdog: ${secs}s are up, stopping broker $pid" >> "$dir/broker.out"
        kill -TERM "$pid"
        for _ in $(seq 200); do is_broker || exit 0; sleep 0.1; done
        kill -KILL "$pid"
    ' keel-kafka-watchdog "$MAX_SECONDS" "$pid" "$DIR" </dev/null >/dev/null 2>&1 9>&- &
    echo $! > "$WDFILE"
    disown $!
}

# show_log FIRST_LINE: what went wrong in broker.log since FIRST_LINE, to stderr.
show_log() {
    {
        echo "--- errors in $DIR/broker.log ---"
        tail -n "+$1" "$DIR/broker.log" 2>/dev/null | grep -E '^\[[^]]*\] (ERROR|FATAL) ' | tail -n 10
        echo "--- last lines of $DIR/broker.log ---"
        tail -n "+$1" "$DIR/broker.log" 2>/dev/null | tail -n 15
        echo "--- last lines of $DIR/broker.out ---"
        tail -n 5 "$DIR/broker.out" 2>/dev/null
    } >&2 || true
}

do_start() {
    local libs port cport cid pid deadline out first

    if pid=$(broker_pid); then
        keel_kafka_die "a broker (pid $pid) already runs in $DIR; stop it first"
    fi
    kill_watchdog

    keel_kafka_need_tools java kcat
    libs=$("$KEEL_KAFKA_SRC/fetch-kafka.sh" | tail -n 1)
    [ -f "$libs/kafka_2.13-$KEEL_KAFKA_VERSION.jar" ] || keel_kafka_die "fetch-kafka.sh gave no libs"

    if [ -f "$DIR/data/meta.properties" ] && [ -f "$DIR/ports" ]; then
        read -r port cport < "$DIR/ports"
        write_log4j
    else
        read -r port cport < <(pick_ports) || true
        [ -n "${port:-}" ] && [ -n "${cport:-}" ] || keel_kafka_die "could not pick free ports"
        echo "$port $cport" > "$DIR/ports"
        rm -rf "$DIR/data"
        write_log4j
        write_config "$port" "$cport"
        cid=$(new_cluster_id)
        if ! java -cp "$libs/*" -Dlog4j.configuration="file:$DIR/log4j.properties" \
                kafka.tools.StorageTool format -t "$cid" -c "$PROPS" \
                </dev/null >"$DIR/format.log" 2>&1; then
            cat "$DIR/format.log" >&2
            keel_kafka_die "formatting $DIR/data failed"
        fi
    fi
    write_config "$port" "$cport"

    first=$(($(cat "$DIR/broker.log" 2>/dev/null | wc -l) + 1))
    echo "[$(date '+%F %T')] keel: starting broker on 127.0.0.1:$port (controller $cport)" >> "$DIR/broker.out"
    # setsid execs java directly here (a background child is no group leader), so $! is java.
    setsid java -Xms128m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
        -Dlog4j.configuration="file:$DIR/log4j.properties" \
        ${KEEL_KAFKA_JAVA_OPTS:-} \
        -cp "$libs/*" kafka.Kafka "$PROPS" \
        </dev/null >>"$DIR/broker.out" 2>&1 9>&- &
    pid=$!
    disown "$pid"
    echo "$pid" > "$PIDFILE"
    start_watchdog "$pid"

    deadline=$((SECONDS + START_TIMEOUT))
    while :; do
        if ! alive "$pid"; then
            echo "${0##*/}: broker exited during start-up" >&2
            show_log "$first"
            do_stop
            exit 1
        fi
        if out=$(kcat -b "127.0.0.1:$port" -L -m 5 2>/dev/null) \
                && grep -q "broker 1 at 127.0.0.1:$port" <<<"$out"; then
            break
        fi
        if ((SECONDS >= deadline)); then
            echo "${0##*/}: broker not answering metadata after ${START_TIMEOUT}s" >&2
            show_log "$first"
            do_kill9
            exit 1
        fi
        sleep 0.3
    done

    echo "127.0.0.1:$port" > "$DIR/bootstrap"
    echo "127.0.0.1:$port"
}

# One command at a time per DIR. Children get fd 9 closed so the lock dies with us.
exec 9>"$DIR/.lock"
flock 9

case "$cmd" in
    start)   do_start ;;
    stop)    do_stop ;;
    restart) do_stop; do_start ;;
    kill9)   do_kill9 ;;
    status)  broker_pid >/dev/null ;;
esac
