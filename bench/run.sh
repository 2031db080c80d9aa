#!/usr/bin/env bash
# keel's benchmark suite (issue 7), one command:
#
#   bench/run.sh [--quick] [--only LIST]
#   bench/run.sh --only soak [--soak-minutes N] [--soak-rate R]
#
# Builds keel and the benchmarks (Release, build-bench/), starts its own
# Apache Kafka test broker (tests/kafka/kafka-broker.sh, loopback ports
# picked at run time) and its own keel processes, runs each benchmark, prints
# a table per benchmark with the command that ran it, and writes every figure
# to bench/results/<date>.json. --quick runs each part briefly (a smoke
# test, a few minutes); the full run takes about 15 minutes. --only takes a
# comma-separated subset of: ceiling,latency,failover,throughput,memory,
# restore,projector (throughput includes the latency at half its rate).
# `soak` (not in the default list) runs payment-shaped workflows at
# --soak-rate a second (default 200) for --soak-minutes (default 30) with
# an orchestrator, a worker and keel-projector, closed runs deleted a
# minute after they close, and prints per minute: workflows started and
# completed, latency, each process's resident memory and the consumer
# groups' lag, so that a leak or a backlog shows as a trend.
#
# Everything is bounded: each load has a fixed duration or count, every
# benchmark program has a watchdog, this script has one too
# (KEEL_BENCH_MAX_SECONDS, default 3600), and an exit for any reason stops
# the processes it started and the broker.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

quick=0
only="ceiling,latency,failover,throughput,memory,restore,projector"
soak_min=30 soak_rate=200
while [ $# -gt 0 ]; do
        case "$1" in
        --quick) quick=1 ;;
        --only)
                only=$2
                shift
                ;;
        --soak-minutes)
                soak_min=$2
                shift
                ;;
        --soak-rate)
                soak_rate=$2
                shift
                ;;
        *)
                echo "usage: bench/run.sh [--quick] [--only LIST]" \
                        "[--soak-minutes N] [--soak-rate R]" >&2
                exit 2
                ;;
        esac
        shift
done
want() { [[ ",$only," == *",$1,"* ]]; }

# Sizes: full run, then --quick.
if [ $quick = 1 ]; then
        CEIL_S=3 LIGHT_S=5 TP_S=10 TP_WARM=3 DEF_S=5 HALF_S=5
        SLEEPERS=10000 RESTORE_EVENTS=100000 SLEEPERS_RESTORED=0
        PROJ_WFS=100000 HTTP_S=5 FAILOVERS="static-restart dynamic-restart"
else
        CEIL_S=10 LIGHT_S=30 TP_S=60 TP_WARM=5 DEF_S=20 HALF_S=30
        SLEEPERS=100000 RESTORE_EVENTS=1000000 SLEEPERS_RESTORED=1000000
        PROJ_WFS=1000000 HTTP_S=20
        FAILOVERS="static-restart dynamic-restart dynamic-standby dynamic-standby-6s
                dynamic-standby-2s"
fi
WINDOW=1000         # workflows in flight in the throughput run
WRK_C=32            # wrk's connections in the projector run
WORKER_CONC=512     # > WINDOW/2: the worker never pauses its fetching
# KEEL_BENCH_BUILD: another build directory (default build-bench).
build=${KEEL_BENCH_BUILD:-build-bench}
BIN=$root/$build/bin
MODULE=$root/$build/lib/libkeel_bench_workflows.so

# ---- build ---------------------------------------------------------------
# What the build needs, and wrk and jq (bench profile); not as root, it
# names the apt-get line to run and stops.
scripts/setup.sh bench
tests/kafka/fetch-kafka.sh >/dev/null
echo "Building keel and the benchmarks (Release, $build/)"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DKEEL_BUILD_BENCH=ON \
        -DKEEL_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null

