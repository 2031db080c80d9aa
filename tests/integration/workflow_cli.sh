#!/usr/bin/env bash
# `keel workflow` against `keel dev-broker`, with no orchestrator running:
# commands land in keel.inbox on the workflow's partition and read back
# with kcat decode with `keel codec decode`; a start that waits says it was
# sent but saw no outcome (exit 1); bad JSON is a usage error (exit 2) that
# the help documents; no broker is exit 3, within timeout.ms.
set -uo pipefail
keel=${1:?keel binary}
b=$(cat "${KEEL_TEST_DEVBROKER_FILE:?run through ctest}")
pass=0 fail=0
ok() { echo "ok: $1"; pass=$((pass + 1)); }
bad() { echo "FAILED: $1"; fail=$((fail + 1)); }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The value of the n-th ($3) record keyed $2 in keel.inbox[$1], decoded
# to {"type":..,"record":..}.
decode_nth() {
        local off
        off=$(kcat -b "$b" -C -t keel.inbox -p "$1" -o 0 -e -q -m 10 \
                -f '%o %k\n' |
                awk -v k="$2" -v n="$3" '$2 == k && ++i == n { print $1 }')
        [ -n "$off" ] || return 1
        kcat -b "$b" -C -t keel.inbox -p "$1" -o "$off" -c 1 -e -q -m 10 \
                -D '' -f '%s' >"$tmp/rec.bin" || return 1
        "$keel" codec decode <"$tmp/rec.bin"
}

# start --wait 0: written, and it says so.
id="cli-start-$$"
p=$("$keel" partition --partitions 12 "$id" | cut -f2)
out=$("$keel" workflow start --bootstrap "$b" --id "$id" --type test-client-type \
        --input '{"amount":12}' --reuse-policy REJECT_DUPLICATE --wait 0 2>&1)
rc=$?
[ $rc -eq 0 ] && ok "start --wait 0 exits 0" || bad "exit $rc: $out"
grep -q "^sent start $id command [0-9a-f-]\{36\}$" <<<"$out" &&
        ok "and prints the command ID" || bad "output: $out"
cmd_id=$(awk '{ print $5 }' <<<"$out")
dec=$(decode_nth "$p" "$id" 1)
grep -q '"type":"keel.inbox.StartWorkflow"' <<<"$dec" &&
        grep -q "\"workflow_id\":\"$id\"" <<<"$dec" &&
        grep -q '"workflow_type":"test-client-type"' <<<"$dec" &&
        grep -q '"input":"{\\"amount\\":12}"' <<<"$dec" &&
        grep -q '"id_reuse_policy":"REJECT_DUPLICATE"' <<<"$dec" &&
        grep -q "\"command_id\":\"$cmd_id\"" <<<"$dec" &&
        ok "kcat reads it on keel.inbox[$p]; keel decodes it" ||
        bad "record: $dec"

# signal, cancel, terminate --wait 0.
sid="cli-signal-$$"
sp=$("$keel" partition --partitions 12 "$sid" | cut -f2)
"$keel" workflow signal --bootstrap "$b" --id "$sid" --name approve \
        --input '"yes"' --wait 0 >/dev/null 2>&1 &&
        "$keel" workflow cancel --bootstrap "$b" --id "$sid" --reason why \
                --wait 0 >/dev/null 2>&1 &&
        "$keel" workflow terminate --bootstrap "$b" --id "$sid" \
                --details '{"by":"ops"}' --wait 0 >/dev/null 2>&1 &&
        ok "signal, cancel, terminate --wait 0 exit 0" || bad "a command failed"
recs=$(kcat -b "$b" -C -t keel.inbox -p "$sp" -o 0 -e -q -m 10 -f '%k\n' |
        grep -c "^$sid$")
[ "$recs" = 3 ] && ok "three records keyed $sid" || bad "$recs records"
dec=$(decode_nth "$sp" "$sid" 1)
grep -q '"type":"keel.inbox.SignalWorkflow"' <<<"$dec" &&
        grep -q '"signal_name":"approve"' <<<"$dec" &&
        grep -q '"payload":"\\"yes\\""' <<<"$dec" &&
        ok "the signal decodes" || bad "signal: $dec"
dec=$(decode_nth "$sp" "$sid" 2)
grep -q '"type":"keel.inbox.CancelWorkflow"' <<<"$dec" &&
        grep -q '"reason":"why"' <<<"$dec" &&
        ok "the cancel decodes" || bad "cancel: $dec"
