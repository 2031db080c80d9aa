#!/usr/bin/env bash
# `keel workflow list|describe|history|result` against keel-projector. The
# test runs its own stack on loopback ports chosen at run time: a dev
# broker, keel-orchestrator with the payment workflow, keel-payment-worker
# and keel-projector (http.listen 127.0.0.1:0). It starts payment workflows
# with `keel workflow start`, lets one complete (refundApproved), and checks
# what a user of the command line sees: the list as a table and as JSON,
# its filters, --all across pages, describe, history (event types in order,
# seq 1..n), result --wait (closed: exit 0; still running: exit 1), an
# unknown ID (exit 1, named), a projector that is down (exit 3), and the
# help of every verb. Everything it starts is stopped on exit; a watchdog
# stops it all if the test itself hangs.
#   cli_projector.sh BIN_DIR PAYMENT_MODULE
set -uo pipefail
bindir=${1:?directory of keel, keel-orchestrator, keel-projector, ...}
module=${2:?the payment workflow module (.so)}
test_name=cli_projector
# shellcheck source=stack_lib.sh
. "$(dirname "$0")/stack_lib.sh"

# ---- the stack ----------------------------------------------------------
setsid timeout "$limit" "$keel" dev-broker --partitions 4 \
        --task-queue payments --port-file "$tmp/bootstrap" \
        >/dev/null 2>"$tmp/dev-broker.log" </dev/null &
pids+=($!)
wait_file "$tmp/bootstrap" || die "the dev broker did not start"
export KEEL_BOOTSTRAP
KEEL_BOOTSTRAP=$(cat "$tmp/bootstrap")
# Every keel command below finds the broker through KEEL_BOOTSTRAP; the
# projector through KEEL_PROJECTOR_URL once it serves.
unset KEEL_PROJECTOR_URL KEEL_HTTP_TOKEN KEEL_CONFIG

setsid timeout "$limit" "$bindir/keel-orchestrator" --workflows "$module" \
        >"$tmp/orchestrator.log" 2>&1 </dev/null &
pids+=($!)
setsid timeout "$limit" "$bindir/keel-payment-worker" \
        >"$tmp/worker.log" 2>&1 </dev/null &
pids+=($!)
setsid timeout "$limit" "$bindir/keel-projector" -X http.listen=127.0.0.1:0 \
        --port-file "$tmp/http.port" >"$tmp/projector.log" 2>&1 </dev/null &
projector=$!
pids+=($projector)
for _ in $(seq 300); do
        grep -q "msg=assigned" "$tmp/orchestrator.log" && break
        sleep 0.1
done
grep -q "msg=assigned" "$tmp/orchestrator.log" ||
        die "the orchestrator took no partitions"
wait_file "$tmp/http.port" || die "the projector did not serve"
export KEEL_PROJECTOR_URL="http://127.0.0.1:$(tr -d '\n' <"$tmp/http.port")"
echo "stack up: broker $KEEL_BOOTSTRAP, projector $KEEL_PROJECTOR_URL"

# ---- workflows ----------------------------------------------------------
# p-1 completes once refundApproved arrives; p-2..p-5 and the odd ID wait
# for it for ten minutes.
run=cli$$
start() {
        "$keel" workflow start --id "$1" --type payment --wait 20 \
                --input "{\"order\":\"$1\",\"amount\":1200,\"refund_window_ms\":600000}" \
                >/dev/null 2>"$tmp/start.err" ||
                die "start $1: $(cat "$tmp/start.err")"
}
for i in 1 2 3 4 5; do start "$run-p-$i"; done
# An ID with a slash and a space: path segments are percent-encoded.
odd="$run-odd/id with space"
start "$odd"
"$keel" workflow signal --id "$run-p-1" --name refundApproved \
        --input '{"by":"test"}' --wait 20 >/dev/null 2>"$tmp/signal.err" ||
        die "signal: $(cat "$tmp/signal.err")"

# ---- result -------------------------------------------------------------
out=$("$keel" workflow result --id "$run-p-1" --wait 60 --json 2>&1)
rc=$?
[ $rc -eq 0 ] && ok "result --wait of a workflow that closes exits 0" ||
        bad "result p-1 exit $rc: $out"
