# Shared helpers of bench/run.sh and its parts (sourced, not run).
#
# Every process a part starts goes through `spawn`, which records its PID in $RUN/pids; `stop_pid`
# stops one by PID (TERM, then KILL after a grace period) and the EXIT trap stops whatever is left,
# newest first. Nothing is ever stopped by name.

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# True if PID exists and is not a zombie.
alive() {
    [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null || return 1
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }"
    [ "${stat%% *}" != "Z" ]
}

# spawn LOGFILE CMD... — start CMD in the background (own process group), record its PID in SPAWNED.
spawn() {
    local logfile="$1"; shift
    setsid "$@" </dev/null >>"$logfile" 2>&1 &
    SPAWNED=$!
    echo "$SPAWNED" >>"$RUN/pids"
}

# stop_pid PID [GRACE_SECONDS] — TERM, wait, KILL; then reap.
stop_pid() {
    local pid="$1" grace="${2:-15}" deadline
    alive "$pid" || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + grace))
    while alive "$pid"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "pid $pid did not stop within ${grace}s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
    done
    wait "$pid" 2>/dev/null || true
}

stop_all() {
    [ -f "$RUN/pids" ] || return 0
    local pid
    for pid in $(tac "$RUN/pids"); do stop_pid "$pid" 10; done
    : >"$RUN/pids"
}

