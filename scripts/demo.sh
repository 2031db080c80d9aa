#!/usr/bin/env bash
# keel's demo on a fresh Debian 12 machine: install what is missing, build,
# start the dev broker (an in-memory Kafka), an orchestrator with the
# payment workflow, a payment worker and the projector; start 20 payment
# workflows (half of them get a refundApproved signal), kill -9 the
# orchestrator mid-run and start it again, and show every workflow's
# outcome, then their state over the projector's HTTP API. Everything it
# starts is stopped when it ends.
#   DEMO_WORKFLOWS=N   how many workflows (default 20)
#   DEMO_KEEP=1        keep everything running at the end, to look around
#                      in the dashboard, until Ctrl-C
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
n=${DEMO_WORKFLOWS:-20}

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "Checking Debian packages"
scripts/setup.sh build

say "Building keel (build/)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKEEL_BUILD_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
bin=$root/build/bin
module=$root/build/lib/libkeel_payment_workflows.so
"$bin/keel" --version

work=$(mktemp -d)
pids=()
cleanup() {
        for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
        wait 2>/dev/null || true
        rm -rf "$work"
}
trap cleanup EXIT INT TERM

say "Starting the dev broker (keel dev-broker --task-queue payments)"
"$bin/keel" dev-broker --partitions 12 --task-queue payments \
        --port-file "$work/bootstrap" >/dev/null 2>"$work/dev-broker.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/bootstrap" ] && break; sleep 0.1; done
[ -s "$work/bootstrap" ] || { cat "$work/dev-broker.log"; exit 1; }
b=$(cat "$work/bootstrap")
export KEEL_BOOTSTRAP=$b
"$bin/keel" topics describe

start_orchestrator() {
        # Static group membership: a restarted orchestrator takes its
        # partitions back without waiting for the dead one's session.
        "$bin/keel-orchestrator" --workflows "$module" \
                -X kafka.group.instance.id=demo-orchestrator \
                >>"$work/orchestrator.log" 2>&1 &
        orch=$!
        pids+=($orch)
}

say "Starting keel-orchestrator (payment workflow), keel-payment-worker, keel-projector"
start_orchestrator
"$bin/keel-payment-worker" --effects "$work/effects.log" \
        >"$work/worker.log" 2>&1 &
pids+=($!)
"$bin/keel-projector" -X http.listen=127.0.0.1:0 --port-file "$work/http.port" \
        >"$work/projector.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do
        grep -q "msg=assigned" "$work/orchestrator.log" && break
        sleep 0.1
done
grep -q "msg=assigned" "$work/orchestrator.log" ||
        { tail -20 "$work/orchestrator.log"; exit 1; }
echo "orchestrator owns all 12 partitions; worker polling keel.tasks.payments"

say "Starting $n payment workflows (even ones get refundApproved)"
stamp=$(date +%s)
for i in $(seq 1 "$n"); do
        id="order-$stamp-$i"
        "$bin/keel" workflow start --id "$id" --type payment --wait 10 \
                --input "{\"order\":\"$id\",\"amount\":$((1000 + i)),\"refund_window_ms\":8000}"
        if [ $((i % 2)) -eq 0 ]; then
                "$bin/keel" workflow signal --id "$id" --name refundApproved \
                        --input '{"by":"demo"}' --wait 10 >/dev/null
        fi
done

say "kill -9 the orchestrator mid-run, then start it again"
sleep 1
kill -KILL "$orch"
echo "killed orchestrator pid $orch"
sleep 1
start_orchestrator
echo "started orchestrator pid $orch; it restores every partition from keel.history"

for _ in $(seq 100); do [ -s "$work/http.port" ] && break; sleep 0.1; done
api="http://127.0.0.1:$(cat "$work/http.port")"
export KEEL_PROJECTOR_URL=$api

say "Waiting for every workflow to close (keel workflow result --wait 60, from keel-projector)"
done_ok=0
printf '%-28s %-10s %s\n' WORKFLOW STATUS RESULT
for i in $(seq 1 "$n"); do
        id="order-$stamp-$i"
        line=$("$bin/keel" workflow result --id "$id" --wait 60 --json || true)
        # {"workflow_id":..,"run_id":..,"status":..,"closed":..,"result":..,"failure":..,..}
        status=$(sed -n 's/^{"workflow_id":"[^"]*","run_id":"[^"]*","status":"\([a-z]*\)".*/\1/p' <<<"$line")
        result=$(sed -n 's/.*"result":\(.*\),"failure".*/\1/p' <<<"$line")
        printf '%-28s %-10s %s\n' "$id" "$status" "$result"
        [ "$status" = completed ] && done_ok=$((done_ok + 1))
done

say "Their state over HTTP, from keel-projector ($api)"
echo "\$ keel workflow list --prefix order-$stamp- --limit 5"
"$bin/keel" workflow list --prefix "order-$stamp-" --limit 5
echo
echo "\$ curl $api/api/v1/workflows/order-$stamp-2"
curl -s "$api/api/v1/workflows/order-$stamp-2"
echo
echo
echo "\$ curl -X POST $api/api/v1/workflows -d '{\"workflow_id\":\"order-$stamp-http\",\"type\":\"payment\",...}'"
pos=$(curl -s -X POST "$api/api/v1/workflows" \
        -d "{\"workflow_id\":\"order-$stamp-http\",\"type\":\"payment\",\"input\":{\"order\":\"http\",\"amount\":990,\"refund_window_ms\":600000}}" |
        sed -n 's/.*"position":"\([0-9:]*\)".*/\1/p')
echo "accepted at keel.inbox position $pos; reading it back with ?after=$pos:"
curl -s "$api/api/v1/workflows/order-$stamp-http?after=$pos" |
        sed -n 's/.*"status":"\([a-z]*\)".*"state":\({[^}]*}\).*/status \1, published state \2/p'
echo
"$bin/keel" workflow terminate --id "order-$stamp-http" --reason "demo over" >/dev/null
echo "(terminated again with keel workflow terminate; it is not counted below)"
echo "dashboard: $api/"

say "Summary"
grep "msg=claimed" "$work/orchestrator.log" | tail -1 |
        sed 's/.*\(partition=[0-9]*\).*\(epoch=[0-9]*\).*/last restore: \1 \2 (a new epoch after the kill)/'
echo "$done_ok of $n workflows completed"
echo "side effects recorded by the worker, one per idempotency key (the"
echo "workflow started over HTTP charged a card before it was terminated):"
cut -f1 "$work/effects.log" | sort | uniq -c | sed 's/^/  /'
charges=$(grep -v -- "-http/" "$work/effects.log" | grep -c '^chargeCard' || true)
dups=$(cut -f2 "$work/effects.log" | sort | uniq -d | wc -l)
echo "cards charged: $charges (one per workflow), duplicate effects: $dups"
if [ -n "${DEMO_KEEP:-}" ]; then
        say "Still running: the dashboard is at $api/ (Ctrl-C stops everything)"
        while true; do sleep 3600; done
fi
cleanup
trap - EXIT
[ "$done_ok" -eq "$n" ] && [ "$charges" -eq "$n" ] && [ "$dups" -eq 0 ] || {
        echo "demo FAILED: not every workflow completed exactly once"
        exit 1
}
echo "Done. Next: 'scripts/test.sh' runs the whole test suite."
