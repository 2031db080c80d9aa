#!/usr/bin/env bash
# The orders example end to end as docs/streams.md and examples/orders
# show it, with Debian's kcat as the producer and the consumer: records
# kcat writes to an `orders` topic start "order-payment" workflows through
# the ingress of keel-orchestrator (--ingress examples/orders/routes.json),
# keel-payment-worker charges the cards, and the workflows' records on
# `payments.completed` are read back with kcat. A record of another type
# is skipped; one that is not JSON goes to keel.dlq with the reason; an
# order produced again (an upstream retry) is refused by the route's
# REJECT_DUPLICATE policy: no second charge. The orchestrator's /metrics
# count it all. Its own dev broker and daemons run on loopback ports chosen at
# run time and stop on exit.
#   orders_kcat.sh BIN_DIR ORDERS_MODULE ROUTES_FILE
set -uo pipefail
bindir=${1:?directory of keel, keel-orchestrator, keel-payment-worker}
module=${2:?the orders workflow module (.so)}
routes=${3:?examples/orders/routes.json}
test_name=orders_kcat
# shellcheck source=stack_lib.sh
. "$(dirname "$0")/stack_lib.sh"

# ---- the stack ----------------------------------------------------------
setsid timeout "$limit" "$keel" dev-broker --partitions 4 \
        --task-queue payments --port-file "$tmp/bootstrap" \
        >/dev/null 2>"$tmp/dev-broker.log" </dev/null &
pids+=($!)
wait_file "$tmp/bootstrap" || die "the dev broker did not start"
b=$(cat "$tmp/bootstrap")
export KEEL_BOOTSTRAP=$b
unset KEEL_CONFIG KEEL_INGRESS_ROUTES

# As a user would: the orders, from kcat (key:value), before and after
# the stack starts.
printf '%s\n' \
        'order-1:{"type":"OrderPlaced","order":{"amount":990,"card":"4242"}}' \
        'order-2:{"type":"OrderPlaced","order":{"amount":120,"decline":true}}' |
        kcat -b "$b" -P -t orders -K: || die "kcat produce"

setsid timeout "$limit" "$bindir/keel-orchestrator" --workflows "$module" \
        --ingress "$routes" -X metrics.listen=127.0.0.1:0 \
        --metrics-port-file "$tmp/metrics.port" \
        >"$tmp/orchestrator.log" 2>&1 </dev/null &
pids+=($!)
setsid timeout "$limit" "$bindir/keel-payment-worker" \
        --effects "$tmp/effects.log" >"$tmp/worker.log" 2>&1 </dev/null &
pids+=($!)
wait_file "$tmp/metrics.port" || die "the orchestrator did not serve metrics"

printf '%s\n' \
        'order-3:{"type":"OrderPlaced","order":{"amount":4200}}' \
        'order-1:{"type":"OrderShipped","carrier":"dhl"}' \
        'order-4:this is not JSON' \
        'order-1:{"type":"OrderPlaced","order":{"amount":990,"card":"4242"}}' |
        kcat -b "$b" -P -t orders -K: || die "kcat produce"

# ---- what the workflows emitted -------------------------------------------
# The dev broker shows the records of aborted transactions too: keep the
# first per keel-id, as docs/streams.md says.
for _ in $(seq 300); do
        kcat -b "$b" -C -t payments.completed -e -q \
                -X isolation.level=read_committed \
                -f '%h %k %s\n' 2>/dev/null | sort -u -k1,1 >"$tmp/completed"
        [ "$(wc -l <"$tmp/completed")" -ge 3 ] && break
        sleep 0.2
done
cat "$tmp/completed"
[ "$(wc -l <"$tmp/completed")" -eq 3 ] && ok "three records on payments.completed" ||
        bad "records: $(cat "$tmp/completed")"
grep -q '^keel-id=order-1/.* order-1 .*"status":"charged"' "$tmp/completed" &&
        ok "order-1 charged" || bad "order-1"
grep -q '^keel-id=order-2/.* order-2 .*"status":"declined"' "$tmp/completed" &&
        grep -q '"reason":"the card was declined"' "$tmp/completed" &&
        ok "order-2 declined, with the reason" || bad "order-2"
grep -q '^keel-id=order-3/.* order-3 {"amount":4200,.*"status":"charged"' \
        "$tmp/completed" && ok "order-3 charged" || bad "order-3"
[ "$(grep -c 'chargeCard' "$tmp/effects.log")" -eq 2 ] &&
        ok "two cards charged (order-2 declined)" ||
        bad "effects: $(cat "$tmp/effects.log")"

# ---- the record that could not be mapped ----------------------------------
for _ in $(seq 100); do
        kcat -b "$b" -C -t keel.dlq -e -q -f '%k\n' 2>/dev/null |
                grep -q '^order-4$' && break
        sleep 0.2
done
kcat -b "$b" -C -t keel.dlq -e -q -D '' -f '%s' -m 10 \
        >"$tmp/dlq.bin" 2>/dev/null
kcat -b "$b" -C -t keel.dlq -e -q -f '%k\n' >"$tmp/dlq.keys" 2>/dev/null
grep -qx 'order-4' "$tmp/dlq.keys" && ok "order-4 is in keel.dlq" ||
        bad "dlq keys: $(cat "$tmp/dlq.keys")"
p=$(kcat -b "$b" -C -t keel.dlq -e -q -f '%p %k\n' | awk '$2=="order-4"{print $1; exit}')
kcat -b "$b" -C -t keel.dlq -p "${p:-0}" -e -q -D '' -f '%s' -o beginning \
        -c 1 >"$tmp/dead.bin" 2>/dev/null
dec=$("$keel" codec decode <"$tmp/dead.bin" 2>&1)
grep -q '"component":"ingress"' <<<"$dec" && grep -q '"source_topic":"orders"' <<<"$dec" &&
        grep -q 'the value is not JSON' <<<"$dec" &&
        ok "its dead letter names the topic and why" || bad "dead letter: $dec"

# ---- the metrics ---------------------------------------------------------
m=$(curl -s "http://127.0.0.1:$(tr -d '\n' <"$tmp/metrics.port")/metrics")
for want in "keel_orchestrator_rejected_total 1" \
        "keel_ingress_records_total 6" "keel_ingress_starts_total 4" \
        "keel_ingress_skipped_total 1" "keel_ingress_dead_letters_total 1" \
        "keel_ingress_partitions 4"; do
        grep -qx "$want" <<<"$m" && ok "metrics: $want" ||
                bad "metrics: no '$want' in: $(grep keel_ingress <<<"$m")"
done
grep -q 'level=warn component=ingress .*msg="dead-lettered"' "$tmp/orchestrator.log" &&
        ok "the dead letter is logged" || bad "no log line"

stop_all
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
