#!/usr/bin/env bash
# Build a tiny busybox image (no Docker Hub needed), tag it REF and push it.
#
#   scripts/make-test-image.sh REF CONTENT [MODE]
#
#   REF      e.g. 127.0.0.1:PORT/demo/web:v1 (a registry of scripts/testenv.sh)
#   CONTENT  body of /www/index.html, served at http://127.0.0.1:$PORT/
#   MODE     serve     (default) busybox httpd on 127.0.0.1:${PORT:-8080}
#            crash     the container exits 1 at once
#            unhealthy serves, but its HEALTHCHECK always fails (1s interval, 2 retries)
#            healthy   serves, and its HEALTHCHECK (wget of /) passes (1s interval)
#
# The container listens on 127.0.0.1, so run it with host networking
# (`--network host`, compose `network_mode: host`) and pick PORT per test.
# It stops at once on SIGTERM.
#
# Uses DOCKER_HOST (else WHARF_TEST_DOCKER_HOST) from the environment. When REF
# is on WHARF_TEST_AUTH_REGISTRY, it logs in with WHARF_TEST_AUTH_USER /
# WHARF_TEST_AUTH_PASSWORD in a throw-away DOCKER_CONFIG for the push.
# Prints REF on stdout; everything else goes to stderr.
set -euo pipefail

die() { echo "make-test-image: $*" >&2; exit 1; }

[ $# -ge 2 ] && [ $# -le 3 ] || { sed -n '2,14p' "$0" >&2; exit 2; }
REF="$1"
CONTENT="$2"
MODE="${3:-serve}"

BUSYBOX="${WHARF_TEST_BUSYBOX:-/bin/busybox}"
[ -x "$BUSYBOX" ] || die "$BUSYBOX not found (install busybox-static)"
ldd_out="$(ldd "$BUSYBOX" 2>&1 || true)"
[[ "$ldd_out" == *"not a dynamic"* || "$ldd_out" == *"statically linked"* ]] || die "$BUSYBOX is not statically linked (install busybox-static)"

if [ -z "${DOCKER_HOST:-}" ] && [ -n "${WHARF_TEST_DOCKER_HOST:-}" ]; then
    export DOCKER_HOST="$WHARF_TEST_DOCKER_HOST"
fi

SERVE='trap "exit 0" TERM INT; /bin/httpd -f -p 127.0.0.1:${PORT:-8080} -h /www & wait'
CHANGES=()
case "$MODE" in
    serve)
        CHANGES+=(--change "CMD [\"/bin/sh\", \"-c\", \"${SERVE//\"/\\\"}\"]")
        ;;
    crash)
        CHANGES+=(--change 'CMD ["/bin/sh", "-c", "echo \"wharf test image: crashing on purpose\" >&2; exit 1"]')
        ;;
    unhealthy)
        CHANGES+=(--change "CMD [\"/bin/sh\", \"-c\", \"${SERVE//\"/\\\"}\"]")
        CHANGES+=(--change 'HEALTHCHECK --interval=1s --timeout=1s --retries=2 CMD ["/bin/false"]')
        ;;
    healthy)
        CHANGES+=(--change "CMD [\"/bin/sh\", \"-c\", \"${SERVE//\"/\\\"}\"]")
        CHANGES+=(--change 'HEALTHCHECK --interval=1s --timeout=1s --retries=3 CMD /bin/wget -q -O /dev/null http://127.0.0.1:${PORT:-8080}/')
        ;;
    *) die "unknown MODE '$MODE' (serve, crash, unhealthy or healthy)" ;;
esac
CHANGES+=(--change "LABEL org.wharf.test.mode=$MODE")

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

ROOTFS="$TMP/rootfs"
mkdir -p "$ROOTFS/bin" "$ROOTFS/www" "$ROOTFS/tmp" "$ROOTFS/etc"
chmod 1777 "$ROOTFS/tmp"
cp "$BUSYBOX" "$ROOTFS/bin/busybox"
for applet in sh httpd wget cat sleep true false echo env ls ps kill; do
    ln -s busybox "$ROOTFS/bin/$applet"
done
printf '%s\n' "$CONTENT" >"$ROOTFS/www/index.html"
echo 'root:x:0:0:root:/:/bin/sh' >"$ROOTFS/etc/passwd"
echo 'root:x:0:' >"$ROOTFS/etc/group"

tar -C "$ROOTFS" --numeric-owner --owner=0 --group=0 -c . \
    | docker import "${CHANGES[@]}" - "$REF" >"$TMP/import.log" 2>&1 \
    || { cat "$TMP/import.log" >&2; die "docker import failed"; }

# Push (with a throw-away login for the test auth registry).
registry="${REF%%/*}"
if [ -n "${WHARF_TEST_AUTH_REGISTRY:-}" ] && [ "$registry" = "$WHARF_TEST_AUTH_REGISTRY" ] \
    && [ -n "${WHARF_TEST_AUTH_PASSWORD:-}" ]; then
    export DOCKER_CONFIG="$TMP/docker-config"
    mkdir -p "$DOCKER_CONFIG"
    printf '%s' "$WHARF_TEST_AUTH_PASSWORD" \
        | docker login -u "${WHARF_TEST_AUTH_USER:-wharf}" --password-stdin "$registry" >"$TMP/login.log" 2>&1 \
        || { cat "$TMP/login.log" >&2; die "docker login $registry failed"; }
fi
docker push "$REF" >"$TMP/push.log" 2>&1 || { cat "$TMP/push.log" >&2; die "docker push $REF failed"; }

echo "$REF"
