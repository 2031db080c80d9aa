# Shared settings for the Kafka test fixture scripts. Source it; do not run it.
#
#   KEEL_KAFKA_SRC      this directory (tests/kafka), absolute
#   KEEL_KAFKA_VERSION  the pinned Apache Kafka release (from ./kafka-version)
#   KEEL_KAFKA_HOME     ${KEEL_CACHE_DIR:-$HOME/.cache/keel}/kafka-<version>
#   KEEL_KAFKA_LIBS     $KEEL_KAFKA_HOME/libs (broker, tools and client jars)

KEEL_KAFKA_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KEEL_KAFKA_VERSION=$(tr -d '[:space:]' < "$KEEL_KAFKA_SRC/kafka-version")
KEEL_KAFKA_HOME="${KEEL_CACHE_DIR:-${HOME:-/root}/.cache/keel}/kafka-$KEEL_KAFKA_VERSION"
KEEL_KAFKA_LIBS="$KEEL_KAFKA_HOME/libs"

keel_kafka_die() {
    echo "${0##*/}: $*" >&2
    exit 1
}

# keel_kafka_need_tools CMD...
# Makes sure each command exists. As root, installs the missing ones with apt-get;
# otherwise names the apt-get line to run and exits 1.
keel_kafka_need_tools() {
    local c pkgs=()
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 && continue
        case "$c" in
            java)  pkgs+=(openjdk-17-jre-headless) ;;
            javac) pkgs+=(openjdk-17-jdk-headless) ;;
            mvn)   pkgs+=(maven) ;;
            kcat)  pkgs+=(kcat) ;;
            *)     keel_kafka_die "required command '$c' not found" ;;
        esac
    done
    [ ${#pkgs[@]} -eq 0 ] && return 0
    local line="apt-get install -y ${pkgs[*]}"
    if [ "$(id -u)" -ne 0 ]; then
        keel_kafka_die "missing tools; install them with: sudo $line"
    fi
    echo "${0##*/}: installing: ${pkgs[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y "${pkgs[@]}" >&2; then
        apt-get update >&2 && apt-get install -y "${pkgs[@]}" >&2 \
            || keel_kafka_die "'$line' failed"
    fi
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || keel_kafka_die "'$c' still missing after '$line'"
    done
}

# Prints an interpreter that can open sockets (Debian's python3 first).
keel_kafka_python() {
    if [ -x /usr/bin/python3 ]; then
        echo /usr/bin/python3
    elif command -v python3 >/dev/null 2>&1; then
        command -v python3
    else
        keel_kafka_die "python3 not found (apt-get install -y python3)"
    fi
}
