#!/usr/bin/env bash
# `make run`: a Wharf server plus one local agent on the local Docker engine, with the embedded
# SQLite store in ./wharf-data. Ctrl-C stops both. A second run reuses the data and does not enrol again
# (with other ports, the agent's saved endpoint is updated to the new one).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="/opt/swift/usr/bin:$PATH"

HTTP_PORT="${WHARF_HTTP_PORT:-9000}"
ZMQ_PORT="${WHARF_ZMQ_PORT:-9001}"
DATA="${WHARF_DATA_DIR:-$PWD/wharf-data}"
AGENT_DATA="$DATA/local-agent"
URL="http://127.0.0.1:$HTTP_PORT"
ZMQ_ENDPOINT="tcp://127.0.0.1:$ZMQ_PORT"

# Whether something accepts TCP connections on 127.0.0.1:$1.
port_answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# An earlier run that was not stopped (its server and agent orphaned) still holds the ports: a new
# server could not bind them, and the health check below would be answered by the old one.
for port in "$HTTP_PORT" "$ZMQ_PORT"; do
    if port_answers "$port"; then
        echo "wharf: something already listens on 127.0.0.1:$port (an earlier 'make run' still running?)." >&2
        echo "wharf: stop it (e.g. find it with: ss -ltnp 'sport = :$port'), or choose other ports with WHARF_HTTP_PORT and WHARF_ZMQ_PORT." >&2
        exit 1
    fi
done

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
    --zmq-bind "$ZMQ_ENDPOINT" --public-url "$URL" &
server_pid=$!
pids+=("$server_pid")
# Healthy only if the server started here answers: one that failed to bind has exited.
server_up() { kill -0 "$server_pid" 2>/dev/null && curl -fsS "$URL/api/health" >/dev/null 2>&1; }
for _ in $(seq 1 60); do
    server_up && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.5
done
server_up || { echo "wharf: the server did not start (its output is above)" >&2; exit 1; }
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
else
    # The agent dials the endpoint it was given at enrolment. After a run on other ports, point it
    # at this run's server: the same data dir, so the same server key, only the ports differ.
    python3 - "$AGENT_DATA/identity.json" "$ZMQ_ENDPOINT" "$URL" <<'PY'
import json, os, sys
path, endpoint, server = sys.argv[1:4]
with open(path) as f:
    identity = json.load(f)
if identity.get("endpoint") != endpoint or identity.get("server") != server:
    print(f"wharf: the local agent was enrolled with {identity.get('endpoint')}; it now connects to {endpoint}")
    identity["endpoint"], identity["server"] = endpoint, server
    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(identity, f, indent=2, sort_keys=True)
    os.replace(path + ".tmp", path)
PY
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
