# Part 4 — footprint: idle RSS of wharf-server, and of a connected wharf-agent (--simulate 0s).
# Baselines: nginx (master + workers) and adnanh/webhook idle; a raw libzmq CURVE DEALER process.

part_footprint() {
    local dir="$RUN/footprint"
    mkdir -p "$dir"
    "$ZMQBENCH" idle >"$dir/zmq-idle.json"

    local port
    port="$(free_port)"
    mkdir -p "$dir/nginx"
    cat >"$dir/nginx/nginx.conf" <<EOF2
worker_processes auto;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log warn;
events { worker_connections 1024; }
http { access_log off; server { listen 127.0.0.1:$port; location / { return 202; } } }
EOF2
    spawn "$dir/nginx/out.log" "$NGINX" -p "$dir/nginx" -c "$dir/nginx/nginx.conf" -g 'daemon off;'
    local nginx_pid=$SPAWNED
    wait_http "$nginx_pid" "http://127.0.0.1:$port/"
    sleep 2
    local nginx_rss
    nginx_rss="$(tree_rss_kib "$nginx_pid")"
    stop_pid "$nginx_pid"

    port="$(free_port)"
    echo '[{"id": "bench", "execute-command": "/bin/true"}]' >"$dir/hooks.json"
    spawn "$dir/webhook.log" webhook -hooks "$dir/hooks.json" -ip 127.0.0.1 -port "$port"
    local webhook_pid=$SPAWNED
    wait_http "$webhook_pid" "http://127.0.0.1:$port/hooks/bench"
    sleep 2
    local webhook_rss
    webhook_rss="$(rss_kib "$webhook_pid")"
    stop_pid "$webhook_pid"

    start_wharf "$dir/wharf"
    sleep 3
    local server_idle
    server_idle="$(rss_kib "$WHARF_PID")"
    local answer env join
    answer="$(curl -fsS -H "Authorization: Bearer $(cat "$WHARF_TOKEN_FILE")" -H 'Content-Type: application/json' \
        -d '{"name":"footprint","type":"agent"}' "$WHARF_URL/api/environments")"
    env="$(json_get "$answer" 'd["environment"]["id"]')"
    join="$(json_get "$answer" 'd["joinToken"]')"
    spawn "$dir/agent.log" "$BIN/wharf-agent" --server "$WHARF_URL" --join "$join" --data-dir "$dir/agent" --simulate 0s
    local agent_pid=$SPAWNED
    local deadline=$((SECONDS + 30)) status=""
    while [ "$status" != connected ]; do
        alive "$agent_pid" || die "wharf-agent exited (see $dir/agent.log)"
        [ "$SECONDS" -lt "$deadline" ] || die "the agent did not connect within 30 s"
        sleep 0.2
        status="$(curl -fsS -H "Authorization: Bearer $(cat "$WHARF_TOKEN_FILE")" "$WHARF_URL/api/environments/$env" \
            | python3 -c 'import json,sys; print(json.load(sys.stdin)["environment"]["status"])')"
    done
    sleep 5  # a couple of ping rounds
    local server_connected agent_rss
    server_connected="$(rss_kib "$WHARF_PID")"
    agent_rss="$(rss_kib "$agent_pid")"
    stop_pid "$agent_pid"
    stop_pid "$WHARF_PID"

    python3 - "$dir" "$nginx_rss" "$webhook_rss" "$server_idle" "$server_connected" "$agent_rss" >"$RESULTS/parts/footprint.json" <<'PY'
import json, os, sys
d = sys.argv[1]
nginx, webhook, server_idle, server_connected, agent = (round(int(x) / 1024, 1) for x in sys.argv[2:7])
print(json.dumps({
    "part": "footprint", "serverIdleMiB": server_idle, "serverWithOneAgentMiB": server_connected, "agentConnectedMiB": agent,
    "nginxIdleMiB": nginx, "webhookIdleMiB": webhook, "zmq": json.load(open(os.path.join(d, "zmq-idle.json"))),
}, indent=2))
PY
    log "footprint: $(cat "$RESULTS/parts/footprint.json" | tr -d '\n ')"
}
