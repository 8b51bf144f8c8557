#!/usr/bin/env bash
# The images the real node runs, as archives containerd imports:
#   pause.tar      the sandbox image, a static pause built from scripts/cluster/pause.c
#   tempaudio.tar  the project image, built from the unchanged Dockerfile by buildah
# The Dockerfile's base (python:3.11-slim-bookworm) is not pullable here: a stand-in is
# debootstrapped once (bookworm + python3.11, and passwd for the Dockerfile's useradd) and
# cached in $CACHE. The stand-in is tagged with the cache's name, so a changed recipe
# replaces it.
# Usage: scripts/cluster/images.sh OUTDIR
set -euo pipefail
OUT=$1
REPO=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${TEMPAUDIO_E2E_CACHE:-$HOME/.cache/tempaudio/e2e}
BASE_TAG=docker.io/library/python:3.11-slim-bookworm
IMAGE=${TEMPAUDIO_E2E_IMAGE:-localhost/tempaudio:e2e}
export CONTAINERS_CONF=$REPO/scripts/cluster/containers.conf
mkdir -p "$OUT" "$CACHE"
log() { echo "[$(date +%T)] images: $*" >&2; }

base_rootfs() {
  local tar=$CACHE/python-3.11-bookworm-rootfs-r2.tar
  [ -f "$tar" ] && { echo "$tar"; return; }
  local root
  root=$(mktemp -d "$CACHE/rootfs.XXXX")
  log "debootstrap bookworm (once; cached in $tar)"
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >/dev/null
  # debootstrap resolves no dependencies for --include: install in the chroot instead.
  chroot "$root" apt-get install -y -qq --no-install-recommends \
    python3.11 python3.11-venv ca-certificates passwd >/dev/null
  chroot "$root" apt-get clean
  for name in python python3 python3.11; do ln -sf /usr/bin/python3.11 "$root/usr/local/bin/$name"; done
  # Where this machine reaches PyPI through a TLS-intercepting proxy, pip in the build
  # needs its CA bundle. Only this test stand-in carries it, never a published image.
  if [ -n "${SSL_CERT_FILE:-}" ] && [ -f "$SSL_CERT_FILE" ]; then
    cp "$SSL_CERT_FILE" "$root/etc/ssl/certs/build-ca.crt"
    printf '[global]\ncert = /etc/ssl/certs/build-ca.crt\n' >"$root/etc/pip.conf"
  fi
  tar -C "$root" -cf "$tar.part" .
  mv "$tar.part" "$tar"
  rm -rf "$root"
  echo "$tar"
}

pause_image() {
  local work
  work=$(mktemp -d)
  gcc -static -O2 -o "$work/pause" "$REPO/scripts/cluster/pause.c"
  local container
  container=$(buildah from scratch)
  buildah copy "$container" "$work/pause" /pause >/dev/null
  buildah config --entrypoint '["/pause"]' "$container"
  buildah commit -q "$container" localhost/pause:3.10 >/dev/null
  buildah rm "$container" >/dev/null
  rm -rf "$work"
  buildah push -q localhost/pause:3.10 "docker-archive:$OUT/pause.tar:localhost/pause:3.10"
}

started=$(date +%s)
tar=$(base_rootfs)
stamp="$(basename "$tar" .tar)-import2"
if [ "$(podman image inspect -f '{{index .Labels "tempaudio.stand-in"}}' "$BASE_TAG" 2>/dev/null)" != "$stamp" ]; then
  log "importing the base stand-in as $BASE_TAG"
  # The official image's PATH (the Dockerfile's useradd lives in /usr/sbin).
  podman import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "LABEL tempaudio.stand-in=$stamp" "$tar" "$BASE_TAG" >/dev/null
fi
rm -f "$OUT/pause.tar" "$OUT/tempaudio.tar"
pause_image
log "building $IMAGE from the Dockerfile"
buildah bud -q --pull-never --network host --isolation oci -t "$IMAGE" "$REPO" >/dev/null
buildah push -q "$IMAGE" "docker-archive:$OUT/tempaudio.tar:$IMAGE"
log "done in $(( $(date +%s) - started )) s: $(du -h "$OUT/tempaudio.tar" | cut -f1) image"
