#!/usr/bin/env bash
# `keel replay`: every recorded history replays against the code of the
# example it comes from (exit 0); against a changed deployment of the
# payment workflow (the v2 module, which reserves stock before charging)
# each payment history is reported at its first differing event and the
# others still replay (exit 1); a history whose type no module registers
# is an error; unreadable files and usage errors are said as such.
# Arguments: keel, the payment module, its v2, the fixtures' folder, then
# the modules of the other examples whose histories are there.
set -uo pipefail
keel=${1:?keel} mod=${2:?module} mod2=${3:?v2 module} dir=${4:?fixtures}
shift 4
others=$(IFS=,; echo "$*")
pass=0 fail=0
ok() { echo "ok: $1"; pass=$((pass + 1)); }
bad() { echo "FAILED: $1"; fail=$((fail + 1)); }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=$(ls "$dir"/*.json | wc -l)
npay=$(ls "$dir"/payment-*.json | wc -l)

out=$("$keel" replay --workflows "$mod${others:+,$others}" "$dir"/*.json 2>/dev/null)
rc=$?
[ $rc -eq 0 ] && grep -q "^$n replayed, 0 did not$" <<<"$out" &&
        ok "$n recorded histories replay" || bad "replay: exit $rc: $out"

out=$("$keel" replay --workflows "$mod2${others:+,$others}" "$dir"/*.json 2>/dev/null)
rc=$?
[ $rc -eq 1 ] && [ "$(grep -c '^MISMATCH .*event 2: history has MarkerRecorded(state 1), the code issued ActivityScheduled(reserveInventory, activity 1)$' <<<"$out")" -eq "$npay" ] &&
        [ "$(grep -c '^MISMATCH' <<<"$out")" -eq "$npay" ] &&
        grep -q "^$((n - npay)) replayed, $npay did not$" <<<"$out" &&
        ok "a breaking change is reported at event 2 of each of the $npay payments" || bad "v2: exit $rc: $out"

if [ "$n" -gt "$npay" ]; then
        out=$("$keel" replay --workflows "$mod" "$dir"/*.json 2>/dev/null)
        rc=$?
        [ $rc -eq 1 ] && [ "$(grep -c "^ERROR    .*: no workflow type '.*' is registered$" <<<"$out")" -eq $((n - npay)) ] &&
                grep -q "^$npay replayed, $((n - npay)) did not$" <<<"$out" &&
                ok "histories of types no module registers are errors" || bad "unregistered: exit $rc: $out"
fi

out=$(cat "$dir/payment-refunded.json" | "$keel" replay --workflows "$mod" --json - 2>/dev/null)
[ $? -eq 0 ] && grep -q '"result":"ok"' <<<"$out" && grep -q '"workflow_id":"payment-refunded"' <<<"$out" &&
        ok "a history on standard input, as JSON" || bad "stdin: $out"

echo '{"events": [' >"$tmp/cut.json"
out=$("$keel" replay --workflows "$mod" "$tmp/cut.json" "$tmp/none.json" 2>/dev/null)
[ $? -eq 1 ] && grep -q "^ERROR    $tmp/cut.json" <<<"$out" && grep -q "^ERROR    $tmp/none.json" <<<"$out" &&
        ok "unreadable histories are errors" || bad "bad files: $out"

"$keel" replay "$dir/payment-refunded.json" >/dev/null 2>&1
[ $? -eq 2 ] && ok "no module: usage error" || bad "no module"
out=$("$keel" replay --workflows "$tmp/nope.so" "$dir/payment-refunded.json" 2>&1)
[ $? -eq 2 ] && grep -q "cannot load workflow module" <<<"$out" &&
        ok "a module that does not load is named" || bad "bad module: $out"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
