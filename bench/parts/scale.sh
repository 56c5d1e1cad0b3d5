# Part 3 — scale: 10,000 simulated agents (CURVE) on one server: the time to connect them all and the
# server's RSS; then one webhook per environment, 10,000 at once, and the time until every job is
# final. Baseline: the same round on raw libzmq (a ROUTER with CURVE + ZAP, 10,000 DEALERs).
# Bounded: 150 s to connect, 60 s for the first deploys, 90 s for the round; what did not happen by
# then is reported as such.
#
# One process cannot hold 10,000 DEALERs here: libzmq needs two files per DEALER (its TCP socket and
# its mailbox eventfd) and the hard open-file limit is 20,000, so the fleet runs as two processes of
# 5,000 (wharf-agent --fleet 5000 --fleet-first 0 / 5000), each one thread.

# cpu_sample — "TIME SERVER_CPU FLEET_CPU" now, for cpu_since (uses WHARF_PID and pids).
cpu_sample() { echo "$(date +%s.%N) $(cpu_seconds "$WHARF_PID") $(cpu_seconds "${pids[@]}")"; }
# cpu_since SAMPLE [CLIENT_CPU] — JSON: the seconds since SAMPLE and the server's and the fleet's CPU
# seconds in them (and the load client's, measured apart, when given).
cpu_since() {
    python3 -c "import json, sys; a, b = list(map(float, sys.argv[1].split())), list(map(float, sys.argv[2].split())); r = {'seconds': round(b[0] - a[0], 2), 'serverCpuSeconds': round(b[1] - a[1], 2), 'fleetCpuSeconds': round(b[2] - a[2], 2)}; r.update({'clientCpuSeconds': round(float(sys.argv[3]), 2)} if len(sys.argv) > 3 else {}); print(json.dumps(r))" \
        "$1" "$(cpu_sample)" "${@:2}"
}

