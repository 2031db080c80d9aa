#!/usr/bin/env bash
# A deliberately non-deterministic edit to an example, made in a copy of
# its source, is caught by `keel replay` against the example's recorded
# histories: the payment workflow sends its receipt with another activity
# ("emailReceipt" instead of "sendReceipt"). Every recorded payment that got
# that far is reported at the event of that activity; the one declined
# before it still replays. The unedited copy, built the same way, replays
# them all: the edit alone makes the difference.
set -uo pipefail
keel=${1:?keel} src=${2:?source dir} inc=${3:?generated include dir}
fixtures=${4:?fixtures} cc=${5:-cc}
. "$src/tests/support/tally.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

build() { # build <dir> <out.so>: the payment module from the sources in dir
        "$cc" -shared -fPIC -o "$2" -I "$1" -I "$src/sdk/include" -I "$inc" \
                -I "$src/examples/common" $(pkg-config --cflags jansson) \
                "$1/payment_module.c" "$1/payment_workflow.c"
}
for v in same edited; do
        mkdir -p "$tmp/$v"
        cp "$src"/examples/payment/{payment.h,payment_module.c,payment_workflow.c} "$tmp/$v/"
done
sed -i 's/"sendReceipt"/"emailReceipt"/' "$tmp/edited/payment_workflow.c"
grep -q '"emailReceipt"' "$tmp/edited/payment_workflow.c" &&
        ok "the copy is edited" || bad "sed found no sendReceipt to edit"
build "$tmp/same" "$tmp/same.so" && build "$tmp/edited" "$tmp/edited.so" &&
        ok "both copies build" || bad "build failed"

out=$("$keel" replay --workflows "$tmp/same.so" "$fixtures"/payment-*.json 2>/dev/null)
[ $? -eq 0 ] && ok "the unedited copy replays every payment" || bad "unedited: $out"

out=$("$keel" replay --workflows "$tmp/edited.so" "$fixtures"/payment-*.json 2>/dev/null)
rc=$?
[ $rc -eq 1 ] && ok "the edit fails the replay (exit 1)" || bad "edited: exit $rc: $out"
for f in completed refunded cancelled flaky terminated; do
        grep -q "^MISMATCH .*payment-$f.json: .*history has ActivityScheduled(sendReceipt, activity [0-9]*), the code issued ActivityScheduled(emailReceipt, activity [0-9]*)$" <<<"$out" &&
                ok "payment-$f: caught at the receipt" || bad "payment-$f: $out"
done
for f in declined out-of-stock; do
        grep -q "^ok .*payment-$f.json" <<<"$out" &&
                ok "payment-$f: never got to the receipt, still replays" || bad "payment-$f: $out"
done
tally_exit
