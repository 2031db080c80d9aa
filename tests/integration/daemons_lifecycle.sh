#!/usr/bin/env bash
# keel-orchestrator and keel-projector: --help and --version, a clear error
# naming the key for bad configuration, exit 3 when no broker answers, and
# against the dev broker: start, connect, and exit 0 on SIGTERM.
set -uo pipefail
bindir=${1:?directory of the binaries}
b=$(cat "${KEEL_TEST_DEVBROKER_FILE:?run through ctest}")
pass=0 fail=0
ok() { echo "ok: $1"; pass=$((pass + 1)); }
bad() { echo "FAILED: $1"; fail=$((fail + 1)); }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for d in keel-orchestrator keel-projector; do
        bin="$bindir/$d"
        "$bin" --help | grep -q "Usage: $d" && ok "$d --help" || bad "$d --help"
        "$bin" --version | grep -q "^$d [0-9]" && ok "$d --version" || bad "$d --version"

        out=$("$bin" -X partitions=many 2>&1)
        [ $? -eq 2 ] && grep -q "'partitions'" <<<"$out" &&
                ok "$d: bad setting -> exit 2 naming the key" || bad "$d: $out"
        out=$(KEEL_LOG_LEVEL=chatty "$bin" 2>&1)
        [ $? -eq 2 ] && grep -q "KEEL_LOG_LEVEL" <<<"$out" &&
                ok "$d: bad environment variable named" || bad "$d: $out"
        out=$("$bin" -X kafka.bogus.prop=1 2>&1)
        [ $? -eq 2 ] && grep -q "kafka.bogus.prop" <<<"$out" &&
                ok "$d: librdkafka rejects kafka.* property, named" || bad "$d: $out"
        echo "bootstrap = $b" >"$tmp/$d.conf"
        echo "nonsense" >>"$tmp/$d.conf"
        out=$("$bin" --config "$tmp/$d.conf" 2>&1)
        [ $? -eq 2 ] && grep -q "$d.conf:2" <<<"$out" &&
                ok "$d: bad config file line named" || bad "$d: $out"

        out=$("$bin" --bootstrap 127.0.0.1:1 -X timeout.ms=1500 2>&1)
        [ $? -eq 3 ] && grep -q "no broker at 127.0.0.1:1" <<<"$out" &&
                ok "$d: unreachable broker -> exit 3" || bad "$d: $out"

        # Configured through a file, as an operator would.
        echo "bootstrap = $b" >"$tmp/$d.conf"
        # Port 0: tests never listen on a fixed port.
        "$bin" --config "$tmp/$d.conf" -X http.listen=127.0.0.1:0 \
                2>"$tmp/$d.log" &
        pid=$!
        for _ in $(seq 100); do
                grep -q "msg=started" "$tmp/$d.log" && break
                sleep 0.1
        done
        grep -q "msg=started bootstrap=$b partitions=12" "$tmp/$d.log" &&
                ok "$d connected to the dev broker" || bad "$d: $(cat "$tmp/$d.log")"
        kill -TERM $pid
        wait $pid
        rc=$?
        [ $rc -eq 0 ] && grep -q "msg=stopped" "$tmp/$d.log" &&
                ok "$d exits 0 on SIGTERM" || bad "$d exit $rc"
done

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
