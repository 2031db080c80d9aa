#!/usr/bin/env bash
# keel's demo on a fresh Debian 12 machine: install what is missing, build,
# start the dev broker (an in-memory Kafka), show keel's topics, send a
# workflow start command to keel.inbox and read it back, and start the
# orchestrator and projector against it. Everything it starts is stopped
# when it ends.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "Checking Debian packages"
scripts/setup.sh build

say "Building keel (build/)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKEEL_BUILD_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
bin=$root/build/bin
"$bin/keel" --version

work=$(mktemp -d)
pids=()
cleanup() {
        for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
        wait 2>/dev/null || true
        rm -rf "$work"
}
trap cleanup EXIT INT TERM

say "Starting the dev broker: keel dev-broker --partitions 12"
"$bin/keel" dev-broker --partitions 12 --port-file "$work/bootstrap" \
        >/dev/null 2>"$work/dev-broker.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/bootstrap" ] && break; sleep 0.1; done
[ -s "$work/bootstrap" ] || { cat "$work/dev-broker.log"; exit 1; }
b=$(cat "$work/bootstrap")
echo "bootstrap: $b"

say "keel's topics: keel topics describe --bootstrap $b"
"$bin/keel" topics describe --bootstrap "$b"

wf="order-$(date +%s)"
p=$("$bin/keel" partition --partitions 12 "$wf" | cut -f2)
say "Starting workflow $wf: a StartWorkflow command to keel.inbox[$p]"
echo "(partition $p = murmur2(\"$wf\") % 12, as Kafka's Java client computes it)"
cat >"$work/start.json" <<JSON
{"workflow_id": "$wf", "command_id": "demo-1", "ts": $(date +%s)000,
 "workflow_type": "payment",
 "input": "{\"card\": \"4242\", \"amount\": 4200, \"sku\": \"book-1\"}"}
JSON
"$bin/keel" codec encode keel.inbox.StartWorkflow <"$work/start.json" >"$work/start.bin"
echo "encoded: $(wc -c <"$work/start.bin") bytes of Avro single-object encoding," \
        "fingerprint $("$bin/keel" schema fingerprint keel.inbox.StartWorkflow)"
kcat -b "$b" -P -t keel.inbox -k "$wf" -p "$p" "$work/start.bin"
echo "produced with kcat."

say "Reading it back from keel.inbox[$p] with kcat, decoding with keel codec decode"
kcat -b "$b" -C -t keel.inbox -p "$p" -o -1 -e -q -D '' -f '%s' >"$work/back.bin"
"$bin/keel" codec decode <"$work/back.bin"

say "Starting keel-orchestrator and keel-projector against the dev broker"
for d in keel-orchestrator keel-projector; do
        KEEL_BOOTSTRAP=$b "$bin/$d" 2>"$work/$d.log" &
        pids+=($!)
done
for d in keel-orchestrator keel-projector; do
        for _ in $(seq 100); do grep -q msg=started "$work/$d.log" && break; sleep 0.1; done
        cat "$work/$d.log"
done

say "Stopping everything (SIGTERM)"
cleanup
trap - EXIT
echo "Done. Next: 'scripts/test.sh' runs the whole test suite."