python3 - "$out" "$run-p-1" <<'EOF' && ok "result --json: closed, completed, {status: refunded}" || bad "result --json: $out"
import json, sys
r = json.loads(sys.argv[1])
assert r["workflow_id"] == sys.argv[2], r
assert r["closed"] is True and r["status"] == "completed", r
assert r["result"] == {"status": "refunded"}, r
assert r["failure"] is None and r["history_length"] > 5, r
EOF
out=$("$keel" workflow result --id "$run-p-1" 2>&1)
rc=$?
[ $rc -eq 0 ] && grep -q "^Status  *completed$" <<<"$out" &&
        grep -q '^Result  *{"status":"refunded"}$' <<<"$out" &&
        ok "result as text" || bad "result text (exit $rc): $out"

start_ms=$(date +%s%N)
out=$("$keel" workflow result --id "$run-p-2" --wait 1.5 2>"$tmp/err")
rc=$?
took=$((($(date +%s%N) - start_ms) / 1000000))
[ $rc -eq 1 ] && ok "result --wait 1.5 of a running workflow exits 1" ||
        bad "result p-2 exit $rc: $out $(cat "$tmp/err")"
grep -q "is still running after --wait 1.500 s" "$tmp/err" &&
        grep -q "^Status  *running$" <<<"$out" &&
        ok "and says it is still running" || bad "message: $(cat "$tmp/err")"
[ $took -ge 1400 ] && [ $took -lt 6000 ] && ok "after ${took} ms (a long poll)" ||
        bad "result --wait 1.5 took ${took} ms"

out=$("$keel" workflow result --id "$run-p-1" --direct 2>&1)
rc=$?
[ $rc -eq 0 ] && grep -q "^{\"workflow_id\":\"$run-p-1\",\"run_id\":\"[0-9a-f-]*\",\"status\":\"completed\",\"result\":{\"status\":\"refunded\"},\"events\":[0-9]*}$" <<<"$out" &&
        ok "result --direct keeps its JSON line" || bad "--direct (exit $rc): $out"
"$keel" workflow result --id "$run-p-2" --direct >/dev/null 2>&1
rc=$?
[ $rc -eq 1 ] && ok "result --direct of a running workflow exits 1" ||
        bad "--direct p-2 exit $rc"

# ---- list ---------------------------------------------------------------
# The projector has seen every start once result saw p-1 close? Not
# necessarily the others: wait until all six are listed.
for _ in $(seq 100); do
        n=$("$keel" workflow list --prefix "$run-" --json 2>/dev/null |
                python3 -c 'import json,sys; print(len(json.load(sys.stdin)["workflows"]))' 2>/dev/null)
        [ "${n:-0}" = 6 ] && break
        sleep 0.1
done
out=$("$keel" workflow list --prefix "$run-" 2>&1)
rc=$?
[ $rc -eq 0 ] && ok "list exits 0" || bad "list exit $rc: $out"
head -1 <<<"$out" | grep -q "^WORKFLOW ID  *TYPE  *STATUS  *STARTED  *CLOSED  *EVENTS$" &&
        ok "list prints a table header" || bad "header: $(head -1 <<<"$out")"
grep -q "^$run-p-1  *payment  *completed  *20[0-9-]*T[0-9:.]*Z  *20[0-9-]*T[0-9:.]*Z  *[0-9][0-9]*$" <<<"$out" &&
        grep -q "^$run-p-3  *payment  *running  *20[0-9-]*T[0-9:.]*Z  *-  *[0-9][0-9]*$" <<<"$out" &&
        grep -q "^$odd  *payment  *running " <<<"$out" &&
        ok "a row per workflow: ID, type, status, times, events" ||
        bad "rows: $out"
[ "$(grep -c "^$run-" <<<"$out")" = 6 ] && ok "six rows" || bad "rows: $out"
tail -1 <<<"$out" | grep -q "^counts: running 5, blocked 0, completed 1, failed 0, cancelled 0, terminated 0, continued 0$" &&
        ok "then the counts by status" || bad "counts: $(tail -1 <<<"$out")"

out=$("$keel" workflow list --prefix "$run-" --status completed 2>&1)
[ "$(grep -c "^$run-" <<<"$out")" = 1 ] && grep -q "^$run-p-1 " <<<"$out" &&
        ok "list --status completed" || bad "--status: $out"
out=$("$keel" workflow list --prefix "$run-p-" --status running 2>&1)
[ "$(grep -c "^$run-p-" <<<"$out")" = 4 ] && ! grep -q "^$run-p-1 " <<<"$out" &&
        ok "list --prefix --status running" || bad "--prefix: $out"