free_port() {
    python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_http PID URL [TIMEOUT] — until URL answers with any HTTP status.
wait_http() {
    local pid="$1" url="$2" timeout="${3:-60}" code deadline
    deadline=$((SECONDS + timeout))
    while :; do
        code="$(curl -s -o /dev/null -m 2 -X GET -w '%{http_code}' "$url" 2>/dev/null || true)"
        [ -n "$code" ] && [ "$code" != "000" ] && return 0
        alive "$pid" || die "process $pid exited before $url answered"
        [ "$SECONDS" -lt "$deadline" ] || die "$url did not answer within ${timeout}s"
        sleep 0.1
    done
}

# Memory and CPU of a process, from /proc.
# A zombie (adnanh/webhook's finished /bin/true) has a status file without VmRSS: that counts as 0.
status_kib() { local v; v="$(awk -v key="$2:" '$1 == key { v = $2 } END { print v + 0 }' "/proc/$1/status" 2>/dev/null)"; echo "${v:-0}"; }
rss_kib() { status_kib "$1" VmRSS; }
hwm_kib() { status_kib "$1" VmHWM; }
# BENCH_SMAPS=1: where a process's memory is — its smaps, and glibc's heap statistics (malloc_info,
# through gdb when present: it stops the process for a moment, so only outside a measured span).
save_memory_map() {
    cp "/proc/$1/smaps" "$2.smaps" 2>/dev/null || true
    command -v gdb >/dev/null || return 0
    gdb -p "$1" -batch -nx \
        -ex "set \$f = (void*)fopen(\"$2.malloc.xml\", \"w\")" \
        -ex "call (int)malloc_info(0, \$f)" -ex "call (int)fclose(\$f)" \
        -ex detach >/dev/null 2>&1 || true
}
# RSS of a process and all its descendants (nginx master + workers).
tree_rss_kib() {
    local total=0 pid
    for pid in $1 $(pgrep -P "$1" 2>/dev/null || true); do total=$((total + $(rss_kib "$pid"))); done
    echo "$total"
}
# CPU seconds (user + system) of processes and their children (nginx's workers), all together.
cpu_seconds() {
    local pid children=()
    for pid in "$@"; do children+=($(pgrep -P "$pid" 2>/dev/null || true)); done
    python3 - "$@" "${children[@]}" <<'PY'
import os, sys
total = 0
for pid in sys.argv[1:]:
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        continue
    total += int(fields[11]) + int(fields[12])
print(round(total / os.sysconf("SC_CLK_TCK"), 2))
PY
}
mib() { python3 -c "print(round($1 / 1024, 1))"; }

# start_wharf DIR — a fresh wharf-server with its data in DIR; sets WHARF_PID, WHARF_URL, WHARF_ZMQ.
start_wharf() {
    local dir="$1"
    mkdir -p "$dir"
    spawn "$dir/server.log" "$BIN/wharf-server" --data-dir "$dir/data" --http-host 127.0.0.1 --http-port 0 \
        --zmq-bind 'tcp://127.0.0.1:*' ${WHARF_SERVER_FLAGS:-}
    WHARF_PID=$SPAWNED
    local deadline=$((SECONDS + 60))
    until [ -s "$dir/data/endpoints.json" ]; do
        alive "$WHARF_PID" || { tail -20 "$dir/server.log" >&2; die "wharf-server exited during start-up"; }
        [ "$SECONDS" -lt "$deadline" ] || die "wharf-server did not write endpoints.json"
        sleep 0.1
    done
    WHARF_URL="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["http"])' "$dir/data/endpoints.json")"
    WHARF_ZMQ="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["zmq"])' "$dir/data/endpoints.json")"
    wait_http "$WHARF_PID" "$WHARF_URL/api/health"
    WHARF_TOKEN_FILE="$dir/data/admin-token"
    WHARF_DB="$dir/data/wharf.sqlite"
}

# start_fleet LOGDIR NAME COUNT FIRST — a fleet process of COUNT agents; sets FLEET_PID, FLEET_LOG.
start_fleet() {
    local dir="$1" name="$2" count="$3" first="$4"
    FLEET_LOG="$dir/fleet-$name.jsonl"
    spawn "$dir/fleet-$name.out" "$BIN/wharf-agent" --fleet "$count" --fleet-first "$first" --server "$WHARF_URL" \
        --admin-token-file "$WHARF_TOKEN_FILE" --data-dir "$dir/fleet-data" --fleet-log "$FLEET_LOG" \
        --fleet-prefix "${FLEET_PREFIX:-fleet}" ${FLEET_FLAGS:-}
    FLEET_PID=$SPAWNED
}

# wait_event LOG EVENT PID [TIMEOUT [soft]] — until the fleet log has a line for EVENT; dies on a
# timeout, or with `soft` returns 1.
wait_event() {
    local logfile="$1" event="$2" pid="$3" timeout="${4:-300}" soft="${5:-}" deadline
    deadline=$((SECONDS + timeout))
    until [ -f "$logfile" ] && grep -q "\"event\":\"$event\"" "$logfile"; do
        alive "$pid" || { tail -20 "${logfile%.jsonl}.out" >&2 2>/dev/null || true; die "fleet $pid exited before '$event'"; }
        if [ "$SECONDS" -ge "$deadline" ]; then
            [ -n "$soft" ] && return 1
            die "fleet $pid: no '$event' within ${timeout}s"
        fi
        sleep 0.1
    done
}

# event_field LOG EVENT FIELD — a numeric field of the last EVENT line of a fleet log.
event_field() {
    python3 - "$@" <<'PY'
import json, sys
path, event, field = sys.argv[1:4]
value = None
for line in open(path):
    try:
        record = json.loads(line)
    except ValueError:
        continue
    if record.get("event") == event:
        value = record.get(field)
print(value if value is not None else "null")
PY
}

# fleet_stats LOG — the fleet's own counters from its "stopped" line, as JSON.
fleet_stats() {
    python3 - "$1" <<'PY'
import json, sys
stats = {}
for line in open(sys.argv[1]):
    try:
        record = json.loads(line)
    except ValueError:
        continue
    if record.get("event") == "stopped":
        stats = record
if stats.get("iterations"):
    stats["meanIterationMs"] = round(stats["busySeconds"] / stats["iterations"] * 1000, 3)
    stats["maxIterationMs"] = round(stats["maxIterationSeconds"] * 1000, 3)
print(json.dumps(stats))
PY
}

# wrk_json OUTFILE WRK-ARGS... — run wrk, keep its text output, print its JSON summary line. With
# WRK_CPU_FILE set, wrk's own CPU (user and system seconds) goes there as `wrk-cpu U S`.
wrk_json() {
    local out="$1"; shift
    local timed=()
    [ -n "${WRK_CPU_FILE:-}" ] && timed=(/usr/bin/time -f 'wrk-cpu %U %S' -o "$WRK_CPU_FILE")
    "${timed[@]}" wrk "$@" >"$out" 2>&1 || { cat "$out" >&2; die "wrk failed"; }
    grep '^{"wrk"' "$out" | tail -1
}

# json_get JSON PYTHON-EXPR — evaluate an expression over the parsed JSON `d`.
json_get() { python3 -c "import json,sys; d = json.loads(sys.argv[1]); print($2)" "$1"; }

wb() { python3 "$BENCH/lib/wharfbench.py" "$@"; }

# perf_start DATA SECONDS — samples wharf-server ($WHARF_PID) with call graphs for SECONDS, in the
# background (its log in DATA.log); the sampler's PID in PERF_PID.
perf_start() {
    perf record -F 999 -g -p "$WHARF_PID" -o "$1" -- sleep "$2" >"$1.log" 2>&1 &
    PERF_PID=$!
}
# perf_finish PID DATA OUT [PERCENT] — waits for the sampler PID, then writes to OUT the symbols
# above PERCENT (default 1) of the samples, with their children, demangled.
perf_finish() {
    wait "$1" 2>/dev/null || true
    perf report -i "$2" --children --sort symbol -g none --percent-limit "${4:-1}" --stdio 2>/dev/null \
        | grep '%' | swift demangle --simplified | cut -c1-200 | head -200 >"$3" || true
}
