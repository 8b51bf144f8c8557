#!/usr/bin/env bash
# Build the real control plane used by the tests (etcd, kube-apiserver,
# kube-controller-manager) and helm from Go modules through the module proxy,
# and cache them outside the repo so one machine builds them once.
#
# Usage: scripts/k8s-binaries.sh            # prints the directory holding the binaries
#        scripts/k8s-binaries.sh --node     # also kubelet, kube-scheduler, kube-proxy, kubectl
#                                           # and CoreDNS, for the real node (make e2e)
# Env:   TEMPAUDIO_K8S_CACHE (default ~/.cache/tempaudio/k8s)
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-1.34.4}
ETCD_VERSION=${ETCD_VERSION:-3.6.16}
HELM_VERSION=${HELM_VERSION:-3.21.4}
COREDNS_VERSION=${COREDNS_VERSION:-1.14.7}
NODE=false
[ "${1:-}" = "--node" ] && NODE=true
REPO=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${TEMPAUDIO_K8S_CACHE:-$HOME/.cache/tempaudio/k8s}
BIN="$CACHE/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-helm-$HELM_VERSION-r3"
export GOFLAGS="${GOFLAGS:-} -trimpath"
export CGO_ENABLED=0

log() { echo "k8s-binaries: $*" >&2; }

build_kubernetes() {
  local work="$CACHE/src/kubernetes-$K8S_VERSION"
  mkdir -p "$work"
  cd "$work"
  if [ ! -f go.mod ]; then
    go mod init tempaudio.local/k8s-wrapper >/dev/null 2>&1
    # k8s.io/kubernetes replaces its staging modules with local paths; a wrapper
    # module must point each at the matching published v0.x release instead.
    local gomod
    gomod=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    {
      echo "require k8s.io/kubernetes v$K8S_VERSION"
      echo "replace ("
      grep -E '^\s*k8s\.io/[a-z0-9./-]+ => \./staging/' "$gomod" \
        | awk -v v="v0.${K8S_VERSION#1.}" '{print "\t" $1 " => " $1 " " v}'
      echo ")"
    } >>go.mod
  fi
  local commands=(kube-apiserver kube-controller-manager)
  local node_commands=(kubelet kube-scheduler kube-proxy kubectl)
  $NODE && commands+=("${node_commands[@]}")
  # Every command either mode may build is imported here, whatever this run builds, so
  # that tools.go and go.sum are the same in both modes and one never rewrites the other's.
  local tools
  tools=$(printf '//go:build tools\n\npackage tools\n\nimport (\n'
          printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' kube-apiserver kube-controller-manager \
            "${node_commands[@]}"
          printf ')\n')
  if [ "$(cat tools.go 2>/dev/null)" != "$tools" ]; then
    echo "$tools" >tools.go
    go mod tidy >/dev/null
  fi
  for cmd in "${commands[@]}"; do
    [ -x "$BIN/$cmd" ] && continue
    log "building $cmd v$K8S_VERSION (takes a while on 2 cores)"
    # Stamp the version the way Kubernetes' own build does; helm and clients read it.
    local minor=${K8S_VERSION#1.}
    minor=${minor%%.*}
    go build -o "$BIN/$cmd" -ldflags "\
      -X k8s.io/component-base/version.gitVersion=v$K8S_VERSION \
      -X k8s.io/component-base/version.gitMajor=1 \
      -X k8s.io/component-base/version.gitMinor=$minor \
      -X k8s.io/component-base/version.gitTreeState=clean" \
      "k8s.io/kubernetes/cmd/$cmd"
  done
}

build_etcd() {
  [ -x "$BIN/etcd" ] && return
  local work="$CACHE/src/etcd-$ETCD_VERSION"
  mkdir -p "$work"
  cd "$work"
  if [ ! -f go.mod ]; then
    go mod init tempaudio.local/etcd-wrapper >/dev/null 2>&1
    go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" >/dev/null 2>&1
    printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >tools.go
    go mod tidy >/dev/null
  fi
  log "building etcd v$ETCD_VERSION"
  go build -o "$BIN/etcd" go.etcd.io/etcd/server/v3
}

build_helm() {
  [ -x "$BIN/helm" ] && return
  log "building helm v$HELM_VERSION"
  # As helm's Makefile does: its version, and the Kubernetes version `helm template` and
  # `helm lint` assume when no cluster is asked.
  local minor=${K8S_VERSION#1.}
  minor=${minor%%.*}
  GOBIN="$BIN" go install -ldflags "\
    -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor \
    -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 \
    -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor" \
    "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION"
}

build_coredns() {
  [ -x "$BIN/coredns" ] && return
  local work="$CACHE/src/coredns-$COREDNS_VERSION"
  mkdir -p "$work"
  cd "$work"
  # Only the plugins a test cluster's DNS needs (scripts/cluster/coredns.go).
  cp "$REPO/scripts/cluster/coredns.go" main.go
  if [ ! -f go.mod ]; then
    go mod init tempaudio.local/coredns >/dev/null 2>&1
    go get "github.com/coredns/coredns@v$COREDNS_VERSION" >/dev/null 2>&1
    go mod tidy >/dev/null
  fi
  log "building coredns v$COREDNS_VERSION"
  go build -o "$BIN/coredns" .
}

mkdir -p "$BIN"
# One build at a time per cache: the tests' control plane and `make e2e` may ask at once,
# and they share the module wrappers and the binaries. The second waits for the first,
# then finds its binaries built.
exec 9>"$CACHE/.build.lock"
if ! flock -w 3600 9; then
  log "another build has held $CACHE/.build.lock for an hour; giving up"
  exit 1
fi
(build_etcd)
(build_kubernetes)
(build_helm)
if $NODE; then (build_coredns); fi
echo "$BIN"
