#!/usr/bin/env bash
# Start or stop a `keel dev-broker` for the integration tests (a ctest
# fixture). start writes DIR/bootstrap once the broker is ready; the broker
# stops by itself after KEEL_DEVBROKER_MAX_SECONDS (default 1800) even if
# nobody calls stop.
set -euo pipefail
cmd=${1:?usage: dev-broker-fixture.sh start|stop DIR [KEEL_BIN]}
dir=${2:?DIR required}
keel=${3:-keel}
mkdir -p "$dir"

case "$cmd" in
start)
        "$0" stop "$dir" >/dev/null 2>&1 || true
        rm -f "$dir/bootstrap"
        # timeout(1) is the watchdog: the broker never outlives the run.
        setsid timeout --signal=TERM "${KEEL_DEVBROKER_MAX_SECONDS:-1800}" \
                "$keel" dev-broker --partitions "${KEEL_TEST_PARTITIONS:-12}" \
                --port-file "$dir/bootstrap" >"$dir/dev-broker.out" \
                2>"$dir/dev-broker.log" </dev/null &
        echo $! >"$dir/dev-broker.pid"
        for _ in $(seq 100); do
                [ -s "$dir/bootstrap" ] && break
                sleep 0.1
        done
        if [ ! -s "$dir/bootstrap" ]; then
                echo "dev broker did not start:" >&2
                cat "$dir/dev-broker.log" >&2
                "$0" stop "$dir"
                exit 1
        fi
        echo "dev broker at $(cat "$dir/bootstrap")"
        ;;
stop)
        [ -f "$dir/dev-broker.pid" ] || exit 0
        pid=$(cat "$dir/dev-broker.pid")
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        rm -f "$dir/dev-broker.pid" "$dir/bootstrap"
        ;;
*)
        echo "usage: dev-broker-fixture.sh start|stop DIR [KEEL_BIN]" >&2
        exit 2
        ;;
esac
