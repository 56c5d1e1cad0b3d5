# Part 5 — redeploy overhead on a real engine: from the webhook POST (?TAG=…&wait=120) to the new
# container serving its new content on its port, against `compose pull && compose up -d` run by hand
# on the same stack (same compose project, same engine, same registry), 5 times each, alternating.
# A private dockerd and registry (scripts/testenv.sh), images from scripts/make-test-image.sh, a real
# wharf-agent (no --simulate) on that engine. Every deploy pulls: local copies are removed first.

redeploy_wait_content() {  # redeploy_wait_content PORT TEXT TIMEOUT — until http://127.0.0.1:PORT/ serves TEXT
    python3 - "$@" <<'PY'
import sys, time, urllib.request
port, text, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
deadline = time.time() + timeout
while time.time() < deadline:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as response:
            if response.read().decode().strip() == text:
                print(f"{time.time():.6f}")
                sys.exit(0)
    except Exception:  # refused, reset, cut short while the container is replaced
        pass
    time.sleep(0.01)
sys.exit(1)
PY
}

part_redeploy() {
    local dir="$RUN/redeploy"
    mkdir -p "$dir"
    local rounds=5
    [ -n "$QUICK" ] && rounds=2
    local TESTENV_DIR="$RUN/te"
    echo "$TESTENV_DIR" >"$RUN/testenv-dir"  # run.sh takes it down, whatever happens here
    bash "$ROOT/scripts/testenv.sh" up "$TESTENV_DIR" >"$dir/testenv.log" 2>&1 || { cat "$dir/testenv.log" >&2; die "testenv up failed"; }
    local DOCKER_HOST REG
    DOCKER_HOST="$(grep '^DOCKER_HOST=' "$TESTENV_DIR/env" | cut -d= -f2-)"
    REG="$(grep '^WHARF_TEST_REGISTRY=' "$TESTENV_DIR/env" | cut -d= -f2-)"
    export DOCKER_HOST
    local compose_command="${BENCH_COMPOSE:-docker compose}"
    $compose_command version >/dev/null 2>&1 || compose_command="docker-compose"
    local port
    port="$(free_port)"

    log "building $((2 * rounds + 1)) images on $REG"
    local i
    for i in $(seq 0 $((2 * rounds))); do
        WHARF_TEST_DOCKER_HOST="$DOCKER_HOST" bash "$ROOT/scripts/make-test-image.sh" "$REG/bench/web:v$i" "wharf-bench v$i" >/dev/null 2>>"$dir/images.log" \
            || { cat "$dir/images.log" >&2; die "make-test-image failed"; }
    done
    for i in $(seq 1 $((2 * rounds))); do docker rmi "$REG/bench/web:v$i" >/dev/null; done

    local compose
    compose="$(printf 'services:\n  web:\n    image: %s/bench/web:${TAG:-v0}\n    network_mode: host\n    environment:\n      PORT: "%s"\n' "$REG" "$port")"
    start_wharf "$dir/wharf"
    local token answer env join stack hook job
    token="$(cat "$WHARF_TOKEN_FILE")"
    answer="$(curl -fsS -H "Authorization: Bearer $token" -d '{"name":"bench","type":"agent"}' "$WHARF_URL/api/environments")"
    env="$(json_get "$answer" 'd["environment"]["id"]')"
    join="$(json_get "$answer" 'd["joinToken"]')"
    spawn "$dir/agent.log" "$BIN/wharf-agent" --server "$WHARF_URL" --join "$join" --data-dir "$dir/agent" \
        --docker-host "$DOCKER_HOST" --compose-command "$compose_command"
    local agent_pid=$SPAWNED
    answer="$(python3 -c 'import json,sys; print(json.dumps({"name": "web", "environmentId": sys.argv[1], "compose": sys.argv[2]}))' "$env" "$compose" \
        | curl -fsS -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d @- "$WHARF_URL/api/stacks")"
    stack="$(json_get "$answer" 'd["stack"]["id"]')"
    redeploy_wait_content "$port" "wharf-bench v0" 180 >/dev/null || { tail -30 "$dir/agent.log" >&2; die "the first deploy did not serve v0"; }
    hook="$(json_get "$(curl -fsS -X POST -H "Authorization: Bearer $token" "$WHARF_URL/api/stacks/$stack/webhook")" 'd["url"]')"
    wb wait-idle --url "$WHARF_URL" --token-file "$WHARF_TOKEN_FILE" --timeout 60 >/dev/null

    mkdir -p "$dir/manual"
    printf '%s\n' "$compose" >"$dir/manual/compose.yaml"
    : >"$dir/rounds.jsonl"
    local r status
    # Each way is started in the background and the port is polled at once, so both are timed the same:
    # from the start of the request (or command) to the new content on the port.
    for r in $(seq 1 "$rounds"); do
        local tag t0 t1 answer_pid answer
        tag="v$((2 * r - 1))"
        t0="$(date +%s.%N)"
        curl -s -o "$dir/wharf-$r.json" -w '%{http_code} %{time_total}' -X POST "$hook?TAG=$tag&wait=120" >"$dir/wharf-$r.status" &
        answer_pid=$!
        t1="$(redeploy_wait_content "$port" "wharf-bench $tag" 120)" || die "Wharf round $r: $tag never served"
        wait "$answer_pid" || true
        read -r status answer <"$dir/wharf-$r.status" || true
        echo "{\"way\":\"wharf\",\"round\":$r,\"tag\":\"$tag\",\"status\":$status,\"seconds\":$(python3 -c "print(round($t1 - $t0, 3))"),\"answeredAfter\":$answer}" >>"$dir/rounds.jsonl"

        tag="v$((2 * r))"
        t0="$(date +%s.%N)"
        (cd "$dir/manual" && export TAG="$tag" && $compose_command -p web -f compose.yaml pull -q >>"$dir/manual.log" 2>&1 \
            && $compose_command -p web -f compose.yaml up -d >>"$dir/manual.log" 2>&1; echo "$? $(date +%s.%N)" >"$dir/manual-$r.status") &
        answer_pid=$!
        t1="$(redeploy_wait_content "$port" "wharf-bench $tag" 120)" || { tail -20 "$dir/manual.log" >&2; die "manual round $r: $tag never served"; }
        wait "$answer_pid" || true
        read -r status answer <"$dir/manual-$r.status" || true
        [ "$status" = 0 ] || { tail -20 "$dir/manual.log" >&2; die "manual compose failed"; }
        echo "{\"way\":\"manual\",\"round\":$r,\"tag\":\"$tag\",\"status\":$status,\"seconds\":$(python3 -c "print(round($t1 - $t0, 3))"),\"answeredAfter\":$(python3 -c "print(round($answer - $t0, 3))")}" >>"$dir/rounds.jsonl"
        log "round $r: $(tail -2 "$dir/rounds.jsonl" | tr '\n' ' ')"
    done
    stop_pid "$agent_pid"
    stop_pid "$WHARF_PID"

    python3 - "$dir/rounds.jsonl" "$compose_command" >"$RESULTS/parts/redeploy.json" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
def stats(way):
    values = [r["seconds"] for r in rows if r["way"] == way]
    return {"runs": values, "median": round(statistics.median(values), 3), "min": min(values), "max": max(values)}
print(json.dumps({"part": "redeploy", "compose": sys.argv[2], "wharf": stats("wharf"), "manual": stats("manual"),
                  "wharfAnswers": [{"status": r["status"], "answeredAfter": r["answeredAfter"]} for r in rows if r["way"] == "wharf"],
                  "rounds": rows}, indent=2))
PY
}
