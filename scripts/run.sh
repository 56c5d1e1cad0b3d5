#!/usr/bin/env bash
# `make run`: a Wharf server plus one local agent on the local Docker engine, with the embedded
# SQLite store in ./wharf-data. Ctrl-C stops both. A second run reuses the data and does not enrol again.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="/opt/swift/usr/bin:$PATH"

HTTP_PORT="${WHARF_HTTP_PORT:-9000}"
ZMQ_PORT="${WHARF_ZMQ_PORT:-9001}"
DATA="${WHARF_DATA_DIR:-$PWD/wharf-data}"
AGENT_DATA="$DATA/local-agent"
URL="http://127.0.0.1:$HTTP_PORT"

bash scripts/install-deps.sh run

# A Docker engine: DOCKER_HOST, else /var/run/docker.sock, else start one and say so.
started_dockerd=""
if ! docker info >/dev/null 2>&1; then
    if [ -z "${DOCKER_HOST:-}" ] && [ -S /var/run/docker.sock ] && DOCKER_HOST=unix:///var/run/docker.sock docker info >/dev/null 2>&1; then
        export DOCKER_HOST=unix:///var/run/docker.sock
    else
        echo "wharf: no Docker engine answers; starting dockerd (log: $DATA/dockerd.log)"
        mkdir -p "$DATA"
        dockerd >"$DATA/dockerd.log" 2>&1 &
        started_dockerd=$!
        for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
        docker info >/dev/null 2>&1 || { echo "wharf: dockerd did not start; see $DATA/dockerd.log" >&2; exit 1; }
    fi
fi
export DOCKER_HOST="${DOCKER_HOST:-unix:///var/run/docker.sock}"

swift build -c release --product wharf-server
swift build -c release --product wharf-agent
swift build -c release --product wharf
BIN="$(swift build -c release --show-bin-path)"

pids=()
cleanup() {
    trap - EXIT INT TERM
    echo; echo "wharf: stopping"
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    [ -n "$started_dockerd" ] && kill -TERM "$started_dockerd" 2>/dev/null && wait "$started_dockerd" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$BIN/wharf-server" --data-dir "$DATA" --http-host 127.0.0.1 --http-port "$HTTP_PORT" \
    --zmq-bind "tcp://127.0.0.1:$ZMQ_PORT" --public-url "$URL" &
pids+=($!)
for _ in $(seq 1 60); do curl -fsS "$URL/api/health" >/dev/null 2>&1 && break; sleep 0.5; done
curl -fsS "$URL/api/health" >/dev/null || { echo "wharf: the server did not start" >&2; exit 1; }
TOKEN="$(cat "$DATA/admin-token")"

agent_args=(--data-dir "$AGENT_DATA" --docker-host "$DOCKER_HOST")
if [ ! -f "$AGENT_DATA/identity.json" ]; then
    answer="$(curl -fsS -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        -d '{"name":"local","type":"agent"}' "$URL/api/environments" || true)"
    if [ -z "$answer" ]; then
        # The environment exists from an earlier run whose agent data was removed: get a new join token.
        id="$(curl -fsS -H "Authorization: Bearer $TOKEN" "$URL/api/environments" | python3 -c 'import json,sys; print(next(e["id"] for e in json.load(sys.stdin)["environments"] if e["name"]=="local"))')"
        join="$(curl -fsS -X POST -H "Authorization: Bearer $TOKEN" "$URL/api/environments/$id/join-token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["joinToken"])')"
    else
        join="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["joinToken"])' "$answer")"
    fi
    agent_args+=(--server "$URL" --join "$join")
fi
"$BIN/wharf-agent" "${agent_args[@]}" &
pids+=($!)

cat <<MSG

Wharf is running.
  API and UI:   $URL   (health: $URL/api/health)
  Admin token:  $DATA/admin-token
  Environment:  local (agent on $DOCKER_HOST)
  CLI:          $BIN/wharf

Try it (in another terminal):
  export PATH="$BIN:\$PATH"
  wharf login --server $URL --token-file $DATA/admin-token
  printf 'services:\n  web:\n    image: nginx:\${TAG:-1.27}\n    ports: ["8080:80"]\n' > compose.yml
  wharf stack deploy hello --env-name local -f compose.yml --wait
  URL=\$(wharf webhook enable hello)
  curl -X POST "\$URL?TAG=1.28&wait=120"      # redeploy with TAG=1.28, answer when done

Ctrl-C stops both.
MSG
wait -n "${pids[@]}"
