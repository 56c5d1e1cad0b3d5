#!/bin/sh
# Installs wharf-agent on this Docker host as a systemd service and enrols it with the Wharf
# server that served this script.
#
#   curl -fsSL @WHARF_SERVER@/install-agent.sh | sh -s -- --join TOKEN [options]
#
# Options:
#   --join TOKEN        join token of the environment (POST /api/environments or its join-token route)
#   --edge              edge mode: no permanent connection, check in every --checkin-interval
#   --checkin-interval D  edge check-in interval, such as 30s or 5m (default: the agent's, 30s)
#   --data-dir DIR      the agent's data directory (default /var/lib/wharf-agent)
#   --server URL        the server's HTTP URL (default @WHARF_SERVER@)
#   --binary PATH       install the wharf-agent binary from this file (or WHARF_AGENT_BINARY=PATH)
#   --binary-url URL    download the wharf-agent binary from this URL (or WHARF_AGENT_BINARY_URL)
#   --compose-command C compose command, such as "docker compose" or "docker-compose" (detected if omitted)
#   --no-start          install and configure, but do not start the service
#   --dry-run           print what would be done, change nothing (needs neither root nor Docker)
#   -h, --help          this text
#
# There is no public download host for wharf-agent yet: build it (`swift build -c release
# --product wharf-agent`) or take it from your own release, and pass --binary or --binary-url.
#
# What it does: checks root, Docker and compose; installs /usr/local/bin/wharf-agent; creates
# the system user wharf-agent in group docker; writes /etc/default/wharf-agent with WHARF_JOIN
# for the first start; installs and starts wharf-agent.service; waits for the enrolment
# (DATA_DIR/identity.json) and then removes WHARF_JOIN from /etc/default/wharf-agent again.
set -eu

SERVER='@WHARF_SERVER@'
JOIN=''
EDGE=0
CHECKIN=''
DATA_DIR='/var/lib/wharf-agent'
BINARY="${WHARF_AGENT_BINARY:-}"
BINARY_URL="${WHARF_AGENT_BINARY_URL:-}"
COMPOSE_COMMAND=''
START=1
DRY_RUN=0

BIN_PATH="/usr/local/bin/wharf-agent"
UNIT_PATH="/etc/systemd/system/wharf-agent.service"
DEFAULTS_PATH="/etc/default/wharf-agent"
USER_NAME='wharf-agent'
ENROL_TIMEOUT="${WHARF_ENROL_TIMEOUT:-60}"

say() { printf 'wharf: %s\n' "$*" >&2; }
die() { printf 'wharf: error: %s\n' "$*" >&2; exit 1; }
usage() {
    cat <<EOF
Installs wharf-agent as a systemd service and enrols it with $SERVER.

Usage: curl -fsSL $SERVER/install-agent.sh | sh -s -- --join TOKEN [options]

Options:
  --join TOKEN          join token of the environment (from the server's API or UI)
  --edge                edge mode: no permanent connection, check in every interval
  --checkin-interval D  edge check-in interval, such as 30s or 5m (default 30s)
  --data-dir DIR        the agent's data directory (default /var/lib/wharf-agent)
  --server URL          the server's HTTP URL (default: the server that served this script)
  --binary PATH         install the wharf-agent binary from this file (or WHARF_AGENT_BINARY=PATH)
  --binary-url URL      download the wharf-agent binary from this URL (or WHARF_AGENT_BINARY_URL)
  --compose-command C   "docker compose", docker-compose or an absolute path (detected if omitted)
  --no-start            install and configure, but do not start the service
  --dry-run             print what would be done; change nothing (needs neither root nor Docker)
  -h, --help            this text

There is no public download host for wharf-agent yet: build it
(swift build -c release --product wharf-agent) and pass --binary or --binary-url.
EOF
}

# Runs a command, or in a dry run prints it.
run() {
    if [ "$DRY_RUN" -eq 1 ]; then
        printf '+'
        for arg in "$@"; do
            case "$arg" in
                *[!A-Za-z0-9_./:=@%+,-]*|'') printf " '%s'" "$arg" ;;
                *) printf ' %s' "$arg" ;;
            esac
        done
        printf '\n'
    else
        "$@"
    fi
}

