# stack_lib.sh: what the shell tests that run their own keel stack share
# (cli_projector.sh, orders_kcat.sh): ok/bad counters, a temporary
# directory, stopping every process they started on exit, a watchdog that
# stops it all should the test hang (KEEL_TEST_MAX_SECONDS, default 280;
# also $limit, for timeout(1) around each daemon), die() with the logs'
# tails, and wait_file(). Source it after setting $bindir (where keel
# and its daemons are; $keel is set from it) and $test_name.
keel=$bindir/keel
pass=0 fail=0
ok() { echo "ok: $1"; pass=$((pass + 1)); }
bad() { echo "FAILED: $1"; fail=$((fail + 1)); }
tmp=$(mktemp -d)
pids=()

stop_all() {
        local p
        for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
        for p in "${pids[@]}"; do
                for _ in $(seq 50); do
                        kill -0 "$p" 2>/dev/null || break
                        sleep 0.1
                done
                kill -KILL "$p" 2>/dev/null
                wait "$p" 2>/dev/null
        done
        pids=()
}
cleanup() {
        stop_all
        [ -n "${watchdog:-}" ] && kill "$watchdog" 2>/dev/null
        rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
# The watchdog: should this script hang, stop what it started. Each
# daemon also runs under timeout(1), so none outlives a killed test.
(
        trap 'kill $s 2>/dev/null; exit 0' TERM
        sleep "${KEEL_TEST_MAX_SECONDS:-280}" &
        s=$!
        wait $s
        echo "${test_name:-test}: watchdog fired" >&2
        kill -TERM $$
) &
watchdog=$!
limit=${KEEL_TEST_MAX_SECONDS:-280}

die() {
        echo "FAILED: $1"
        for f in "$tmp"/*.log; do
                echo "--- $f"
                tail -20 "$f"
        done
        exit 1
}

wait_file() {
        for _ in $(seq 200); do
                [ -s "$1" ] && return 0
                sleep 0.1
        done
        return 1
}