out=$("$keel" workflow list --prefix "$run-" --type nosuchtype 2>&1)
rc=$?
[ $rc -eq 0 ] && [ "$(grep -c "^$run-" <<<"$out")" = 0 ] &&
        grep -q "^counts: running 0," <<<"$out" &&
        ok "list --type of no workflow: no rows" || bad "--type: $out"
out=$("$keel" workflow list --prefix "$run-" --type payment --json 2>&1)
python3 - "$out" "$run" <<'EOF' && ok "list --json is the API's page" || bad "list --json: $out"
import json, sys
r = json.loads(sys.argv[1])
ids = [w["workflow_id"] for w in r["workflows"]]
assert len(ids) == 6 and ids == sorted(ids), ids
assert r["next_cursor"] is None, r
assert r["counts"]["running"] == 5 and r["counts"]["completed"] == 1, r
w = r["workflows"][0]
assert set(w) >= {"workflow_id", "run_id", "type", "status", "start_time",
                  "close_time", "history_length"}, w
EOF

out=$("$keel" workflow list --prefix "$run-" --limit 2 2>&1)
[ "$(grep -c "^$run-" <<<"$out")" = 2 ] &&
        grep -q "^(more: --cursor '$run-p-1' for the next page, or --all)$" <<<"$out" &&
        ok "list --limit 2: one page, and how to get the next" ||
        bad "--limit 2: $out"
out=$("$keel" workflow list --prefix "$run-" --limit 2 --cursor "$run-p-1" --json 2>&1)
python3 - "$out" "$run" <<'EOF' && ok "list --cursor starts after it" || bad "--cursor: $out"
import json, sys
r = json.loads(sys.argv[1]); run = sys.argv[2]
assert [w["workflow_id"] for w in r["workflows"]] == [run + "-p-2", run + "-p-3"], r
assert r["next_cursor"] == run + "-p-3", r
EOF
out=$("$keel" workflow list --prefix "$run-" --limit 2 --all 2>&1)
[ "$(grep -c "^$run-" <<<"$out")" = 6 ] && ! grep -q "^(more" <<<"$out" &&
        ok "list --all --limit 2 follows three pages" || bad "--all: $out"
out=$("$keel" workflow list --prefix "$run-" --limit 2 --all --json 2>&1)
python3 - "$out" "$run" <<'EOF' && ok "list --all --json merges them into one object" || bad "--all --json: $out"
import json, sys
r = json.loads(sys.argv[1])
ids = [w["workflow_id"] for w in r["workflows"]]
assert len(ids) == 6 and len(set(ids)) == 6 and ids == sorted(ids), ids
assert r["next_cursor"] is None and r["counts"]["running"] == 5, r
EOF

"$keel" workflow list --status sleeping >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] && grep -q "status must be" "$tmp/err" &&
        ok "list --status of no status exits 2" || bad "$(cat "$tmp/err")"
"$keel" workflow list --limit 0 >/dev/null 2>&1
[ $? -eq 2 ] && ok "list --limit 0 exits 2" || bad "--limit 0"
"$keel" workflow list --id x >/dev/null 2>&1
[ $? -eq 2 ] && ok "list --id exits 2" || bad "list --id"

# ---- describe -----------------------------------------------------------
# Wait until p-3 and the odd ID wait for their signal (a timer pending).
for id in "$run-p-3" "$odd"; do
        for _ in $(seq 200); do
                "$keel" workflow describe --id "$id" --json 2>/dev/null |
                        grep -q '"pending_timers":\[{' && break
                sleep 0.1
        done
done
out=$("$keel" workflow describe --id "$run-p-3" 2>&1)
rc=$?
[ $rc -eq 0 ] && grep -q "^Workflow  *$run-p-3$" <<<"$out" &&
        grep -q "^Type  *payment$" <<<"$out" &&
        grep -q "^Status  *running$" <<<"$out" &&
        grep -q "^Run  *[0-9a-f-]\{36\}$" <<<"$out" &&
        grep -q "^Closed  *-$" <<<"$out" &&
        grep -q "^Input  *{\"order\":\"$run-p-3\",\"amount\":1200,\"refund_window_ms\":600000}$" <<<"$out" &&
        grep -q "^Pending timers  *1$" <<<"$out" &&
        grep -q "^Signals  *0$" <<<"$out" &&
        grep -q '^State  *{.*"stage":"refund_window".*}$' <<<"$out" &&
        ok "describe of a running workflow" || bad "describe p-3 ($rc): $out"