# Writes stdin to a file (mode $2), or in a dry run prints it.
write_file() {
    if [ "$DRY_RUN" -eq 1 ]; then
        printf '+ write %s (mode %s):\n' "$1" "$2"
        sed 's/^/|   /'
    else
        tmp="$1.wharf-tmp.$$"
        (umask 077 && cat >"$tmp")
        chmod "$2" "$tmp"
        mv -f "$tmp" "$1"
    fi
}

need_value() {
    if [ "$#" -lt 2 ] || [ -z "$2" ]; then die "$1 needs a value (see --help)"; fi
    case "$2" in -*) die "$1 needs a value, not the option '$2' (see --help)" ;; esac
}

while [ "$#" -gt 0 ]; do
    case "$1" in
        --join) need_value "$@"; JOIN="$2"; shift 2 ;;
        --join=*) JOIN="${1#*=}"; shift ;;
        --edge) EDGE=1; shift ;;
        --checkin-interval) need_value "$@"; CHECKIN="$2"; shift 2 ;;
        --checkin-interval=*) CHECKIN="${1#*=}"; shift ;;
        --data-dir) need_value "$@"; DATA_DIR="$2"; shift 2 ;;
        --data-dir=*) DATA_DIR="${1#*=}"; shift ;;
        --server) need_value "$@"; SERVER="$2"; shift 2 ;;
        --server=*) SERVER="${1#*=}"; shift ;;
        --binary) need_value "$@"; BINARY="$2"; shift 2 ;;
        --binary=*) BINARY="${1#*=}"; shift ;;
        --binary-url) need_value "$@"; BINARY_URL="$2"; shift 2 ;;
        --binary-url=*) BINARY_URL="${1#*=}"; shift ;;
        --compose-command) need_value "$@"; COMPOSE_COMMAND="$2"; shift 2 ;;
        --compose-command=*) COMPOSE_COMMAND="${1#*=}"; shift ;;
        --no-start) START=0; shift ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h|--help) usage; exit 0 ;;
        --) shift; break ;;
        -*) die "unknown option '$1' (see --help)" ;;
        *) die "unexpected argument '$1' (options start with --; see --help)" ;;
    esac
done
[ "$#" -eq 0 ] || die "unexpected argument '$1' (see --help)"

# --- Check the arguments -----------------------------------------------------------------

# Spelt in two parts, so that the server's substitution leaves this one alone.
PLACEHOLDER='@WHARF''_SERVER@'
case "$SERVER" in
    "$PLACEHOLDER") die "no server URL: this script was not served by wharf-server; pass --server URL" ;;
    http://*|https://*) ;;
    *) die "--server must be an http:// or https:// URL, not '$SERVER'" ;;
esac
SERVER="${SERVER%/}"
case "$SERVER" in
    *[[:space:]\"\'\\\`\$]*) die "--server '$SERVER' has characters a URL cannot have" ;;
esac
case "$JOIN" in
    '') if [ -f "$DATA_DIR/identity.json" ]; then
            say "already enrolled ($DATA_DIR/identity.json exists); reinstalling without --join"
        else
            die "--join TOKEN is required: create an environment (or a new join token for one) on the server first"
        fi ;;
    *[!A-Za-z0-9_.-]*) die "--join '$JOIN' is not a join token (letters, digits, '_', '.', '-')" ;;