part_scale() {
    local dir="$RUN/scale"
    mkdir -p "$dir"
    local total=10000 per=5000
    [ -n "$QUICK" ] && { total=2000; per=1000; }

    "$ZMQBENCH" fanout "$total" "$per" >"$dir/zmq-fanout.json" || log "zmqbench fanout did not get every answer"
    log "raw libzmq: $(cat "$dir/zmq-fanout.json")"

    start_wharf "$dir/wharf"
    local idle_rss
    idle_rss="$(rss_kib "$WHARF_PID")"
    # 1. Environments and keys (no connections), then the stacks: nothing is connected yet, so their
    #    first deploys just queue.
    local first
    for first in $(seq 0 "$per" $((total - 1))); do
        FLEET_FLAGS="--fleet-enrol-only" start_fleet "$dir" "enrol-$first" "$per" "$first"
        wait "$FLEET_PID" 2>/dev/null || true
        grep -q '"event":"enrolled"' "$FLEET_LOG" || { tail -5 "$dir/fleet-enrol-$first.out" >&2; die "enrolling fleet $first failed"; }
    done
    log "creating $total stacks, one per environment (no agent connected)"
    timeout 600 python3 "$BENCH/lib/wharfbench.py" setup --url "$WHARF_URL" --token-file "$WHARF_TOKEN_FILE" \
        --envs "$total" --stacks-per-env 1 --out "$dir/paths.txt" >"$dir/setup.json" || die "setting up $total stacks failed"

    # 2. Measured: every fleet process starts at once and connects; each agent finds its first deploy
    #    waiting (a server restart with work queued looks the same).
    local pids=() logs=() i
    for first in $(seq 0 "$per" $((total - 1))); do
        start_fleet "$dir" "run-$first" "$per" "$first"
        pids+=("$FLEET_PID"); logs+=("$FLEET_LOG")
    done
    local connect_timeout=150 all_connected=1
    for i in "${!pids[@]}"; do
        wait_event "${logs[$i]}" connected "${pids[$i]}" "$connect_timeout" soft || { all_connected=0; break; }
    done
    [ "$all_connected" = 1 ] || log "not every agent was welcomed within ${connect_timeout}s"
    local idle_ok=1
    wb wait-idle --url "$WHARF_URL" --token-file "$WHARF_TOKEN_FILE" --timeout 60 >"$dir/first-deploys.json" || idle_ok=0
    # A few ping rounds, idle: the server's and the fleet's CPU while 10,000 agents only ping.
    local idle_from idle_perf_pid=""
    if [ -n "${BENCH_PERF_IDLE:-}" ] && command -v perf >/dev/null; then
        perf_start "$dir/perf-idle.data" 5
        idle_perf_pid=$PERF_PID
    fi
    idle_from="$(cpu_sample)"
    sleep 5
    cpu_since "$idle_from" >"$dir/idle-cpu.json"
    [ -n "$idle_perf_pid" ] && perf_finish "$idle_perf_pid" "$dir/perf-idle.data" "$RESULTS/perf-scale-idle.txt" 0.5
    log "idle with every agent connected: $(cat "$dir/idle-cpu.json")"
    local connected_rss
    connected_rss="$(rss_kib "$WHARF_PID")"
    echo 5 >"/proc/$WHARF_PID/clear_refs" 2>/dev/null || true  # resets VmHWM to the current RSS
    [ -n "${BENCH_SMAPS:-}" ] && save_memory_map "$WHARF_PID" "$dir/server-connected"

    # 3. The round: one webhook per environment, all at once.
    local perf_pid=""
    if [ -n "${BENCH_PERF:-}" ] && command -v perf >/dev/null; then
        perf_start "$dir/perf.data" 8
        perf_pid=$PERF_PID
    fi
    local round_from
    round_from="$(cpu_sample)"
    wb threads --pid "$WHARF_PID" >"$dir/round-threads-from.json"
    /usr/bin/time -f '%U %S' -o "$dir/round.client-cpu" "$HTTPBURST" "$WHARF_URL" "$dir/paths.txt" 64 "$dir/round.client.jsonl"
    wb client-summary --client "$dir/round.client.jsonl" >"$dir/round.client.json"
    wb round --client "$dir/round.client.jsonl" --fleet "${logs[@]}" --db "$WHARF_DB" --timeout 90 --out "$dir/round.json" >/dev/null
    # The server's and the fleet's CPU from the first call until every job was seen final (the
    # wait polls the store for a few tenths of a second more).
    # (time's last line: a client that failed has a line about its exit status first.)
    cpu_since "$round_from" "$(tail -1 "$dir/round.client-cpu" | awk '{ print $1 + $2 }')" >"$dir/round-cpu.json"
    # The same by thread: a thread near 100 % of the round's time is what the round waits for.
    wb threads --pid "$WHARF_PID" --since "$dir/round-threads-from.json" >"$dir/round-threads.json"
    log "round CPU: $(cat "$dir/round-cpu.json")"
    log "round: $(tr -d '\n ' <"$dir/round.json")"
    local peak_rss
    peak_rss="$(hwm_kib "$WHARF_PID")"
    [ -n "${BENCH_SMAPS:-}" ] && save_memory_map "$WHARF_PID" "$dir/server-after-round"
    [ -n "$perf_pid" ] && perf_finish "$perf_pid" "$dir/perf.data" "$RESULTS/perf-scale.txt"
    local fleet_rss=0 pid
    for pid in "${pids[@]}"; do fleet_rss=$((fleet_rss + $(rss_kib "$pid"))); done
    for pid in "${pids[@]}"; do stop_pid "$pid"; done
    python3 - "$all_connected" "$idle_ok" "${logs[@]}" >"$dir/connect.json" <<'PY'
import json, re, sys
all_connected, idle_ok, paths = sys.argv[1] == "1", sys.argv[2] == "1", sys.argv[3:]
starts, ends, seconds, welcomed = [], [], [], 0
for path in paths:
    last = 0
    for line in open(path):
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if r.get("event") == "connecting":
            starts.append(r["at"])
        elif r.get("event") == "connected":
            ends.append(r["at"]); seconds.append(r["seconds"])
        elif r.get("event") == "stopped":
            last = r.get("welcomed", 0)
    welcomed += last
print(json.dumps({"processes": len(paths), "allConnected": all_connected and len(ends) == len(paths),
                  "allConnectedSeconds": round(max(ends) - min(starts), 3) if all_connected and len(ends) == len(paths) else None,
                  "perProcessSeconds": [round(s, 3) for s in seconds], "welcomedAtStop": welcomed,
                  "firstDeploysFinal": idle_ok}))
PY
    stop_pid "$WHARF_PID"

    python3 - "$dir" "$total" "$idle_rss" "$connected_rss" "$peak_rss" "$fleet_rss" >"$RESULTS/parts/scale.json" <<'PY'
import json, os, sys
d, total, idle, connected, peak, fleet = sys.argv[1], int(sys.argv[2]), *map(int, sys.argv[3:7])
load = lambda name: json.load(open(os.path.join(d, name)))
print(json.dumps({
    "part": "scale", "agents": total, "zmq": load("zmq-fanout.json"), "connect": load("connect.json"),
    "serverRssIdleMiB": round(idle / 1024, 1), "serverRssConnectedMiB": round(connected / 1024, 1),
    "serverRssPeakInRoundMiB": round(peak / 1024, 1), "fleetRssMiB": round(fleet / 1024, 1),
    "idleCpu": load("idle-cpu.json"), "roundCpu": load("round-cpu.json"), "roundThreads": load("round-threads.json"), "round": load("round.json"), "roundClient": load("round.client.json"), "setup": load("setup.json"),
}, indent=2))
PY
}
