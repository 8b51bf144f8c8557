#!/usr/bin/env bash
# Debian packages the real node needs: containerd + runc + CNI plugins, iptables, and the
# image tools (debootstrap for the base rootfs, buildah to build the Dockerfile, podman to
# import and save). Installs only what is missing.
set -euo pipefail
PACKAGES=(containerd runc containernetworking-plugins iptables conntrack debootstrap buildah
          podman skopeo uidmap fuse-overlayfs gcc libc6-dev)
missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "packages: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