esac
case "$DATA_DIR" in
    /*) ;;
    *) die "--data-dir must be an absolute path, not '$DATA_DIR'" ;;
esac
case "$DATA_DIR" in
    *[!A-Za-z0-9_./-]*) die "--data-dir '$DATA_DIR' may hold only letters, digits, '_', '.', '-' and '/'" ;;
    /home|/home/*|/root|/root/*|/run/user/*) die "--data-dir cannot be under /home, /root or /run/user: the service's sandbox (ProtectHome=yes) hides them" ;;
esac
case "$CHECKIN" in
    '') ;;
    *[0-9]ms|*[0-9]s|*[0-9]m|*[0-9]h) [ "$EDGE" -eq 1 ] || die "--checkin-interval only applies with --edge" ;;
    *) die "--checkin-interval must look like 30s, 500ms, 5m or 1h, not '$CHECKIN'" ;;
esac
case "$COMPOSE_COMMAND" in
    *[[:space:]]*/*|/*[[:space:]]*) die "--compose-command: a path with spaces is not supported" ;;
    ''|'docker compose'|docker-compose|/*) ;;
    *) die "--compose-command must be \"docker compose\", docker-compose or an absolute path" ;;
esac
if [ -n "$BINARY" ] && [ -n "$BINARY_URL" ]; then
    die "give --binary or --binary-url, not both"
fi
# A join token for a directory that has enrolled is used only when agent.key is gone (lost, or
# removed to enrol again): the agent then enrols a new key. Otherwise it keeps its enrolment.
REENROL=0
if [ -n "$JOIN" ] && [ -s "$DATA_DIR/identity.json" ] && grep -q '"environmentId"' "$DATA_DIR/identity.json"; then
    if [ -f "$DATA_DIR/agent.key" ]; then
        say "already enrolled ($DATA_DIR/identity.json exists); the join token is not used (to enrol this host again, remove $DATA_DIR/identity.json and $DATA_DIR/agent.key first)"
        JOIN=''
    else
        say "$DATA_DIR/agent.key is missing: the agent enrols a new key with the join token"
        REENROL=1
    fi
fi
case "$BINARY_URL" in
    ''|http://*|https://*|file://*) ;;
    *) die "--binary-url must be an http://, https:// or file:// URL" ;;
esac

# --- Check the host ----------------------------------------------------------------------

if [ "$DRY_RUN" -eq 0 ] && [ "$(id -u)" -ne 0 ]; then
    die "run this as root (it installs a system service): curl -fsSL $SERVER/install-agent.sh | sudo sh -s -- --join TOKEN"
fi
[ "$(uname -s)" = Linux ] || die "wharf-agent runs on Linux only"

if [ ! -d /run/systemd/system ]; then
    [ "$DRY_RUN" -eq 1 ] || die "systemd is not running on this host; run wharf-agent another way (see the Wharf deploy/README.md)"
    say "systemd is not running here (a real run would stop here)"
fi

if command -v docker >/dev/null 2>&1; then
    if [ "$DRY_RUN" -eq 0 ] && ! docker version >/dev/null 2>&1; then
        die "docker is installed but the engine does not answer; start it: systemctl enable --now docker"
    fi
elif [ "$DRY_RUN" -eq 1 ]; then
    say "docker not found (a real run would stop here)"
else
    die "Docker is not installed. On Debian/Ubuntu: apt-get install docker.io (or Docker's docker-ce packages), then run this again"
fi

# The agent runs as wharf-agent, which does not see root's ~/.docker/cli-plugins: look for the
# compose plugin as it will, with a docker config directory of no one's.
compose_plugin_for_service() {
    scratch=$(mktemp -d) || return 1
    DOCKER_CONFIG="$scratch" docker compose version >/dev/null 2>&1
    found=$?
    rmdir "$scratch"
    return $found
}

COMPOSE_FOUND=''
if [ -n "$COMPOSE_COMMAND" ]; then
    COMPOSE_FOUND="$COMPOSE_COMMAND"
elif command -v docker >/dev/null 2>&1 && compose_plugin_for_service; then
    COMPOSE_FOUND='docker compose'
elif command -v docker-compose >/dev/null 2>&1; then
    COMPOSE_FOUND='docker-compose'
elif command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
    ROOT_ONLY="the docker compose plugin is installed for root only (~/.docker/cli-plugins), where the agent, which runs as wharf-agent, does not look; install it as /usr/local/lib/docker/cli-plugins/docker-compose"
    if [ "$DRY_RUN" -eq 1 ]; then say "$ROOT_ONLY (a real run would stop here)"; else die "$ROOT_ONLY, then run this again"; fi
fi
if [ -z "$COMPOSE_FOUND" ]; then
    if [ "$DRY_RUN" -eq 1 ]; then
        say "neither 'docker compose' nor docker-compose found (a real run would stop here)"
    else
        die "Docker Compose is not installed. Install the compose v2 plugin (Docker's docker-compose-plugin package, or its binary as /usr/local/lib/docker/cli-plugins/docker-compose) or, on Debian, apt-get install docker-compose; then run this again"
    fi
else
    say "compose: $COMPOSE_FOUND"
fi

if ! getent group docker >/dev/null 2>&1; then
    if [ "$DRY_RUN" -eq 1 ]; then
        say "group docker not found (a real run would stop here)"
    else
        die "there is no group 'docker' owning /var/run/docker.sock; the agent needs one to reach Docker"
    fi
fi

# --- Install the binary ------------------------------------------------------------------

if [ -n "$BINARY" ]; then
    [ -f "$BINARY" ] || die "--binary '$BINARY' is not a file"
    run install -D -m 0755 "$BINARY" "$BIN_PATH"
elif [ -n "$BINARY_URL" ]; then
    command -v curl >/dev/null 2>&1 || die "curl is needed for --binary-url"
    run curl -fsSL --proto '=https,http,file' -o "$BIN_PATH.download" "$BINARY_URL"
    run install -D -m 0755 "$BIN_PATH.download" "$BIN_PATH"
    run rm -f "$BIN_PATH.download"
elif [ -x "$BIN_PATH" ]; then
    say "keeping the installed $BIN_PATH"
else
    die "no wharf-agent binary: there is no public download for it yet. Build it (swift build -c release --product wharf-agent) and run this with --binary /path/to/wharf-agent (or WHARF_AGENT_BINARY=/path), or give --binary-url URL of your own copy"
fi
if [ "$DRY_RUN" -eq 0 ]; then
    "$BIN_PATH" --help >/dev/null 2>&1 || die "$BIN_PATH does not run on this host (wrong architecture, or libzmq5 missing: apt-get install libzmq5)"
fi

# --- User, settings, unit ----------------------------------------------------------------

if id "$USER_NAME" >/dev/null 2>&1; then
    run usermod -a -G docker "$USER_NAME"
else
    run useradd --system --user-group --groups docker --home-dir "$DATA_DIR" --no-create-home \
        --shell /usr/sbin/nologin --comment "Wharf agent" "$USER_NAME"
fi
run install -d -m 0700 -o "$USER_NAME" -g "$USER_NAME" "$DATA_DIR"
# The old enrolment goes, so that the wait below is for the new one.
if [ "$REENROL" -eq 1 ]; then run rm -f "$DATA_DIR/identity.json"; fi

OPTS=''
[ "$EDGE" -eq 1 ] && OPTS='--edge'
[ -n "$CHECKIN" ] && OPTS="$OPTS --checkin-interval $CHECKIN"
[ "$COMPOSE_COMMAND" = docker-compose ] && OPTS="${OPTS# } --compose-command docker-compose"
case "$COMPOSE_COMMAND" in /*) OPTS="${OPTS# } --compose-command $COMPOSE_COMMAND" ;; esac
OPTS="${OPTS# }"

run install -d -m 0755 "/etc/default"
{
    echo "# wharf-agent settings, read by wharf-agent.service. Written by install-agent.sh."
    echo "WHARF_SERVER=$SERVER"
    echo "WHARF_DATA_DIR=$DATA_DIR"
    echo "HOME=$DATA_DIR"
    echo "# Extra flags, e.g. --edge --checkin-interval 60s"
    echo "WHARF_AGENT_OPTS=\"$OPTS\""
    if [ -n "$JOIN" ]; then
        echo "# First start only: install-agent.sh removes it once the agent has enrolled."
        echo "WHARF_JOIN=$JOIN"
    fi
} | write_file "$DEFAULTS_PATH" 0600

run install -d -m 0755 "/etc/systemd/system"
# The unit below is deploy/systemd/wharf-agent.service, with the data dir filled in.
sed "s#/var/lib/wharf-agent#$DATA_DIR#g" <<'UNIT' | write_file "$UNIT_PATH" 0644
[Unit]
Description=Wharf agent (runs compose stacks for wharf-server)
Wants=network-online.target
After=network-online.target docker.service docker.socket containerd.service

[Service]
Type=exec
User=wharf-agent
Group=wharf-agent
SupplementaryGroups=docker
StateDirectory=wharf-agent
StateDirectoryMode=0700
WorkingDirectory=/var/lib/wharf-agent
ReadWritePaths=/var/lib/wharf-agent
Environment=WHARF_DATA_DIR=/var/lib/wharf-agent
Environment=HOME=/var/lib/wharf-agent
Environment=DOCKER_HOST=unix:///var/run/docker.sock
Environment=WHARF_LOG_LEVEL=info
EnvironmentFile=-/etc/default/wharf-agent
ExecStart=/usr/local/bin/wharf-agent $WHARF_AGENT_OPTS
Restart=on-failure
RestartSec=5s
RestartPreventExitStatus=78
KillSignal=SIGTERM
KillMode=mixed
TimeoutStopSec=60s
NoNewPrivileges=yes
CapabilityBoundingSet=
AmbientCapabilities=
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateMounts=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
RemoveIPC=yes
UMask=0077
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources
SystemCallErrorNumber=EPERM

[Install]
WantedBy=multi-user.target
UNIT

run systemctl daemon-reload
if [ "$START" -eq 0 ]; then
    run systemctl enable wharf-agent.service
    say "installed; not started (--no-start). Start it with: systemctl start wharf-agent"
    [ -n "$JOIN" ] && say "it enrols on its first start; then remove WHARF_JOIN from $DEFAULTS_PATH"
    exit 0
fi
run systemctl enable wharf-agent.service
run systemctl restart wharf-agent.service

# --- Wait for the enrolment, then forget the join token ----------------------------------

if [ -n "$JOIN" ]; then
    if [ "$DRY_RUN" -eq 1 ]; then
        printf '+ wait up to %ss for %s\n' "$ENROL_TIMEOUT" "$DATA_DIR/identity.json"
        printf '+ remove WHARF_JOIN from %s; systemctl restart wharf-agent.service\n' "$DEFAULTS_PATH"
    else
        waited=0
        while [ ! -s "$DATA_DIR/identity.json" ]; do
            failed=0
            [ "$waited" -ge "$ENROL_TIMEOUT" ] && failed=1
            # An agent whose enrolment was refused exits; systemd then shows it as not active.
            if [ "$waited" -ge 3 ] && ! systemctl is-active --quiet wharf-agent.service; then failed=1; fi
            if [ "$failed" -eq 1 ]; then
                say "the agent has not enrolled; its log:"
                journalctl -u wharf-agent.service -n 20 --no-pager >&2 || true
                sed '/^WHARF_JOIN=/d' "$DEFAULTS_PATH" | write_file "$DEFAULTS_PATH" 0600
                systemctl stop wharf-agent.service || true
                die "enrolment failed (a join token works once and for 24 hours; ask the server for a new one and run this again)"
            fi
            sleep 1
            waited=$((waited + 1))
        done
        # The join token is spent (it works once); the agent ignores it now that identity.json exists.
        sed '/^WHARF_JOIN=/d' "$DEFAULTS_PATH" | write_file "$DEFAULTS_PATH" 0600
        systemctl restart wharf-agent.service
        say "enrolled with $SERVER (environment $(sed -n 's/.*"environmentId" *: *"\([^"]*\)".*/\1/p' "$DATA_DIR/identity.json"))"
    fi
fi
if [ "$DRY_RUN" -eq 1 ]; then
    say "dry run: nothing was changed"
    exit 0
fi
if [ "$DRY_RUN" -eq 0 ]; then
    sleep 3
    if ! systemctl is-active --quiet wharf-agent.service; then
        journalctl -u wharf-agent.service -n 20 --no-pager >&2 || true
        die "wharf-agent.service is not running; see its log above (systemctl status wharf-agent)"
    fi
fi
say "wharf-agent is running: systemctl status wharf-agent; journalctl -u wharf-agent -f"