# ---- processes -------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/keel-bench.XXXXXX")
json=$work/json
mkdir -p "$json" bench/results
orch_pid= worker_pid= watchdog_pid=
max_s=${KEEL_BENCH_MAX_SECONDS:-$((3600 + 60 * soak_min))}
# Not exported: keel programs read KEEL_KAFKA_* variables as kafka.* keys.
unset KEEL_KAFKA_MAX_SECONDS

stop_pid() { # PID: SIGTERM, up to 20 s, then SIGKILL
        local pid=$1 i
        [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 200; i++)); do
                kill -0 "$pid" 2>/dev/null || return 0
                sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
        local rc=$?
        trap - EXIT INT TERM
        stop_pid "$orch_pid"
        stop_pid "$worker_pid"
        tests/kafka/kafka-broker.sh stop "$work/broker" >/dev/null 2>&1 || true
        [ -n "$watchdog_pid" ] && kill "$watchdog_pid" 2>/dev/null || true
        if [ $rc = 0 ]; then
                rm -rf "$work"
        else
                echo "bench/run.sh failed (exit $rc); logs in $work" >&2
        fi
        exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
(
        sleep "$max_s"
        echo "bench/run.sh: ${max_s}s are up, stopping" >&2
        kill -TERM $$
) </dev/null >/dev/null 2>&1 &
watchdog_pid=$!

run() { # print the command, then run it
        echo "\$ $*" | sed "s|$root/||g"
        "$@"
}

echo "Starting the Apache Kafka $(cat tests/kafka/kafka-version) test broker"
KEEL_KAFKA_MAX_SECONDS=$max_s tests/kafka/kafka-broker.sh start "$work/broker" >/dev/null
B=$(cat "$work/broker/bootstrap")
broker_pid=$(cat "$work/broker/broker.pid")
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
"$BIN/keel" topics create --bootstrap "$B" --partitions 12 \
        --task-queue bench >/dev/null

orch_extra=()
start_orch() { # LOGNAME
        local from
        from=1
        [ -f "$work/$1" ] && from=$(($(wc -l <"$work/$1") + 1))
        rm -f "$work/mport"
        "$BIN/keel-orchestrator" --bootstrap "$B" --workflows "$MODULE" \
                --metrics-port-file "$work/mport" --log-level info \
                -X timeout.ms=600000 "${orch_extra[@]}" >>"$work/$1" 2>&1 &
        orch_pid=$!
        local i
        for ((i = 0; i < 1200; i++)); do
                tail -n "+$from" "$work/$1" 2>/dev/null |
                        grep -q 'msg=assigned partitions=12' && return 0
                kill -0 "$orch_pid" 2>/dev/null || break
                sleep 0.1
        done
        echo "keel-orchestrator did not take its partitions; see $work/$1" >&2
        exit 1
}
stop_orch() {
        stop_pid "$orch_pid"
        orch_pid=
}
start_worker() { # CONCURRENCY
        stop_pid "$worker_pid"
        "$BIN/keel-bench-worker" --bootstrap "$B" --concurrency "$1" \
                >>"$work/worker.log" 2>&1 &
        worker_pid=$!
        sleep 2
}
pids() { echo "--pid orch=$orch_pid --pid worker=$worker_pid --pid broker=$broker_pid"; }

start_orch orchestrator.log
start_worker "$WORKER_CONC"
# A few workflows first: warm caches, and runs the synthetic histories copy.
"$BIN/keel-bench-load" --bootstrap "$B" --mode rate --rate 50 --seconds 4 \
        --warmup 0 --label warm-up --json "$json/00-warmup.json" >/dev/null

# ---- 1. ceiling ---------------------------------------------------------------
if want ceiling; then
        run "$BIN/keel-bench-ceiling" --bootstrap "$B" --seconds "$CEIL_S" \
                --json "$json/10-ceiling.json"
fi

