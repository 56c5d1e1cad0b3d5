#!/usr/bin/env bash
# Wharf's benchmark suite (`make bench`): Wharf against nginx, adnanh/webhook, raw libzmq and bare
# docker compose, every figure next to a baseline measured in the same run.
#
#   bash bench/run.sh                      every part: intake dispatch scale footprint redeploy
#   bash bench/run.sh intake footprint     only these parts (the others keep their last results)
#
#   BENCH_QUICK=1   shorter runs (3 s instead of 10 s, fewer samples): a smoke test, not a result
#   BENCH_PERF=1    also profile wharf-server with perf during the round-robin intake and the scale
#                   round (bench/results/perf-*.txt)
#   BENCH_KEEP=1    keep the run directory (logs, fleet logs, databases) instead of removing it
#
# Writes bench/results/parts/<part>.json, then bench/results/latest.{json,md} and the charts
# (bench/results/*.png) from every part's latest result. See bench/README.md.
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$BENCH")"
RESULTS="$BENCH/results"
export PATH="/opt/swift/usr/bin:$PATH"
# shellcheck source=lib/common.sh
source "$BENCH/lib/common.sh"

ALL_PARTS=(intake dispatch scale footprint redeploy)
PARTS=("$@")
[ ${#PARTS[@]} -gt 0 ] && [ "${PARTS[0]}" != all ] || PARTS=("${ALL_PARTS[@]}")
for part in "${PARTS[@]}"; do
    [[ " ${ALL_PARTS[*]} " == *" $part "* ]] || die "unknown part '$part' (parts: ${ALL_PARTS[*]})"
done

QUICK="${BENCH_QUICK:-}"
DURATION=10
[ -n "$QUICK" ] && DURATION=3

RUN="$(mktemp -d "${BENCH_TMP:-/tmp}/wharf-bench.XXXXXX")"
: >"$RUN/pids"
cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    stop_all
    if [ -s "$RUN/testenv-dir" ]; then
        bash "$ROOT/scripts/testenv.sh" down "$(cat "$RUN/testenv-dir")" || log "'scripts/testenv.sh down' failed"
    fi
    if [ -n "${BENCH_KEEP:-}" ]; then log "run directory kept: $RUN"; else rm -rf "$RUN"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

mkdir -p "$RESULTS/parts"
BENCH_STARTED=$SECONDS

# --- tools ------------------------------------------------------------------
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v webhook >/dev/null || need+=(webhook)
command -v gnuplot >/dev/null || need+=(gnuplot-nox)
command -v cc >/dev/null || need+=(gcc)
pkg-config --exists libzmq 2>/dev/null || need+=(libzmq3-dev pkg-config)
command -v curl >/dev/null || need+=(curl)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
if [[ " ${PARTS[*]} " == *" redeploy "* ]]; then
    bash "$ROOT/scripts/install-deps.sh" test
fi

# --- build ------------------------------------------------------------------
# wharf-server limits webhook calls per token and per client address; a load generator on one
# address would measure the limiter, so the server runs with --webhook-rate-limit off.
build_started=$SECONDS
SRC="$ROOT"
RATE_LIMITS="lifted with wharf-server --webhook-rate-limit off"
WHARF_SERVER_FLAGS="--webhook-rate-limit off"
export WHARF_SERVER_FLAGS
log "building wharf (release) from $SRC"
(cd "$SRC" && swift build -c release --scratch-path "$ROOT/.build-bench" 2>&1 | grep -E 'error|Compiling|Build' >&2) \
    || die "swift build failed"
BIN="$(cd "$SRC" && swift build -c release --scratch-path "$ROOT/.build-bench" --show-bin-path)"
[ -x "$BIN/wharf-server" ] && [ -x "$BIN/wharf-agent" ] || die "no wharf-server/wharf-agent in $BIN"
ZMQBENCH="$ROOT/.build-bench/zmqbench"
cc -O2 -Wall -o "$ZMQBENCH" "$BENCH/zmq/zmqbench.c" $(pkg-config --cflags --libs libzmq) || die "cannot build zmqbench"
PROBE="$ROOT/.build-bench/probe"
cc -O2 -Wall -pthread -o "$PROBE" "$BENCH/lib/probe.c" || die "cannot build probe"
HTTPBURST="$ROOT/.build-bench/httpburst"
cc -O2 -Wall -o "$HTTPBURST" "$BENCH/http/httpburst.c" || die "cannot build httpburst"
if [[ " ${PARTS[*]} " == *" intake "* ]]; then
    log "building bench/hummingbird-bare (release)"
    (cd "$BENCH/hummingbird-bare" && swift build -c release --scratch-path "$ROOT/.build-bench-hb" 2>&1 | grep -E 'error|Build' >&2) \
        || die "building bench/hummingbird-bare failed"
    BARE_HB="$ROOT/.build-bench-hb/release/bare-hummingbird"
fi
BUILD_SECONDS=$((SECONDS - build_started))
log "build done in ${BUILD_SECONDS}s"

# --- machine ----------------------------------------------------------------
python3 "$BENCH/lib/machine.py" "$ROOT" "$RATE_LIMITS" "$BUILD_SECONDS" >"$RESULTS/parts/machine.json"
# What a durable commit's sync and a thread hand-off cost on this machine now (bench/lib/probe.c).
"$PROBE" "$RUN" >"$RESULTS/parts/probe.json" || die "probe failed"

# --- parts ------------------------------------------------------------------
# Each part runs in its own subshell (started in the background so that `set -e` holds inside it): a
# part that fails is reported and the others still run. Its processes are in $RUN/pids either way.
failed=()
ran=()
for part in "${PARTS[@]}"; do
    # shellcheck source=/dev/null
    source "$BENCH/parts/$part.sh"
    log "=== $part ==="
    part_started=$SECONDS
    ( "part_$part" ) &
    part_pid=$!
    echo "$part_pid" >>"$RUN/pids"
    rc=0
    wait "$part_pid" || rc=$?
    stop_all
    if [ -s "$RUN/testenv-dir" ]; then
        bash "$ROOT/scripts/testenv.sh" down "$(cat "$RUN/testenv-dir")" || log "testenv down failed"
        : >"$RUN/testenv-dir"
    fi
    if [ "$rc" -eq 0 ]; then
        ran+=("$part")
        log "=== $part done in $((SECONDS - part_started))s ==="
    else
        failed+=("$part")
        log "=== $part FAILED (exit $rc) after $((SECONDS - part_started))s; its last good result stays in results/parts/ ==="
    fi
done

python3 "$BENCH/lib/report.py" "$RESULTS" "$((SECONDS - BENCH_STARTED))" "${ran[@]}"
log "results: $RESULTS/latest.md ($((SECONDS - BENCH_STARTED))s in all)"
if [ ${#failed[@]} -gt 0 ]; then
    die "failed parts: ${failed[*]}"
fi