out=$("$keel" workflow describe --id "$run-p-1" 2>&1)
grep -q "^Status  *completed$" <<<"$out" &&
        grep -q '^Result  *{"status":"refunded"}$' <<<"$out" &&
        grep -q "^Signals  *1, last: refundApproved$" <<<"$out" &&
        grep -q "^Pending activities  *0$" <<<"$out" &&
        ok "describe of a completed workflow" || bad "describe p-1: $out"
out=$("$keel" workflow describe --id "$odd" --json 2>&1)
python3 - "$out" "$odd" <<'EOF' && ok "describe --json, of an ID with '/' and ' '" || bad "describe --json: $out"
import json, sys
r = json.loads(sys.argv[1])
assert r["workflow_id"] == sys.argv[2] and r["status"] == "running", r
assert r["input"]["amount"] == 1200 and r["close_time"] is None, r
assert len(r["pending_timers"]) == 1 and r["signals"]["count"] == 0, r
EOF

# ---- history ------------------------------------------------------------
out=$("$keel" workflow history --id "$run-p-1" --json 2>&1)
rc=$?
[ $rc -eq 0 ] && ok "history --json exits 0" || bad "history exit $rc: $out"
printf '%s' "$out" >"$tmp/history.json"
python3 - "$tmp/history.json" "$run-p-1" <<'EOF' && ok "history --json: the events in order, seq 1..n, as a payment runs" || bad "history --json: $out"
import json, sys
h = json.load(open(sys.argv[1]))
assert set(h) == {"workflow_id", "run_id", "events"}, h.keys()
assert h["workflow_id"] == sys.argv[2], h
ev = h["events"]
assert [e["seq"] for e in ev] == list(range(1, len(ev) + 1)), ev
types = [e["type"].rsplit(".", 1)[1] for e in ev]
assert types[0] == "WorkflowStarted" and types[-1] == "WorkflowCompleted", types
scheduled = [e["record"]["activity_type"] for e in ev if e["type"].endswith("ActivityScheduled")]
assert scheduled == ["chargeCard", "reserveInventory", "sendReceipt",
                     "refundCard", "releaseInventory"], scheduled
assert types.count("SignalReceived") == 1, types
for e in ev:
    assert e["record"]["run_id"] == h["run_id"] and e["record"]["seq"] == e["seq"], e
EOF
out=$("$keel" workflow history --id "$run-p-1" 2>&1)
n=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["events"]))' "$tmp/history.json" 2>/dev/null)
grep -q "^SEQ  *TIME  *TYPE  *DETAILS$" <<<"$out" &&
        grep -q "^1  *20[0-9-]*T[0-9:.]*Z  *WorkflowStarted  *workflow_type=payment " <<<"$out" &&
        grep -q "  ActivityScheduled  *activity_id=[0-9]* activity_type=chargeCard " <<<"$out" &&
        grep -q "  SignalReceived  *signal_name=refundApproved " <<<"$out" &&
        grep -q "^$n  .*  WorkflowCompleted  *result={\"status\":\"refunded\"}$" <<<"$out" &&
        ok "history as a table" || bad "history table: $out"
# What history --json writes is what `keel replay` reads.
out=$("$keel" replay --workflows "$module" "$tmp/history.json" 2>&1)
rc=$?
[ $rc -eq 0 ] && grep -q "^ok .*$run-p-1 (payment), $n events" <<<"$out" &&
        ok "keel replay reads history --json" || bad "replay (exit $rc): $out"
out=$("$keel" workflow history --id "$odd" --json 2>&1)
python3 -c 'import json,sys; h=json.loads(sys.argv[1]); assert h["workflow_id"]==sys.argv[2] and h["events"][0]["seq"]==1' "$out" "$odd" &&
        ok "history of an ID with '/' and ' '" || bad "history odd: $out"

# ---- unknown workflow, bad ID -------------------------------------------
for verb in describe history result; do
        out=$("$keel" workflow $verb --id "$run-nope" 2>&1)
        rc=$?
        [ $rc -eq 1 ] && grep -q "keel workflow $verb: no workflow '$run-nope'" <<<"$out" &&
                ok "$verb of an unknown ID: exit 1, named" || bad "$verb unknown (exit $rc): $out"
