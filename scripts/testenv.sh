#!/usr/bin/env bash
# Private test environment for Wharf's tests.
#
#   scripts/testenv.sh up DIR     start a private containerd + dockerd and two
#                                 Docker registries (open, and htpasswd-protected)
#                                 with all their state under DIR; write DIR/env
#   scripts/testenv.sh down DIR   remove all containers, stop everything `up`
#                                 started (by PID), unmount, remove DIR
#
# Keep DIR short (e.g. `mktemp -d /tmp/wharf-test.XXXXXX`): unix socket paths
# under it must stay below 108 bytes.
#
# Nothing here touches another Docker daemon on the machine: the engine gets its
# own containerd, data root, exec root, socket and config file, no bridge and no
# iptables rules. Containers must use `network_mode: host` / `--network host`.
#
# DIR/env holds KEY=VALUE lines (no quotes, no export):
#   DOCKER_HOST, WHARF_TEST_DOCKER_HOST, WHARF_TEST_REGISTRY,
#   WHARF_TEST_AUTH_REGISTRY, WHARF_TEST_AUTH_USER, WHARF_TEST_AUTH_PASSWORD,
#   WHARF_TEST_DIR, WHARF_TEST_SCRIPTS
# DIR/pids holds the PID of every daemon `up` started, one per line.
set -euo pipefail

SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MARKER=".wharf-testenv"
START_TIMEOUT="${WHARF_TESTENV_START_TIMEOUT:-60}"   # seconds, per service
STOP_TIMEOUT="${WHARF_TESTENV_STOP_TIMEOUT:-20}"     # seconds, per daemon

log() { echo "testenv: $*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
    echo "usage: $0 up DIR | down DIR" >&2
    exit 2
}

# ---------------------------------------------------------------------------
# helpers

free_port() {
    python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

random_password() {
    od -An -N18 -tx1 /dev/urandom | tr -d ' \n'
}

# True if PID exists and is not a zombie.
alive() {
    [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 1
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }"
    [ "${stat%% *}" != "Z" ]
}

# True if PID is alive and its command line mentions DIR (guards against PID reuse).
ours() {
    local pid="$1" dir="$2"
    alive "$pid" || return 1
    local cmdline
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
    [[ "$cmdline" == *"$dir"* ]]
}

# Start a daemon in its own session (so a Ctrl-C on the terminal does not hit
# it: `down` stops it in order), log to $LOG, record its PID.
spawn() {
    local logfile="$1"; shift
    setsid "$@" </dev/null >>"$logfile" 2>&1 &
    local pid=$!
    echo "$pid" >>"$DIR/pids"
    SPAWNED=$pid
}

tail_log() {
    local f="$1"
    [ -f "$f" ] || return 0
    log "--- last lines of $f:"
    tail -n 25 "$f" >&2 || true
}

wait_http() {  # wait_http PID URL LOGFILE NAME — until URL answers (any HTTP status)
    local pid="$1" url="$2" logfile="$3" name="$4" code deadline=$((SECONDS + START_TIMEOUT))
    while :; do
        code="$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$url" 2>/dev/null || true)"
        if [ -n "$code" ] && [ "$code" != "000" ]; then return 0; fi
        if ! alive "$pid"; then tail_log "$logfile"; die "$name exited during start-up"; fi
        if [ "$SECONDS" -ge "$deadline" ]; then tail_log "$logfile"; die "$name did not answer $url within ${START_TIMEOUT}s"; fi
        sleep 0.1
    done
}

# ---------------------------------------------------------------------------
# up

start_containerd() {
    local d="$DIR/containerd"
    mkdir -p "$d/root" "$d/state" "$d/opt"
    cat >"$d/config.toml" <<EOF
version = 2
root = "$d/root"
state = "$d/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "$DIR/containerd.sock"

[ttrpc]
  address = "$DIR/containerd.sock.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$d/opt"
EOF
    spawn "$d/containerd.log" containerd --config "$d/config.toml"
    CONTAINERD_PID=$SPAWNED
}

start_dockerd() {
    local d="$DIR/docker"
    mkdir -p "$d/data" "$d/exec"
    # An explicit (empty) config file, so /etc/docker/daemon.json is not read.
    echo '{}' >"$d/daemon.json"
    spawn "$d/dockerd.log" dockerd \
        --config-file "$d/daemon.json" \
        --containerd "$DIR/containerd.sock" \
        --data-root "$d/data" \
        --exec-root "$d/exec" \
        --pidfile "$d/dockerd.pid" \
        -H "unix://$DIR/docker.sock" \
        --bridge none \
        --iptables=false \
        --ip-masq=false \
        --ip6tables=false \
        --userland-proxy=false
    DOCKERD_PID=$SPAWNED
}

