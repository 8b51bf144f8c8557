#!/usr/bin/env bash
# make e2e: a real node on this machine, the image built from the Dockerfile, the chart
# installed, tests/cluster run against running pods, and everything torn down again, even
# when a test fails. Needs root (containerd, iptables, a bridge) and about 1 GB of RAM.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
DIR=${TEMPAUDIO_E2E_DIR:-/tmp/tempaudio-e2e}
export TEMPAUDIO_E2E_DIR=$DIR
log() { echo "[$(date +%T)] e2e: $*"; }
if [ "$(id -u)" != 0 ]; then
  echo "make e2e needs root (containerd, iptables, a bridge); make test skips this tier" >&2
  exit 2
fi
started=$(date +%s)
log "packages"
bash scripts/cluster/packages.sh
log "binaries (etcd, kube-*, kubelet, kubectl, coredns, helm; cached)"
BIN=$(bash scripts/k8s-binaries.sh --node | tail -1)
log "images (pause, and tempaudio from the Dockerfile by buildah)"
bash scripts/cluster/images.sh "$DIR/images"
# Whatever happens from here, the node goes down and the machine is as before.
bash scripts/cluster/node.sh down "$BIN" >/dev/null 2>&1 || true
trap 'log "teardown"; bash scripts/cluster/node.sh down "$BIN"' EXIT
trap 'exit 130' INT TERM
log "node up"
KUBECONFIG=$(bash scripts/cluster/node.sh up "$BIN" "$DIR/images" | tail -1)
log "cluster ready after $(( $(date +%s) - started )) s; running tests/cluster"
status=0
TEMPAUDIO_E2E_KUBECONFIG=$KUBECONFIG TEMPAUDIO_E2E_BIN=$BIN \
  .venv/bin/pytest tests/cluster -p no:cacheprovider -v -o log_cli=true --log-cli-level=INFO \
  || status=$?
log "tests/cluster finished with status $status after $(( $(date +%s) - started )) s in all"
exit $status