dec=$(decode_nth "$sp" "$sid" 3)
grep -q '"type":"keel.inbox.TerminateWorkflow"' <<<"$dec" &&
        grep -q '"details":"{\\"by\\":\\"ops\\"}"' <<<"$dec" &&
        ok "the terminate decodes" || bad "terminate: $dec"

# start --wait 1 with no orchestrator: sent, no outcome, exit 1.
start=$(date +%s%N)
out=$("$keel" workflow start --bootstrap "$b" --id "cli-wait-$$" \
        --type test-client-type --wait 1 2>&1)
rc=$?
took=$((($(date +%s%N) - start) / 1000000))
[ $rc -eq 1 ] && ok "start --wait 1 without orchestrator exits 1" ||
        bad "exit $rc: $out"
grep -q "KEEL_ERR_TIMEOUT" <<<"$out" && grep -q "was sent" <<<"$out" &&
        grep -q "no outcome" <<<"$out" &&
        grep -q "orchestrator running" <<<"$out" &&
        ok "and says it was sent but saw no outcome" || bad "message: $out"
[ $took -ge 1000 ] && [ $took -lt 5000 ] && ok "after ${took} ms" ||
        bad "took ${took} ms"

# Bad JSON: a usage error that names the flag; the help documents it.
out=$("$keel" workflow start --bootstrap "$b" --id "cli-bad-$$" \
        --type test-client-type --input '{amount:12}' 2>&1)
rc=$?
[ $rc -eq 2 ] && ok "bad --input exits 2" || bad "exit $rc: $out"
grep -q -- "--input is not valid JSON" <<<"$out" && ok "and says why" ||
        bad "message: $out"
"$keel" workflow start --bootstrap "$b" --id "cli-bad-$$" --type test-client-type \
        --signal s --signal-input 'nope' >/dev/null 2>&1
[ $? -eq 2 ] && ok "bad --signal-input exits 2" || bad "signal-input"
"$keel" workflow signal --bootstrap "$b" --id "cli-bad-$$" --name s \
        --input '[1,' >/dev/null 2>&1
[ $? -eq 2 ] && ok "bad signal --input exits 2" || bad "signal --input"
n=$(kcat -b "$b" -C -t keel.inbox -p \
        "$("$keel" partition --partitions 12 "cli-bad-$$" | cut -f2)" \
        -o 0 -e -q -m 10 -f '%k\n' | grep -c "^cli-bad-$$$")
[ "$n" = 0 ] && ok "and nothing was sent" || bad "$n records sent"
help=$("$keel" workflow start --help)
rc=$?
[ $rc -eq 0 ] && grep -q "does not parse is" <<<"$help" &&
        grep -q "a usage error (exit 2)" <<<"$help" &&
        grep -q "Exit codes" <<<"$help" &&
        ok "start --help documents it" || bad "help ($rc): $help"
for v in signal cancel terminate; do
        "$keel" workflow $v --help | grep -q "^Usage: keel workflow $v" &&
                ok "$v --help" || bad "$v --help"
done

# Usage errors.
"$keel" workflow start --bootstrap "$b" --type test-client-type >/dev/null 2>&1
[ $? -eq 2 ] && ok "missing --id exits 2" || bad "missing --id"
"$keel" workflow cancel --bootstrap "$b" --id x --type t >/dev/null 2>&1
[ $? -eq 2 ] && ok "an option of another verb exits 2" || bad "cancel --type"
"$keel" workflow start --bootstrap "$b" --id x --type t --wait -1 \
        >/dev/null 2>&1
[ $? -eq 2 ] && ok "negative --wait exits 2" || bad "--wait -1"
"$keel" workflow start --bootstrap "$b" --id '!x' --type t --wait 0 \
        >/dev/null 2>&1
[ $? -eq 2 ] && ok "an ID starting with '!' exits 2" || bad "'!x'"
"$keel" workflow stop >/dev/null 2>&1
[ $? -eq 2 ] && ok "an unknown verb exits 2" || bad "unknown verb"

# No broker: exit 3, within about timeout.ms.
start=$(date +%s)
out=$("$keel" workflow start --bootstrap 127.0.0.1:1 -X timeout.ms=1500 \
        --id "cli-nobroker-$$" --type test-client-type 2>&1)
rc=$?
took=$(($(date +%s) - start))
[ $rc -eq 3 ] && ok "no broker exits 3" || bad "exit $rc: $out"
grep -q "KEEL_ERR_TRANSPORT" <<<"$out" && grep -q "127.0.0.1:1" <<<"$out" &&
        ok "and names the broker" || bad "message: $out"
[ $took -lt 10 ] && ok "without hanging (${took}s)" || bad "took ${took}s"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
