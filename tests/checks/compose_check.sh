#!/usr/bin/env bash
# docker-compose.yml is valid, pins the same Apache Kafka release as the
# test broker (tests/kafka/kafka-version), and, as `docker-compose config`
# resolves it, runs what a user expects: the broker, the one-shot topic
# creation, two orchestrators loading the payment module from where the
# Dockerfile installs it, as distinct static group members, the projector published on the host's loopback, the
# payment worker, and health checks on what serves HTTP. Needs
# docker-compose (Debian's, which brings python3-yaml); no Docker engine.
set -uo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=../support/tally.sh
. tests/support/tally.sh

cfg=$(mktemp)
trap 'rm -f "$cfg"' EXIT
# Variables the file reads from the shell must not change what is checked.
if env -u PROJECTOR_PUBLISH -u KEEL_LOG_LEVEL -u KEEL_LOG_FORMAT \
        docker-compose -f docker-compose.yml config >"$cfg"; then
        ok "docker-compose config"
else
        bad "docker-compose config"
fi
want=$(tr -d '[:space:]' <tests/kafka/kafka-version)
if grep -q "image: apache/kafka:$want\$" docker-compose.yml; then
        ok "docker-compose.yml pins apache/kafka:$want"
else
        bad "docker-compose.yml does not pin apache/kafka:$want"
fi

# The resolved configuration, checked service by service: ok:/FAILED:
# lines like the ones above.
out=$(python3 - "$cfg" 2>&1 <<'EOF'
import re
import sys

import yaml

with open(sys.argv[1]) as f:
    cfg = yaml.safe_load(f) or {}
services = cfg.get("services") or {}


def check(cond, what):
    print(("ok: " if cond else "FAILED: ") + what)


def env(name):
    e = (services.get(name) or {}).get("environment") or {}
    if isinstance(e, list):
        e = dict(x.split("=", 1) for x in e)
    return {k: str(v) for k, v in e.items()}


def command(name):
    c = (services.get(name) or {}).get("command") or []
    return c.split() if isinstance(c, str) else [str(x) for x in c]


def health(name):
    h = (services.get(name) or {}).get("healthcheck") or {}
    t = h.get("test") or []
    return " ".join(t) if isinstance(t, list) else str(t)


want = ["kafka", "topics", "orchestrator-1", "orchestrator-2", "projector",
        "payment-worker"]
missing = [s for s in want if s not in services]
check(not missing, "services %s%s" % (", ".join(want),
      " (missing: %s)" % ", ".join(missing) if missing else ""))

k = env("kafka")
one_node = {"KAFKA_PROCESS_ROLES": "broker,controller",
            "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
            "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
            "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1"}
wrong = [n for n, v in one_node.items() if k.get(n) != v]
check(not wrong, "kafka: KRaft with transactions on one node%s"
      % (" (wrong: %s)" % ", ".join(wrong) if wrong else ""))

t = command("topics")
check(t[:3] == ["keel", "topics", "create"] and
      "payments" in t[t.index("--task-queue") + 1:t.index("--task-queue") + 2]
      if "--task-queue" in t else False,
      "topics: keel topics create --task-queue payments (%s)" % " ".join(t))
dep = ((services.get("topics") or {}).get("depends_on") or {}).get("kafka")
check(isinstance(dep, dict) and dep.get("condition") == "service_healthy",
      "topics waits for a healthy kafka")

# Where the image has the payment module: the Dockerfile's install prefix,
# lib/keel/ (tests/install checks that `cmake --install` puts it there).
with open("Dockerfile") as f:
    m = re.search(r"-DCMAKE_INSTALL_PREFIX=(\S+)", f.read())
module = (m.group(1).rstrip("/") if m else "?") + \
    "/lib/keel/libkeel_payment_workflows.so"
ids = set()
for o in ("orchestrator-1", "orchestrator-2"):
    c = command(o)
    mods = c[c.index("--workflows") + 1] if "--workflows" in c[:-1] else ""
    check(c[:1] == ["keel-orchestrator"] and mods == module,
          "%s: keel-orchestrator --workflows %s (runs: %s)"
          % (o, module, " ".join(c)))
    ids.add(env(o).get("KEEL_KAFKA_GROUP_INSTANCE_ID", ""))
    port = env(o).get("KEEL_METRICS_LISTEN", "").rpartition(":")[2]
    check(port not in ("", "0") and
          ("127.0.0.1:%s/healthz" % port) in health(o),
          "%s: health check on its metrics port's /healthz (%s)"
          % (o, health(o)))
check("" not in ids and len(ids) == 2,
      "orchestrators: distinct kafka.group.instance.id (%s)"
      % ", ".join(sorted(ids)))

c = command("projector")
check(c[:1] == ["keel-projector"] and
      ("http.listen=0.0.0.0:8080" in c or
       env("projector").get("KEEL_HTTP_LISTEN") == "0.0.0.0:8080"),
      "projector: keel-projector listening on 0.0.0.0:8080 in its container")
ports = (services.get("projector") or {}).get("ports") or []
published = []
for p in ports:
    if isinstance(p, dict):
        published.append("%s:%s:%s" % (p.get("host_ip", ""),
                                        p.get("published"), p.get("target")))
    else:
        published.append(str(p).split("/")[0])
check("127.0.0.1:8080:8080" in published,
      "projector: published on 127.0.0.1:8080 of the host (%s)"
      % ", ".join(published))
h = health("projector")
check("/healthz" in h and "/readyz" in h,
      "projector: health check on /healthz and /readyz (%s)" % h)
check(health("kafka") != "", "kafka: health check")

check(command("payment-worker")[:1] == ["keel-payment-worker"],
      "payment-worker: keel-payment-worker")
for s in want[1:]:
    e = env(s)
    check(e.get("KEEL_BOOTSTRAP") == "kafka:9092",
          "%s: KEEL_BOOTSTRAP=kafka:9092" % s)
EOF
)
rc=$?
while read -r line; do
        case "$line" in
        ok:*) passed=$((passed + 1)) ;;
        FAILED:*) failed=$((failed + 1)) ;;
        esac
        echo "$line"
done <<<"$out"
if [ $rc -ne 0 ]; then
        bad "checking the resolved configuration (python3 exited $rc)"
fi
tally_exit
