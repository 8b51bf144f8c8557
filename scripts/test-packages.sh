#!/usr/bin/env bash
# Debian packages `make test` drives as real clients: Chromium and its WebDriver (the web
# console's browser tests) and Prometheus (promtool for the chart's rules; the server
# scrapes a running service for the dashboard's and alerts' expressions). Installs only
# what is missing, as root; elsewhere the tests that need a missing one skip and say so.
set -euo pipefail
PACKAGES=(chromium chromium-driver prometheus)
missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "test-packages: not root, not installing ${missing[*]} (their tests will skip)" >&2
  exit 0
fi
echo "test-packages: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The package starts a Prometheus service where an init system runs; tests start their own.
if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
  systemctl disable --now prometheus prometheus-node-exporter 2>/dev/null || true
fi
