# Part 2 — dispatch latency: from the webhook's 202 to the simulated agent holding the job, and from
# the agent's result to the job's final state, with 1 and with 1,000 connected agents, at 100 and
# 1,000 webhooks/s (an open-loop paced client: latencies count from each call's scheduled time).
# Baselines: raw libzmq ROUTER→DEALER round trips (CURVE + ZAP), back to back and paced at 1 ms; and,
# during each case, a 4-KiB write + fdatasync every 5 ms on the store's file system (a commit's sync).

dispatch_case() {  # dispatch_case LABEL RATE PATHS FLEETLOG
    local label="$1" rate="$2" paths="$3" fleet_log="$4"
    wb wait-idle --url "$WHARF_URL" --token-file "$WHARF_TOKEN_FILE" --timeout 120 >/dev/null || true
    # Beside the calls, what a commit's sync alone takes on the store's file system under this load.
    wb sync-probe --dir "$(dirname "$WHARF_DB")" --seconds "$DURATION" >"$dir/$label.sync.json" &
    local probe=$!
    wb paced --url "$WHARF_URL" --paths "$paths" --rate "$rate" --duration "$DURATION" --conns 16 --sender "$HTTPBURST" \
        --out "$dir/$label.client.jsonl" >"$dir/$label.client.json"
    wait "$probe" || die "the sync probe failed ($label)"
    wb wait-idle --url "$WHARF_URL" --token-file "$WHARF_TOKEN_FILE" --timeout 120 >"$dir/$label.idle.json" || true
    sleep 0.3  # the fleet writes its log every 50 ms
    wb dispatch --client "$dir/$label.client.jsonl" --fleet "$fleet_log" --db "$WHARF_DB" --label "$label" \
        --out "$dir/$label.json" >/dev/null
    log "$label: $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("hold after 202", d["holdAfter202Ms"], "| final after result", d["finalAfterResultMs"], "| notFinal", d["notFinal"])' "$dir/$label.json")"
}

part_dispatch() {
    local dir="$RUN/dispatch"
    mkdir -p "$dir"
    local samples=20000
    [ -n "$QUICK" ] && samples=3000
    "$ZMQBENCH" rtt "$samples" 0 >"$dir/zmq-rtt.json"
    "$ZMQBENCH" rtt $((samples / 4)) 1000 >"$dir/zmq-rtt-paced.json"
    log "raw libzmq round trip: $(cat "$dir/zmq-rtt.json")"
    log "raw libzmq round trip, 1 ms apart: $(cat "$dir/zmq-rtt-paced.json")"

    start_wharf "$dir/wharf"
    # One agent: 1,000 stacks on one environment, so that each stack is called at most once a second.
    FLEET_PREFIX=one start_fleet "$dir" one 1 0
    local one_pid=$FLEET_PID one_log=$FLEET_LOG
    wait_event "$one_log" connected "$one_pid" 60
    wb setup --url "$WHARF_URL" --token-file "$WHARF_TOKEN_FILE" --prefix one --envs 1 --stacks-per-env 1000 --batch 250 \
        --out "$dir/one.paths" >/dev/null
    wb wait-idle --url "$WHARF_URL" --token-file "$WHARF_TOKEN_FILE" --timeout 300 >/dev/null
    dispatch_case agents1-rate100 100 "$dir/one.paths" "$one_log"
    dispatch_case agents1-rate1000 1000 "$dir/one.paths" "$one_log"
    stop_pid "$one_pid"

    # 1,000 agents, one stack each.
    start_fleet "$dir" thousand 1000 0
    local fleet_pid=$FLEET_PID fleet_log=$FLEET_LOG
    wait_event "$fleet_log" connected "$fleet_pid" 180
    wb setup --url "$WHARF_URL" --token-file "$WHARF_TOKEN_FILE" --envs 1000 --stacks-per-env 1 --batch 250 \
        --out "$dir/thousand.paths" >/dev/null
    wb wait-idle --url "$WHARF_URL" --token-file "$WHARF_TOKEN_FILE" --timeout 300 >/dev/null
    sleep 2  # let the first pings settle
    dispatch_case agents1000-rate100 100 "$dir/thousand.paths" "$fleet_log"
    dispatch_case agents1000-rate1000 1000 "$dir/thousand.paths" "$fleet_log"
    stop_pid "$fleet_pid"
    fleet_stats "$fleet_log" >"$dir/fleet-stats.json"
    stop_pid "$WHARF_PID"

    python3 - "$dir" >"$RESULTS/parts/dispatch.json" <<'PY'
import json, os, sys
d = sys.argv[1]
load = lambda name: json.load(open(os.path.join(d, name)))
out = {"part": "dispatch", "zmqRoundTrip": load("zmq-rtt.json"), "zmqRoundTripPaced": load("zmq-rtt-paced.json"),
       "fleet1000": load("fleet-stats.json"), "cases": {}}
for label in ("agents1-rate100", "agents1-rate1000", "agents1000-rate100", "agents1000-rate1000"):
    case = load(f"{label}.json")
    case["client"] = load(f"{label}.client.json")
    case["syncProbeMs"] = load(f"{label}.sync.json")
    case["drain"] = load(f"{label}.idle.json")
    out["cases"][label] = case
print(json.dumps(out, indent=2))
PY
}