# ---- 3a. latency at light load ---------------------------------------------
if want latency; then
        run "$BIN/keel-bench-load" --bootstrap "$B" --mode rate --rate 10 \
                --seconds "$LIGHT_S" --warmup 1 --label light \
                --metrics-port-file "$work/mport" $(pids) \
                --json "$json/30-latency-light.json"
fi

# ---- 4b. failover after kill -9 (small histories: before the big runs) ----
if want failover; then
        stop_orch
        for f in $FAILOVERS; do
                args=()
                case $f in
                static-restart) args=(--static --restart) ;;
                dynamic-restart) args=(--restart) ;;
                dynamic-standby) args=(--standby) ;;
                dynamic-standby-6s) args=(--standby --session-ms 6000) ;;
                dynamic-standby-2s) args=(--standby --session-ms 2000) ;;
                esac
                run "$BIN/keel-bench-restore" failover --bootstrap "$B" \
                        --orchestrator "$BIN/keel-orchestrator" \
                        --workflows "$MODULE" --workdir "$work" --label "$f" \
                        --seconds 60 "${args[@]}" --json "$json/41-failover-$f.json"
        done
        start_orch orchestrator.log
fi

# ---- 2. throughput, and 3b. latency at half of it ---------------------------
if want throughput; then
        run "$BIN/keel-bench-load" --bootstrap "$B" --mode closed \
                --window "$WINDOW" --seconds "$TP_S" --warmup "$TP_WARM" \
                --label "max (worker concurrency $WORKER_CONC)" \
                --metrics-port-file "$work/mport" $(pids) \
                --json "$json/20-throughput.json"
        half=$(jq '.workflows_per_s / 2 | floor' "$json/20-throughput.json")
        run "$BIN/keel-bench-load" --bootstrap "$B" --mode rate --rate "$half" \
                --seconds "$HALF_S" --warmup 2 --label half \
                --metrics-port-file "$work/mport" $(pids) \
                --json "$json/31-latency-half.json"
        # The same with the worker's default-like concurrency (16): its
        # flow control pauses fetching at 2 x concurrency tasks.
        start_worker 16
        run "$BIN/keel-bench-load" --bootstrap "$B" --mode closed \
                --window "$WINDOW" --seconds "$DEF_S" --warmup 2 \
                --label "worker concurrency 16" \
                --metrics-port-file "$work/mport" $(pids) \
                --json "$json/21-throughput-conc16.json"
        start_worker "$WORKER_CONC"
fi

# ---- 5a. memory: sleeping workflows started live ----------------------------
if want memory; then
        stop_orch
        start_orch orchestrator.log
        run "$BIN/keel-bench-load" --bootstrap "$B" --mode sleepers \
                --count "$SLEEPERS" --window 2000 --rss-pid "$orch_pid" \
                --metrics-port-file "$work/mport" --label "$SLEEPERS live" \
                --json "$json/50-memory-live.json"
fi

# ---- 4a. restore of a partition with many events; 5b. restored sleepers ----
if want restore; then
        if [ "$SLEEPERS_RESTORED" -gt 0 ] && ! want memory; then
                # A benchsleep run to copy.
                "$BIN/keel-bench-load" --bootstrap "$B" --mode sleepers \
                        --count 10 --json "$json/51-sleepers-template.json" >/dev/null
        fi
        stop_orch
        run "$BIN/keel-bench-restore" fill --bootstrap "$B" --partition 5 \
                --events "$RESTORE_EVENTS" --label rs- --type bench3 \
                --until WorkflowCompleted --json "$json/42-fill.json"
        run "$BIN/keel-bench-restore" takeover --bootstrap "$B" --partition 5 \
                --orchestrator "$BIN/keel-orchestrator" --workflows "$MODULE" \
                --workdir "$work" --label "$RESTORE_EVENTS events" \
                --timeout-ms 600000 \
                --json "$json/43-takeover.json"
        if [ "$SLEEPERS_RESTORED" -gt 0 ]; then
                run "$BIN/keel-bench-restore" fill --bootstrap "$B" \
                        --partition 7 --events $((SLEEPERS_RESTORED * 2)) \
                        --label sl- --type benchsleep --until TimerStarted \
                        --json "$json/52-fill-sleepers.json"
                run "$BIN/keel-bench-restore" takeover --bootstrap "$B" \
                        --partition 7 --orchestrator "$BIN/keel-orchestrator" \
                        --workflows "$MODULE" --workdir "$work" \
                        --label "$SLEEPERS_RESTORED sleepers restored" \
                        --timeout-ms 600000 \
                        --json "$json/53-takeover-sleepers.json"
        fi
        start_orch orchestrator.log
