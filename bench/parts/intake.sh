# Part 1 — webhook intake: POST /api/stacks/webhooks/{token} under wrk (64 connections, 2 threads),
# (a) one hot stack (calls coalesce into the queued job) and (b) round-robin over 10,000 stacks on
# 100 simulated environments (each call a new durable job, dispatched and completed by the fleet).
# Baselines in the same run: nginx `return 202`, bare Hummingbird 2.28.1 answering 202, and
# adnanh/webhook running /bin/true.

intake_wrk() {  # intake_wrk NAME URL [LUA-ARGS...] — warm up 2 s, then measure; JSON in $dir/NAME.json
    local name="$1" url="$2"; shift 2
    local lua_args=()
    [ $# -gt 0 ] && lua_args=(-- "$@")
    wrk -t2 -c64 -d2s -s "$BENCH/wrk/webhook.lua" "$url" "${lua_args[@]}" >/dev/null 2>&1 || true
    [ -n "${INTAKE_BEFORE:-}" ] && $INTAKE_BEFORE
    local cpu0 fleet0=0 t0 t1
    cpu0="$(cpu_seconds "$INTAKE_PID")"
    [ -n "${INTAKE_FLEET_PID:-}" ] && fleet0="$(cpu_seconds "$INTAKE_FLEET_PID")"
    # The server's threads, for where its CPU goes (the main process's threads only: nginx's workers are not in it).
    wb threads --pid "$INTAKE_PID" >"$dir/$name.threads-from.json"
    t0="$(date +%s.%N)"
    # wrk's own CPU (user + system), from its rusage: the load client shares the two vCPUs.
    WRK_CPU_FILE="$dir/$name.wrk-cpu" wrk_json "$dir/$name.txt" -t2 -c64 -d"${DURATION}s" --latency -s "$BENCH/wrk/webhook.lua" \
        "$url" "${lua_args[@]}" >"$dir/$name.wrk.json"
    t1="$(date +%s.%N)"
    wb threads --pid "$INTAKE_PID" --since "$dir/$name.threads-from.json" >"$dir/$name.threads.json"
    local fleet1=0
    [ -n "${INTAKE_FLEET_PID:-}" ] && fleet1="$(cpu_seconds "$INTAKE_FLEET_PID")"
    THREADS_FILE="$dir/$name.threads.json" python3 - "$dir/$name.wrk.json" "$t0" "$t1" "$cpu0" "$(cpu_seconds "$INTAKE_PID")" "$(tree_rss_kib "$INTAKE_PID")" \
        "$dir/$name.wrk-cpu" "$fleet0" "$fleet1" "${INTAKE_FLEET_PID:+fleet}" >"$dir/$name.json" <<'PY'
import json, os, sys
w = json.load(open(sys.argv[1]))["wrk"]
t0, t1, c0, c1, rss = map(float, sys.argv[2:7])
wrk_cpu = None
try:
    for line in open(sys.argv[7]):
        if line.startswith("wrk-cpu "):
            wrk_cpu = round(sum(map(float, line.split()[1:3])), 2)
except OSError:
    pass
f0, f1 = float(sys.argv[8]), float(sys.argv[9])
has_fleet = len(sys.argv) > 10 and sys.argv[10] == "fleet"
seconds = w["durationMicros"] / 1e6
e = w["errors"]
per_call = lambda cpu: None if cpu is None else round(cpu / max(1, w["requests"]) * 1e6, 1)
print(json.dumps({
    "requests": w["requests"], "seconds": round(seconds, 2), "requestsPerSecond": round(w["requests"] / seconds, 1),
    "p50Ms": w["latencyMicros"]["p50"] / 1000, "p99Ms": w["latencyMicros"]["p99"] / 1000, "maxMs": w["latencyMicros"]["max"] / 1000,
    "non2xx": e["status"], "socketErrors": e["connect"] + e["read"] + e["write"] + e["timeout"],
    "serverCpuSeconds": round(c1 - c0, 2), "serverCpuPerRequestMicros": per_call(c1 - c0),
    "rssMiB": round(rss / 1024, 1), "startedAt": t0, "endedAt": t1,
    "wrkCpuSeconds": wrk_cpu, "wrkCpuPerRequestMicros": per_call(wrk_cpu),
    "fleetCpuSeconds": round(f1 - f0, 2) if has_fleet else None,
    "fleetCpuPerRequestMicros": per_call(f1 - f0) if has_fleet else None,
    "threads": json.load(open(os.environ["THREADS_FILE"])),
}))
PY
    log "$name: $(cat "$dir/$name.json")"
}

part_intake() {
    local dir="$RUN/intake"
    mkdir -p "$dir"
    local port

    # nginx: the HTTP ceiling of this machine.
    port="$(free_port)"
    mkdir -p "$dir/nginx"
    cat >"$dir/nginx/nginx.conf" <<EOF
worker_processes auto;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    server {
        listen 127.0.0.1:$port;
        location / { return 202; }
    }
}
EOF
    spawn "$dir/nginx/out.log" "$NGINX" -p "$dir/nginx" -c "$dir/nginx/nginx.conf" -g 'daemon off;'
    INTAKE_PID=$SPAWNED
    wait_http "$INTAKE_PID" "http://127.0.0.1:$port/"
    intake_wrk nginx "http://127.0.0.1:$port/api/stacks/webhooks/00000000-0000-4000-8000-000000000000"
    stop_pid "$INTAKE_PID"

    # Bare Hummingbird 2.28.1: one route answering 202.
    port="$(free_port)"
    spawn "$dir/bare-hummingbird.log" "$BARE_HB" "$port"
    INTAKE_PID=$SPAWNED
    wait_http "$INTAKE_PID" "http://127.0.0.1:$port/"
    intake_wrk hummingbird "http://127.0.0.1:$port/api/stacks/webhooks/00000000-0000-4000-8000-000000000000"
    stop_pid "$INTAKE_PID"

    # adnanh/webhook: a hook that runs /bin/true.
    port="$(free_port)"
    cat >"$dir/hooks.json" <<'EOF'
[{"id": "bench", "execute-command": "/bin/true", "http-methods": ["POST"], "response-message": "accepted"}]
EOF
    spawn "$dir/webhook.log" webhook -hooks "$dir/hooks.json" -ip 127.0.0.1 -port "$port"
    INTAKE_PID=$SPAWNED
    wait_http "$INTAKE_PID" "http://127.0.0.1:$port/hooks/bench"
    intake_wrk webhook "http://127.0.0.1:$port/hooks/bench"
    stop_pid "$INTAKE_PID"

    # Wharf: 100 simulated environments with 100 stacks each, and one hot stack.
    start_wharf "$dir/wharf"
    INTAKE_PID=$WHARF_PID
    start_fleet "$dir" intake 100 0
    local fleet_pid=$FLEET_PID
    INTAKE_FLEET_PID=$fleet_pid
    wait_event "$FLEET_LOG" connected "$fleet_pid" 120
    log "creating 10,000 stacks with webhooks on 100 environments"
    wb setup --url "$WHARF_URL" --token-file "$WHARF_TOKEN_FILE" --envs 100 --stacks-per-env 100 --batch 1000 \
        --out "$dir/paths.txt" >"$dir/setup.json"
    wb setup --url "$WHARF_URL" --token-file "$WHARF_TOKEN_FILE" --envs 1 --stacks-per-env 1 --stack-prefix hot --out "$dir/hot.txt" >/dev/null
    wb wait-idle --url "$WHARF_URL" --token-file "$WHARF_TOKEN_FILE" --timeout 300 >/dev/null
    local hot
    hot="$WHARF_URL$(head -1 "$dir/hot.txt")"

    INTAKE_BEFORE="wb wait-idle --url $WHARF_URL --token-file $WHARF_TOKEN_FILE --timeout 120"
    if [ -n "${BENCH_PERF_HOT:-}" ] && command -v perf >/dev/null; then
        INTAKE_BEFORE="intake_perf_start hot"
    fi
    intake_wrk wharf-hot "$hot"
    intake_perf_stop
    wb wait-idle --url "$WHARF_URL" --token-file "$WHARF_TOKEN_FILE" --timeout 120 >"$dir/wharf-hot.idle.json" || true
    wb jobs-since --db "$WHARF_DB" --since "$(json_get "$(cat "$dir/wharf-hot.json")" 'd["startedAt"]')" \
        --until "$(json_get "$(cat "$dir/wharf-hot.json")" 'd["endedAt"]')" >"$dir/wharf-hot.jobs.json"

    INTAKE_BEFORE=""
    if [ -n "${BENCH_PERF:-}" ] && command -v perf >/dev/null; then
        INTAKE_BEFORE="intake_perf_start roundrobin"
    fi
    intake_wrk wharf-roundrobin "$WHARF_URL" "$dir/paths.txt" 2
    INTAKE_BEFORE=""
    local drain_started=$SECONDS
    wb wait-idle --url "$WHARF_URL" --token-file "$WHARF_TOKEN_FILE" --timeout 60 >"$dir/wharf-roundrobin.idle.json" || true
    log "round-robin backlog drained in $((SECONDS - drain_started))s"
    wb jobs-since --db "$WHARF_DB" --since "$(json_get "$(cat "$dir/wharf-roundrobin.json")" 'd["startedAt"]')" \
        --until "$(json_get "$(cat "$dir/wharf-roundrobin.json")" 'd["endedAt"]')" >"$dir/wharf-roundrobin.jobs.json"
    intake_perf_stop

    # Not a goal: the hot stack's call with no job pipeline behind it. A stack on an environment
    # whose agent never connects: every call joins its queued first deploy and no job runs, so this
    # is Wharf's own work per call (route, token, join, the 202), apart from the jobs an instant
    # agent makes a hot stack cycle through. Last, since that deploy stays queued.
    curl -fsS -o /dev/null -X POST -H "Authorization: Bearer $(cat "$WHARF_TOKEN_FILE")" \
        -H 'Content-Type: application/json' -d '{"name": "away-0"}' "$WHARF_URL/api/environments"
    wb setup --url "$WHARF_URL" --token-file "$WHARF_TOKEN_FILE" --prefix away --envs 1 --stacks-per-env 1 \
        --stack-prefix away --out "$dir/away.txt" >/dev/null
    if [ -n "${BENCH_PERF_HOT:-}" ] && command -v perf >/dev/null; then
        INTAKE_BEFORE="intake_perf_start away"
    fi
    intake_wrk wharf-hot-away "$WHARF_URL$(head -1 "$dir/away.txt")"
    INTAKE_BEFORE=""
    intake_perf_stop
    stop_pid "$fleet_pid"
    INTAKE_FLEET_PID=""
    stop_pid "$WHARF_PID"

    python3 - "$dir" >"$RESULTS/parts/intake.json" <<'PY'
import json, os, sys
d = sys.argv[1]
load = lambda name: json.load(open(os.path.join(d, name)))
out = {"part": "intake", "connections": 64, "threads": 2, "runs": {}}
for name in ("nginx", "hummingbird", "webhook", "wharf-hot", "wharf-roundrobin"):
    out["runs"][name] = load(f"{name}.json")
out["runs"]["wharf-hot-away"] = load("wharf-hot-away.json")
for name in ("wharf-hot", "wharf-roundrobin"):
    out["runs"][name]["jobs"] = load(f"{name}.jobs.json")
    out["runs"][name]["drain"] = load(f"{name}.idle.json")
out["setup"] = load("setup.json")
print(json.dumps(out, indent=2))
PY
}

# intake_perf_start RUN — profiles the measured run that follows (roundrobin: results/perf-intake.txt;
# hot, away: results/perf-intake-RUN.txt), in the background, for the run's length. Before hot and
# roundrobin it waits for the jobs before to end (the away stack's deploy never does: no wait).
intake_perf_start() {
    if [ "$1" != away ]; then
        wb wait-idle --url "$WHARF_URL" --token-file "$WHARF_TOKEN_FILE" --timeout 120 >/dev/null || true
    fi
    INTAKE_PERF_OUT="$RESULTS/perf-intake.txt"
    [ "$1" = roundrobin ] || INTAKE_PERF_OUT="$RESULTS/perf-intake-$1.txt"
    perf_start "$RUN/intake/perf-$1.data" "$DURATION"
    INTAKE_PERF_PID=$PERF_PID
    INTAKE_PERF_DATA="$RUN/intake/perf-$1.data"
}

intake_perf_stop() {
    [ -n "${INTAKE_PERF_PID:-}" ] || return 0
    perf_finish "$INTAKE_PERF_PID" "$INTAKE_PERF_DATA" "$INTAKE_PERF_OUT"
    INTAKE_PERF_PID=""
    log "perf profile: $INTAKE_PERF_OUT"
}