wait_containerd() {
    local deadline=$((SECONDS + START_TIMEOUT))
    until [ -S "$DIR/containerd.sock" ] && ctr --address "$DIR/containerd.sock" version >/dev/null 2>&1; do
        if ! alive "$CONTAINERD_PID"; then tail_log "$DIR/containerd/containerd.log"; die "containerd exited during start-up"; fi
        if [ "$SECONDS" -ge "$deadline" ]; then tail_log "$DIR/containerd/containerd.log"; die "containerd did not start within ${START_TIMEOUT}s"; fi
        sleep 0.1
    done
}

wait_dockerd() {
    local deadline=$((SECONDS + START_TIMEOUT))
    until [ -S "$DIR/docker.sock" ] && timeout 10 docker -H "unix://$DIR/docker.sock" info >/dev/null 2>&1; do
        if ! alive "$DOCKERD_PID"; then tail_log "$DIR/docker/dockerd.log"; die "dockerd exited during start-up"; fi
        if [ "$SECONDS" -ge "$deadline" ]; then tail_log "$DIR/docker/dockerd.log"; die "dockerd did not answer within ${START_TIMEOUT}s"; fi
        sleep 0.2
    done
}

# start_registry NAME PORT [HTPASSWD_FILE]
start_registry() {
    local name="$1" port="$2" htpasswd="${3:-}" d="$DIR/registry/$1"
    mkdir -p "$d/data"
    {
        echo "version: 0.1"
        echo "log:"
        echo "  level: warn"
        echo "  accesslog:"
        echo "    disabled: true"
        echo "storage:"
        echo "  filesystem:"
        echo "    rootdirectory: $d/data"
        echo "  delete:"
        echo "    enabled: true"
        echo "http:"
        echo "  addr: 127.0.0.1:$port"
        echo "  secret: $(random_password)"
        if [ -n "$htpasswd" ]; then
            echo "auth:"
            echo "  htpasswd:"
            echo "    realm: wharf-test"
            echo "    path: $htpasswd"
        fi
    } >"$d/config.yml"
    # REGISTRY_* variables would override the config file: run with none.
    local unset_args=() v
    for v in $(compgen -e); do
        [[ "$v" == REGISTRY_* ]] && unset_args+=(-u "$v")
    done
    spawn "$d/registry.log" env "${unset_args[@]}" docker-registry serve "$d/config.yml"
    REGISTRY_PID=$SPAWNED
}

cmd_up() {
    [ -e "$DIR" ] && [ -n "$(ls -A "$DIR" 2>/dev/null)" ] && die "$DIR exists and is not empty"
    for c in containerd dockerd docker ctr docker-registry htpasswd curl python3 setsid; do
        command -v "$c" >/dev/null 2>&1 || die "'$c' not found (run scripts/install-deps.sh test)"
    done
    mkdir -p "$DIR"
    DIR="$(cd "$DIR" && pwd -P)"
    touch "$DIR/$MARKER" "$DIR/pids"
    local sock="$DIR/containerd.sock.ttrpc"
    [ "${#sock}" -lt 100 ] || die "DIR is too long for unix socket paths: $DIR"

    # If anything below fails, stop what was started and remove DIR.
    # shellcheck disable=SC2154  # rc is assigned inside the trap
    trap 'rc=$?; if [ $rc -ne 0 ]; then log "up failed, cleaning up"; cmd_down || true; fi; exit $rc' EXIT
    trap 'exit 130' INT TERM

    local t0=$SECONDS

    start_containerd

    # Registries start while containerd and dockerd come up.
    local password port1 port2 open_pid auth_pid
    password="$(random_password)"
    mkdir -p "$DIR/registry/auth"
    htpasswd -Bbn wharf "$password" >"$DIR/registry/auth/htpasswd"
    port1="$(free_port)"
    start_registry open "$port1"; open_pid=$REGISTRY_PID
    port2="$(free_port)"
    while [ "$port2" = "$port1" ]; do port2="$(free_port)"; done
    start_registry auth "$port2" "$DIR/registry/auth/htpasswd"; auth_pid=$REGISTRY_PID

    wait_containerd
    start_dockerd
    wait_http "$open_pid" "http://127.0.0.1:$port1/v2/" "$DIR/registry/open/registry.log" "registry (open)"
    wait_http "$auth_pid" "http://127.0.0.1:$port2/v2/" "$DIR/registry/auth/registry.log" "registry (auth)"
    wait_dockerd

    cat >"$DIR/env.tmp" <<EOF
DOCKER_HOST=unix://$DIR/docker.sock
WHARF_TEST_DOCKER_HOST=unix://$DIR/docker.sock
WHARF_TEST_REGISTRY=127.0.0.1:$port1
WHARF_TEST_AUTH_REGISTRY=127.0.0.1:$port2
WHARF_TEST_AUTH_USER=wharf
WHARF_TEST_AUTH_PASSWORD=$password
WHARF_TEST_DIR=$DIR
WHARF_TEST_SCRIPTS=$SCRIPTS
EOF
    mv "$DIR/env.tmp" "$DIR/env"
    trap - EXIT INT TERM
    log "up in $((SECONDS - t0))s: docker unix://$DIR/docker.sock, registries 127.0.0.1:$port1 (open) and 127.0.0.1:$port2 (auth); env in $DIR/env"
}