done
"$keel" workflow describe --id '!bang' >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] && grep -q "may not start with '!'" "$tmp/err" &&
        ok "describe of an invalid ID: exit 2, why" || bad "'!bang': $(cat "$tmp/err")"
"$keel" workflow describe >/dev/null 2>&1
[ $? -eq 2 ] && ok "describe without --id exits 2" || bad "describe no --id"

# ---- help ---------------------------------------------------------------
for verb in list describe history result; do
        out=$("$keel" workflow $verb --help)
        rc=$?
        [ $rc -eq 0 ] && grep -q "^Usage: keel workflow $verb" <<<"$out" &&
                grep -q -- "--projector URL" <<<"$out" &&
                grep -q "^Exit codes" <<<"$out" &&
                ok "$verb --help" || bad "$verb --help ($rc): $out"
done
"$keel" workflow result --help | grep -q -- "--direct" &&
        ok "result --help documents --direct" || bad "result --help"

# ---- where the projector is ---------------------------------------------
url=$KEEL_PROJECTOR_URL
unset KEEL_PROJECTOR_URL
"$keel" workflow describe --id "$run-p-1" --projector "$url" >/dev/null 2>&1 &&
        "$keel" workflow describe --id "$run-p-1" -X projector.url="$url/" \
                >/dev/null 2>&1 &&
        ok "--projector URL and -X projector.url" || bad "--projector"
"$keel" workflow list --projector "ftp://127.0.0.1:1" >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] && grep -q "must start with http://" "$tmp/err" &&
        ok "a projector.url that is not http:// exits 2" || bad "$(cat "$tmp/err")"
export KEEL_PROJECTOR_URL=$url

# ---- a projector that wants a token for reads ---------------------------
kill -TERM "$projector"
wait "$projector" 2>/dev/null
rm -f "$tmp/http.port"
setsid timeout "$limit" "$bindir/keel-projector" -X http.listen=127.0.0.1:0 \
        -X http.token=s3cret -X http.auth.reads=true \
        --port-file "$tmp/http.port" >"$tmp/projector2.log" 2>&1 </dev/null &
projector=$!
pids+=($projector)
wait_file "$tmp/http.port" || die "the second projector did not serve"
url="http://127.0.0.1:$(tr -d '\n' <"$tmp/http.port")"
export KEEL_PROJECTOR_URL=$url
"$keel" workflow describe --id "$run-p-1" >/dev/null 2>"$tmp/err"
rc=$?
[ $rc -eq 2 ] && grep -q "refused the request: .*(set http.token)" "$tmp/err" &&
        ok "no token for a projector that wants one: exit 2, why" ||
        bad "no token (exit $rc): $(cat "$tmp/err")"
"$keel" workflow describe --id "$run-p-1" -X http.token=wrong >/dev/null 2>&1
rc=$?
[ $rc -eq 2 ] && ok "a wrong token: exit 2" || bad "wrong token: exit $rc"
out=$(KEEL_HTTP_TOKEN=s3cret "$keel" workflow result --id "$run-p-1" 2>&1)
rc=$?
[ $rc -eq 0 ] && grep -q "^Status  *completed$" <<<"$out" &&
        ok "http.token goes as the bearer token" || bad "token (exit $rc): $out"

# ---- projector down -----------------------------------------------------
kill -TERM "$projector"
wait "$projector" 2>/dev/null
for verb in "list" "describe --id $run-p-1" "history --id $run-p-1" \
        "result --id $run-p-1 --wait 5"; do
        start_ms=$(date +%s)
        out=$("$keel" workflow $verb 2>&1)
        rc=$?
        [ $rc -eq 3 ] &&
                grep -q "cannot connect to the projector at $url: Connection refused (is keel-projector running? set projector.url)" <<<"$out" &&
                [ $(($(date +%s) - start_ms)) -lt 5 ] &&
                ok "${verb%% *} with the projector down: exit 3 at once, why" ||
                bad "${verb%% *} down (exit $rc): $out"
done
out=$("$keel" workflow result --id "$run-p-1" --direct 2>&1)
[ $? -eq 0 ] && ok "result --direct needs no projector" || bad "--direct: $out"

# ---- the HTTP client, against a fake server -----------------------------
# Answers by the prefix of the path (projector.url may have one): busy
# always 503; chunked, a chunked page, then holds the connection; echo, a
# page naming the request target and its Authorization, then holds the
# connection; garbage, not HTTP; silent, nothing.
cat >"$tmp/fake.py" <<'PY'
import json, os, socket, sys, threading, time
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(16)
log = open(sys.argv[2], "a", buffering=1)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(srv.getsockname()[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])