fi

# ---- 6. projector ----------------------------------------------------------------
if want projector; then
        stop_orch
        stop_pid "$worker_pid"
        worker_pid=
        rm -f "$work/pport"
        echo "\$ build-bench/bin/keel-bench-projector --bootstrap $B --workflows $PROJ_WFS --port-file PORTFILE --json ..."
        "$BIN/keel-bench-projector" --bootstrap "$B" --workflows "$PROJ_WFS" \
                --port-file "$work/pport" --serve-seconds 600 \
                --json "$json/60-projector-fold.json" &
        proj_pid=$!
        for ((i = 0; i < 6000; i++)); do
                [ -s "$work/pport" ] && break
                kill -0 "$proj_pid" 2>/dev/null || break
                sleep 0.1
        done
        [ -s "$work/pport" ] || {
                echo "keel-bench-projector did not start" >&2
                exit 1
        }
        pport=$(cat "$work/pport")
        # The headline: wrk, 2 threads, 32 kept-alive connections, random
        # IDs (bench/wrk-ids.lua writes the JSON).
        KEEL_WRK_JSON="$json/61-http-get.json" \
                KEEL_WRK_LABEL="GET state, wrk -t2 -c$WRK_C" \
                run wrk -t2 -c"$WRK_C" -d"${HTTP_S}s" --latency \
                -s bench/wrk-ids.lua "http://127.0.0.1:$pport" -- \
                '/api/v1/workflows/wf-{n}' "$PROJ_WFS" 7
        # The same with keel's own client: kept-alive connections, then one
        # request per connection.
        run "$BIN/keel-bench-http" --port-file "$work/pport" --threads 4 \
                --keepalive --seconds "$HTTP_S" \
                --path '/api/v1/workflows/wf-{n}' --ids "$PROJ_WFS" --pad 7 \
                --label "GET state, keep-alive" \
                --json "$json/64-http-get-keepalive.json"
        run "$BIN/keel-bench-http" --port-file "$work/pport" --threads 4 \
                --seconds "$HTTP_S" --path '/api/v1/workflows/wf-{n}' \
                --ids "$PROJ_WFS" --pad 7 --label "GET state, new connections" \
                --json "$json/65-http-get-connect.json"
        run "$BIN/keel-bench-http" --port-file "$work/pport" --threads 1 \
                --requests 20 --seconds 120 \
                --path '/api/v1/workflows?status=running&type=bench3&limit=50' \
                --label "list, rare filter" --json "$json/62-http-list-rare.json"
        run "$BIN/keel-bench-http" --port-file "$work/pport" --threads 1 \
                --requests 20 --seconds 120 \
                --path '/api/v1/workflows?status=completed&type=payment&limit=50' \
                --label "list, common filter" \
                --json "$json/63-http-list-common.json"
        stop_pid "$proj_pid"
fi

