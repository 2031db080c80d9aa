#!/usr/bin/env bash
# `keel config show` prints every setting and its origin, but never a
# secret's value: passwords, tokens and keys show as set, from wherever
# they came (flag, environment, file).
set -uo pipefail
keel=${1:?keel}
. "$(dirname "$0")/../support/tally.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "kafka.ssl.key.password = filesecret" >"$tmp/keel.conf"

out=$(KEEL_HTTP_TOKEN=envsecret "$keel" config show --config "$tmp/keel.conf" \
        -X kafka.sasl.password=flagsecret -X kafka.sasl.username=alice 2>&1)
[ $? -eq 0 ] && ok "config show runs" || bad "exit: $out"
for k in http.token kafka.sasl.password kafka.ssl.key.password; do
        grep -q "^$k = \*\*\*\*\*\*\*\*    # .*(secret, not shown)$" <<<"$out" &&
                ok "$k shown as set" || bad "$k: $out"
done
grep -q "flagsecret\|envsecret\|filesecret" <<<"$out" &&
        bad "a secret value leaked" || ok "values absent from the output"
grep -q "^kafka.sasl.username = alice    # " <<<"$out" &&
        ok "other settings still shown" || bad "username: $out"
grep -q "^http.token = \*" <<<"$("$keel" config show 2>&1)" &&
        bad "an unset token shown as set" || ok "an unset token shows empty"
tally_exit