def page(wid, typ):
    return json.dumps({"workflows": [{"workflow_id": wid, "run_id": "r",
        "type": typ, "status": "running", "start_time": "2026-01-01T00:00:00.000Z",
        "close_time": None, "history_length": 3}], "next_cursor": None,
        "counts": {"running": 1}}).encode()

def serve(c):
    req = b""
    while b"\r\n\r\n" not in req:
        d = c.recv(4096)
        if not d:
            return c.close()
        req += d
    head = req.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    target = head[0].split()[1]
    hdrs = dict(h.split(": ", 1) for h in head[1:] if ": " in h)
    log.write(target + "\n")
    if target.startswith("/busy/"):
        b = b'{"error":"catching up","status":503}'
        c.sendall(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n"
                  b"Content-Length: %d\r\n\r\n%s" % (len(b), b))
    elif target.startswith("/chunked/"):
        b = page("w-chunked", "t")
        c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for i in range(0, len(b), 7):
            c.sendall(b"%x\r\n%s\r\n" % (len(b[i:i + 7]), b[i:i + 7]))
        c.sendall(b"0\r\n\r\n")
        time.sleep(3)
    elif target.startswith("/echo/"):
        b = page(target, hdrs.get("Authorization", "none"))
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(b), b))
        time.sleep(3)
    elif target.startswith("/garbage/"):
        c.sendall(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
    elif target.startswith("/silent/"):
        time.sleep(5)
    c.close()

while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
setsid timeout "$limit" python3 "$tmp/fake.py" "$tmp/fake.port" "$tmp/fake.req" \
        >"$tmp/fake.log" 2>&1 </dev/null &
pids+=($!)
wait_file "$tmp/fake.port" || die "the fake server did not start"
fake="http://127.0.0.1:$(cat "$tmp/fake.port")"
unset KEEL_PROJECTOR_URL

ms() { echo $(($(date +%s%N) / 1000000)); }
t0=$(ms)
out=$("$keel" workflow list --projector "$fake/chunked" 2>&1)
rc=$? took=$(($(ms) - t0))
[ $rc -eq 0 ] && grep -q "^w-chunked  *t  *running " <<<"$out" &&
        [ $took -lt 2000 ] &&
        ok "a chunked answer, read to its last chunk (${took} ms)" ||
        bad "chunked (exit $rc, ${took} ms): $out"
t0=$(ms)
out=$("$keel" workflow list --projector "$fake/echo/" --prefix 'a b&c/é' \
        -X http.token=tok 2>&1)
rc=$? took=$(($(ms) - t0))
[ $rc -eq 0 ] && [ $took -lt 2000 ] &&
        grep -q "^/echo/api/v1/workflows?prefix=a%20b%26c%2F%C3%A9  *Bearer tok " <<<"$out" &&
        ok "query values percent-encoded, the token sent, read to Content-Length" ||
        bad "echo (exit $rc, ${took} ms): $out"
t0=$(ms)
out=$("$keel" workflow list --projector "$fake/busy" -X timeout.ms=2500 2>&1)
rc=$? took=$(($(ms) - t0))
n=$(grep -c "^/busy/" "$tmp/fake.req")
[ $rc -eq 3 ] && [ $took -ge 2400 ] && [ $took -lt 6000 ] && [ "$n" -ge 2 ] &&
        grep -q "unavailable (503) after 2500 ms of retries: catching up" <<<"$out" &&
        ok "503: retried ($n requests) for timeout.ms, then exit 3" ||
        bad "busy (exit $rc, ${took} ms, $n requests): $out"
out=$("$keel" workflow list --projector "$fake/garbage" 2>&1)
rc=$?
[ $rc -eq 3 ] && grep -q "did not answer in HTTP" <<<"$out" &&
        ok "an answer that is not HTTP: exit 3" || bad "garbage (exit $rc): $out"
t0=$(ms)
out=$("$keel" workflow list --projector "$fake/silent" -X timeout.ms=1000 2>&1)
rc=$? took=$(($(ms) - t0))
[ $rc -eq 3 ] && [ $took -lt 3000 ] && grep -q "did not answer in time" <<<"$out" &&
        ok "a server that never answers: exit 3 after timeout.ms" ||
        bad "silent (exit $rc, ${took} ms): $out"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