# ---- 7. soak: memory and lag over time --------------------------------------
if want soak; then
        stop_orch
        # Closed runs are deleted a minute after they close (retention):
        # what a long-running deployment keeps in memory is its open
        # workflows, not every one it ever ran.
        orch_extra=(-X retention.closed.ms=60000)
        start_orch orchestrator-soak.log
        rm -f "$work/sport"
        "$BIN/keel-projector" --bootstrap "$B" -X http.listen=127.0.0.1:0 \
                --port-file "$work/sport" >>"$work/projector.log" 2>&1 &
        soak_proj=$!
        rss() { awk '/^VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$1/status" 2>/dev/null || echo -; }
        lag() { # GROUP: summed lag of a consumer group, or -
                tests/kafka/kafka-run.sh org.apache.kafka.tools.consumer.group.ConsumerGroupCommand \
                        --bootstrap-server "$B" --describe --group "$1" 2>/dev/null |
                        awk '$6 ~ /^[0-9]+$/ {s += $6; n++} END {print n ? s : "-"}'
        }
        echo "\$ bench/run.sh --only soak --soak-minutes $soak_min --soak-rate $soak_rate"
        printf '%-6s %9s %9s %8s %8s %9s %9s %9s %9s %9s %9s\n' minute started \
                completed p50_ms p99_ms orch_MB worker_MB proj_MB broker_MB \
                orch_lag work_lag
        for ((m = 1; m <= soak_min; m++)); do
                f="$json/70-soak-$(printf %03d "$m").json"
                "$BIN/keel-bench-load" --bootstrap "$B" --mode rate \
                        --rate "$soak_rate" --seconds 60 --warmup 0 --drain 30 \
                        --label "soak minute $m" --json "$f" >/dev/null
                o=$(rss "$orch_pid") w=$(rss "$worker_pid")
                pr=$(rss "$soak_proj") br=$(rss "$broker_pid")
                lo=$(lag keel-orchestrator) lw=$(lag keel-worker-bench)
                python3 - "$f" "$m" "$o" "$w" "$pr" "$br" "$lo" "$lw" <<'PY'
import json, sys
f, m, o, w, pr, br, lo, lw = sys.argv[1:9]
r = json.load(open(f))
lat = r.get("latency_ms") or {}
r["soak"] = {"minute": int(m), "rss_mb": {"orchestrator": o, "worker": w,
             "projector": pr, "broker": br},
             "lag": {"keel-orchestrator": lo, "keel-worker-bench": lw}}
json.dump(r, open(f, "w"), indent=2)
done = r.get("measured", 0)
print("%-6s %9s %9s %8.1f %8.1f %9s %9s %9s %9s %9s %9s" % (
    m, done + r.get("unfinished", 0), done,
    lat.get("p50") or 0, lat.get("p99") or 0, o, w, pr, br, lo, lw))
PY
        done
        stop_pid "$soak_proj"
fi

# ---- results ---------------------------------------------------------------------
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
out="bench/results/$(date -u +%Y-%m-%dT%H%M%SZ)$([ $quick = 1 ] && echo -quick || true).json"
python3 - "$json" "$out" "$quick" "$load_before" "$load_after" \
        "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git status --porcelain 2>/dev/null | grep -q . && echo +uncommitted)" \
        "$(cat tests/kafka/kafka-version)" <<'PY'
import glob, json, os, sys, platform
d, out, quick, lb, la, commit, kafka = sys.argv[1:8]
res = {}
for f in sorted(glob.glob(os.path.join(d, "*.json"))):
    with open(f) as fh:
        res[os.path.basename(f)[:-5]] = json.load(fh)
doc = {"quick": quick == "1", "commit": commit, "kafka": kafka,
       "cpus": os.cpu_count(), "machine": platform.machine(),
       "loadavg_before": lb, "loadavg_after": la, "results": res}
with open(out, "w") as fh:
    json.dump(doc, fh, indent=2)

def g(k, *path):
    v = res.get(k)
    for p in path:
        v = v.get(p) if isinstance(v, dict) else None
    return v
rows = []
def row(what, fig, target, ok):
    rows.append((what, fig, target, "-" if ok is None else ("met" if ok else "missed")))
tp = g("20-throughput", "workflows_per_s")
ceil = g("10-ceiling", "produce", "records_per_s")
krps = g("20-throughput", "keel_records_per_s")
if tp is not None:
    row("3-activity workflows/s (1 orch, 1 worker, P=12)", "%.0f" % tp, ">= 5000", tp >= 5000)
if tp is not None and g("21-throughput-conc16", "workflows_per_s") is not None:
    row("  same, worker concurrency 16", "%.0f" % g("21-throughput-conc16", "workflows_per_s"), "", None)
if krps and ceil:
    r = krps / ceil
    row("keel records/s / ceiling produce records/s", "%.0f / %.0f = %.1f%%" % (krps, ceil, 100 * r), ">= 25%", r >= 0.25)
for k, name in (("30-latency-light", "latency at 10/s"), ("31-latency-half", "latency at half max")):
    l = g(k, "latency_ms")
    if l:
        ok = l["p50"] <= 15 and l["p99"] <= 50
        row(name + " p50/p90/p99/max ms", "%.1f / %.1f / %.1f / %.1f" % (l["p50"], l["p90"], l["p99"], l["max"]), "p50 <= 15, p99 <= 50", ok)
t = g("43-takeover", "records_per_s")
if t is not None:
    row("restore, history records/s (%d read)" % g("43-takeover", "records"), "%.0f" % t, ">= 500000", t >= 500000)
for k in sorted(res):
    if k.startswith("41-failover"):
        p = res[k]["progress_ms_max"]
        row("kill -9 -> progress, %s" % res[k]["label"], "%.0f ms" % p, "<= 5000 ms", p <= 5000 and res[k]["partitions_recovered"] == res[k]["partitions_affected"])
m = g("50-memory-live", "bytes_per_workflow")
if m is not None:
    row("memory per sleeping workflow (%d live)" % g("50-memory-live", "count"), "%.0f B" % m, "<= 2048 B", m <= 2048)
a, b = g("43-takeover", "rss_kb"), g("53-takeover-sleepers", "rss_kb")
if a and b:
    n = g("52-fill-sleepers", "workflows")
    per = (b - a) * 1024.0 / n
    res["54-memory-restored"] = {"workflows": n, "bytes_per_workflow": per}
    row("memory per sleeping workflow (%d restored)" % n, "%.0f B" % per, "<= 2048 B", per <= 2048)
    doc["results"] = res
    with open(out, "w") as fh:
        json.dump(doc, fh, indent=2)
h = g("61-http-get")
if h:
    row("projector GET /workflows/{id} req/s, p99 (%s)" % h.get("label", "wrk"), "%.0f, %.2f ms" % (h["requests_per_s"], h["latency_ms"]["p99"]), ">= 30000, p99 <= 5 ms", h["requests_per_s"] >= 30000 and h["latency_ms"]["p99"] <= 5 and not h.get("errors") and not h.get("non_200"))
for k, name in (("64-http-get-keepalive", "keel-bench-http, 4 kept-alive connections"), ("65-http-get-connect", "keel-bench-http, 4 threads, a connection each")):
    h = g(k)
    if h:
        row("  same, %s" % name, "%.0f, %.2f ms" % (h["requests_per_s"], h["latency_ms"]["p99"]), "", None)
for k, name in (("62-http-list-rare", "rare"), ("63-http-list-common", "common")):
    h = g(k)
    if h:
        row("list query over %d workflows (%s filter) p50/max" % (g("60-projector-fold", "workflows"), name), "%.1f / %.1f ms" % (h["latency_ms"]["p50"], h["latency_ms"]["max"]), "", None)
w = max(len(r[0]) for r in rows) if rows else 10
print("\n== Summary (loadavg before %s, after %s)" % (lb, la))
for r in rows:
    print("%-*s  %-28s %-24s %s" % (w, r[0], r[1], r[2], r[3]))
print("\nAll figures: %s" % out)
PY
