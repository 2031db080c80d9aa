#!/usr/bin/env bash
# Debian's kcat, a Kafka client keel did not write, produces to and
# consumes from keel.inbox on `keel dev-broker`; a keel-encoded record
# read back with kcat decodes with `keel codec decode`; `keel topics
# create` fails fast and says why, since the dev broker has no Admin API.
set -uo pipefail
keel=${1:?keel binary}
b=$(cat "${KEEL_TEST_DEVBROKER_FILE:?run through ctest}")
pass=0 fail=0
ok() { echo "ok: $1"; pass=$((pass + 1)); }
bad() { echo "FAILED: $1"; fail=$((fail + 1)); }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The topic set the dev broker created.
meta=$(kcat -b "$b" -L -m 10)
for t in keel.inbox keel.history keel.dlq keel.tasks.default; do
        grep -q "topic \"$t\" with 12 partitions" <<<"$meta" &&
                ok "kcat sees $t with 12 partitions" || bad "topic $t: $meta"
done

# Produce with kcat keyed by workflow ID, to the partition keel computes.
key="kcat-order-$$"
p=$("$keel" partition --partitions 12 "$key" | cut -f2)
echo "hello from kcat" | kcat -b "$b" -P -t keel.inbox -k "$key" -p "$p" -m 10 &&
        ok "kcat produced to keel.inbox[$p]" || bad "kcat produce"
got=$(kcat -b "$b" -C -t keel.inbox -p "$p" -o beginning -e -q -m 10 \
        -f '%k|%s\n' | grep -a "^$key|")
[ "$got" = "$key|hello from kcat" ] && ok "kcat consumed it back" ||
        bad "consumed '$got'"

# A keel record through kcat, decoded by keel.
printf '{"workflow_id":"%s","command_id":"c-1","ts":1764032400000,"signal_name":"refundApproved","payload":"{\\"amount\\":12}"}' "$key" |
        "$keel" codec encode keel.inbox.SignalWorkflow >"$tmp/rec.bin"
kcat -b "$b" -P -t keel.inbox -k "$key" -p "$p" -m 10 "$tmp/rec.bin" || bad "produce record"
kcat -b "$b" -C -t keel.inbox -p "$p" -o -1 -e -q -m 10 -D '' -f '%s' >"$tmp/back.bin"
dec=$("$keel" codec decode <"$tmp/back.bin")
grep -q '"type":"keel.inbox.SignalWorkflow"' <<<"$dec" &&
        grep -q '"signal_name":"refundApproved"' <<<"$dec" &&
        ok "keel decodes the record kcat read back" || bad "decode: $dec"

# topics create: a clear error, quickly, with the 'unavailable' exit code.
start=$(date +%s)
out=$("$keel" topics create --bootstrap "$b" 2>&1)
rc=$?
took=$(($(date +%s) - start))
[ $rc -eq 3 ] && ok "topics create exits 3 on the dev broker" || bad "exit $rc: $out"
grep -q "does not support the Kafka Admin API" <<<"$out" &&
        grep -q "dev broker" <<<"$out" && ok "and says why" || bad "message: $out"
[ $took -lt 10 ] && ok "without hanging (${took}s)" || bad "took ${took}s"

# describe works from metadata.
out=$("$keel" topics describe --bootstrap "$b" 2>&1)
grep -q "keel.history *partitions=12" <<<"$out" && ok "topics describe" ||
        bad "describe: $out"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
