#!/usr/bin/env bash
# demo_valgrind.sh: the demo's long-running processes under valgrind's
# memcheck, for a short payment run. Builds keel without sanitizers in
# build-valgrind/, starts the dev broker, keel-orchestrator (payment
# workflow), keel-payment-worker and keel-projector, each under
#   valgrind --leak-check=full --error-exitcode=1
# (127.0.0.1 only, ports chosen at run time), starts a few payment
# workflows (half over the projector's HTTP API, half with `keel workflow
# start` and a refundApproved signal with the start), waits for every
# one to complete, reads them over HTTP, then stops the four processes
# with SIGTERM. Passes when every workflow completed, every process
# exited 0 and each valgrind log says "ERROR SUMMARY: 0 errors" with
# nothing definitely, indirectly or possibly lost. In CI as the ctest
# demo_valgrind (about 20 s after its build); the figures of a run are in
# docs/reliability.md.
#
#   tests/valgrind/demo_valgrind.sh          (VG_WORKFLOWS=N, default 6)
#
# The logs stay in the directory it prints (VG_KEEP_LOGS=1 keeps them on
# success too). Every process stops by itself: timeout(1) around each.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
n=${VG_WORKFLOWS:-6}
max_s=900 # no process outlives this

say() { printf '\n== %s\n' "$*"; }

command -v valgrind >/dev/null || {
        echo "demo_valgrind.sh: valgrind is not installed" \
                "(apt-get install valgrind)" >&2
        exit 2
}

build=${KEEL_VALGRIND_BUILD_DIR:-$root/build-valgrind}
say "Building keel without sanitizers ($build)"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DKEEL_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target keel_cli \
        keel-orchestrator keel-payment-worker keel-projector \
        keel_payment_workflows >/dev/null
bin=$build/bin
module=$build/lib/libkeel_payment_workflows.so

work=$(mktemp -d "${TMPDIR:-/tmp}/keel-valgrind.XXXXXX")
pids=()
names=()
cleanup() {
        for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

vg=(valgrind --leak-check=full --error-exitcode=1 --num-callers=30
        --suppressions="$root/tests/valgrind/keel.supp")

# run NAME PROGRAM ARGS...: start PROGRAM under valgrind in the background.
run() {
        local name=$1
        shift
        timeout --signal=KILL "$max_s" "${vg[@]}" \
                --log-file="$work/vg-$name.log" "$@" \
                >"$work/$name.out" 2>&1 </dev/null &
        pids+=($!)
        names+=("$name")
}

wait_for() { # FILE PATTERN SECONDS
        for _ in $(seq $(($3 * 10))); do
                grep -q "$2" "$1" 2>/dev/null && return 0
                sleep 0.1
        done
        echo "demo_valgrind.sh: no '$2' in $1 within $3 s:" >&2
        tail -20 "$1" >&2
        return 1
}

t0=$(date +%s)
say "Starting the dev broker, keel-orchestrator, keel-payment-worker and keel-projector under valgrind"
run dev-broker "$bin/keel" dev-broker --partitions 12 --task-queue payments \
        --port-file "$work/bootstrap"
for _ in $(seq 600); do [ -s "$work/bootstrap" ] && break; sleep 0.1; done
[ -s "$work/bootstrap" ] || { cat "$work/dev-broker.out"; exit 1; }
export KEEL_BOOTSTRAP
KEEL_BOOTSTRAP=$(cat "$work/bootstrap")
run orchestrator "$bin/keel-orchestrator" --workflows "$module"
run worker "$bin/keel-payment-worker" --effects "$work/effects.log"
run projector "$bin/keel-projector" -X http.listen=127.0.0.1:0 \
        --port-file "$work/http.port"
wait_for "$work/orchestrator.out" "msg=assigned" 300
for _ in $(seq 600); do [ -s "$work/http.port" ] && break; sleep 0.1; done
api="http://127.0.0.1:$(cat "$work/http.port")"
echo "dev broker $KEEL_BOOTSTRAP, projector $api ($(($(date +%s) - t0)) s)"

say "Starting $n payment workflows: odd ones over HTTP, even ones with keel workflow start and a refundApproved signal with the start"
stamp=$(date +%s)
for i in $(seq 1 "$n"); do
        id="vg-$stamp-$i"
        input="{\"order\":\"$id\",\"amount\":$((100 + i)),\"refund_window_ms\":3000}"
        if [ $((i % 2)) -eq 1 ]; then
                curl -sS -o /dev/null -w "POST $id: %{http_code}\n" \
                        -X POST "$api/api/v1/workflows" -d \
                        "{\"workflow_id\":\"$id\",\"type\":\"payment\",\"input\":$input}"
        else
                "$bin/keel" workflow start --id "$id" --type payment \
                        --input "$input" --signal refundApproved \
                        --signal-input '{"by":"valgrind"}' --wait 120
        fi
done

say "Waiting for every workflow to complete (read from keel-projector)"
export KEEL_PROJECTOR_URL=$api
completed=0
for i in $(seq 1 "$n"); do
        id="vg-$stamp-$i"
        line=$("$bin/keel" workflow result --id "$id" --wait 120 --json || true)
        echo "$line" | cut -c1-140
        case $line in
        *'"status":"completed"'*) completed=$((completed + 1)) ;;
        esac
done
curl -s -o /dev/null -w "GET /api/v1/workflows: %{http_code}\n" \
        "$api/api/v1/workflows?prefix=vg-$stamp-"
curl -s -o /dev/null -w "GET /metrics: %{http_code}\n" "$api/metrics"

say "Stopping them with SIGTERM"
status=0
# The broker last: the others leave their groups and flush first.
for k in 3 2 1 0; do
        kill -TERM "${pids[$k]}" 2>/dev/null || true
        rc=0
        wait "${pids[$k]}" || rc=$?
        echo "${names[$k]}: exit $rc"
        [ "$rc" -eq 0 ] || status=1
done
trap - EXIT

say "valgrind's verdict"
for name in "${names[@]}"; do
        log=$work/vg-$name.log
        errors=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$log" | tail -1)
        lost() { sed -n "s/.*$1 lost: \([0-9,]*\) bytes.*/\1/p" "$log" | tail -1 | tr -d ,; }
        def=$(lost definitely)
        ind=$(lost indirectly)
        pos=$(lost possibly)
        reach=$(sed -n 's/.*still reachable: \([0-9,]*\) bytes.*/\1/p' "$log" | tail -1 | tr -d ,)
        heap=$(sed -n 's/.*total heap usage: \(.*\)/\1/p' "$log" | tail -1)
        printf '%-12s errors %s, lost: definitely %s, indirectly %s, possibly %s bytes; still reachable %s bytes; %s\n' \
                "$name" "${errors:-?}" "${def:-0}" "${ind:-0}" "${pos:-0}" "${reach:-0}" "$heap"
        if [ "${errors:-1}" != 0 ] || [ "${def:-0}" != 0 ] ||
                [ "${ind:-0}" != 0 ] || [ "${pos:-0}" != 0 ]; then
                status=1
                echo "  see $log"
        fi
done
echo "$completed of $n workflows completed; $(($(date +%s) - t0)) s under valgrind"
[ "$completed" -eq "$n" ] || status=1
if [ "$status" -ne 0 ]; then
        echo "demo_valgrind.sh: FAILED (logs in $work)" >&2
        exit 1
fi
if [ -n "${VG_KEEP_LOGS:-}" ]; then
        echo "logs in $work"
else
        rm -rf "$work"
fi
echo "demo_valgrind.sh: no error and no leak"