# ---------------------------------------------------------------------------
# down

stop_pid() {  # stop_pid PID NAME — TERM, wait, KILL
    local pid="$1" name="$2" deadline
    ours "$pid" "$DIR" || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    deadline=$((SECONDS + STOP_TIMEOUT))
    while alive "$pid"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "$name (pid $pid) did not stop within ${STOP_TIMEOUT}s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.2
            break
        fi
        sleep 0.1
    done
}

cmd_down() {
    [ -d "$DIR" ] || return 0
    DIR="$(cd "$DIR" && pwd -P)"
    [ "$DIR" != "/" ] || die "refusing to work on /"
    [ -e "$DIR/$MARKER" ] || die "$DIR was not made by '$0 up' (no $MARKER in it); not touching it"

    # 1. All containers on the private engine.
    if [ -S "$DIR/docker.sock" ]; then
        local ids
        ids="$(timeout 20 docker -H "unix://$DIR/docker.sock" ps -aq 2>/dev/null || true)"
        if [ -n "$ids" ]; then
            # shellcheck disable=SC2086
            timeout 60 docker -H "unix://$DIR/docker.sock" rm -f -v $ids >/dev/null 2>&1 || log "could not remove every container"
        fi
    fi

    # 2. Our daemons, newest first (registries, dockerd, containerd).
    if [ -f "$DIR/pids" ]; then
        local pid
        for pid in $(tac "$DIR/pids"); do
            stop_pid "$pid" "$(cat "/proc/$pid/comm" 2>/dev/null || echo process)"
        done
    fi
    # dockerd's own pidfile, in case the recorded PID was a wrapper.
    if [ -f "$DIR/docker/dockerd.pid" ]; then
        stop_pid "$(cat "$DIR/docker/dockerd.pid" 2>/dev/null || true)" dockerd
    fi

    # 3. Containers left behind by a dead engine: kill them through runc, then
    #    any shim or other process still naming DIR on its command line.
    local runc_root="$DIR/docker/exec/runtime-runc/moby" id
    if [ -d "$runc_root" ] && command -v runc >/dev/null 2>&1; then
        for id in $(runc --root "$runc_root" list -q 2>/dev/null || true); do
            log "killing leftover container $id"
            runc --root "$runc_root" kill -a "$id" KILL 2>/dev/null || true
            sleep 0.2
            runc --root "$runc_root" delete -f "$id" 2>/dev/null || true
        done
    fi
    local p
    for p in /proc/[0-9]*; do
        p="${p#/proc/}"
        case "$(cat "/proc/$p/comm" 2>/dev/null)" in
            containerd-shim*|containerd|dockerd|docker-registry) ;;
            *) continue ;;
        esac
        if ours "$p" "$DIR/"; then
            log "stopping leftover process $p: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-120)"
            stop_pid "$p" "leftover"
        fi
    done

    # 4. Nothing may stay mounted under DIR (overlay layers, netns, shm ...).
    local mnt
    for mnt in $(awk -v d="$DIR/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | awk '{ print length, $0 }' | sort -rn | cut -d' ' -f2-); do
        umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || log "could not unmount $mnt"
    done

    # 5. Remove DIR.
    rm -rf "$DIR" 2>/dev/null || { sleep 1; rm -rf "$DIR"; } || die "could not remove $DIR"
}

# ---------------------------------------------------------------------------

[ $# -eq 2 ] || usage
CMD="$1"
DIR="$2"
[ -n "$DIR" ] || usage
case "$CMD" in
    up) cmd_up ;;
    down) cmd_down ;;
    *) usage ;;
esac
