#!/usr/bin/env bash
# A real single-node cluster on this machine: containerd + runc + CNI bridge, etcd,
# kube-apiserver, controller-manager, scheduler, kubelet, kube-proxy and CoreDNS.
#
#   scripts/cluster/node.sh up BIN IMAGES   start it, import IMAGES/*.tar; prints KUBECONFIG
#   scripts/cluster/node.sh down            stop everything up started and undo its changes
#
# Pods live on 10.209.0.0/16 (podman uses 10.88/16) behind the bridge tae2e0 and never leave the machine: the egress
# guard is in place before containerd starts, and the bridge does not masquerade.
# Everything lives under $TEMPAUDIO_E2E_DIR (default /tmp/tempaudio-e2e).
set -euo pipefail
DIR=${TEMPAUDIO_E2E_DIR:-/tmp/tempaudio-e2e}
W=$DIR/k8s
C=$DIR/containerd
BRIDGE=tae2e0
SUBNET=10.209.0.0/16
IP=10.209.0.1
SYSCTLS=(vm.overcommit_memory kernel.panic kernel.panic_on_oops net.ipv4.ip_forward)
log() { echo "[$(date +%T)] node: $*" >&2; }

guard() {  # -I to add, -D to remove: pod traffic stays on the bridge, both ways
  local action=$1
  for rule in "-s $SUBNET ! -o $BRIDGE" "-d $SUBNET ! -i $BRIDGE"; do
    if [ "$action" = -I ]; then
      # shellcheck disable=SC2086
      iptables -t mangle -C FORWARD $rule -j DROP 2>/dev/null \
        || iptables -t mangle -I FORWARD 1 $rule -j DROP
    else
      # shellcheck disable=SC2086
      while iptables -t mangle -D FORWARD $rule -j DROP 2>/dev/null; do :; done
    fi
  done
}

start() {  # name, command...: a background process with its log and pid file
  local name=$1
  shift
  "$@" >"$W/logs/$name.log" 2>&1 &
  echo $! >"$W/$name.pid"
}

up() {
  local bin=$1 images=$2
  mkdir -p "$W"/{certs,logs,kubelet,pod-logs} "$C"/{root,state,etc,log,cni/net.d}
  # The sysctls the kubelet and the bridge plugin change, restored by down.
  [ -f "$DIR/sysctls" ] || sysctl -n "${SYSCTLS[@]}" >"$DIR/sysctls"
  # Another network on the pod subnet (podman's cni-podman0 takes 10.88.0.0/16) would
  # capture the node's traffic to its pods.
  if ip route show to match $IP | grep -v "dev $BRIDGE" | grep -q "${SUBNET%.0.0/16}"; then
    log "another interface routes $SUBNET: $(ip route show to match $IP | grep -v "dev $BRIDGE")"
    exit 1
  fi
  ip link show $BRIDGE >/dev/null 2>&1 || ip link add $BRIDGE type bridge
  ip addr show dev $BRIDGE | grep -q "$IP/16" || ip addr add $IP/16 dev $BRIDGE
  ip link set $BRIDGE up
  guard -I
  log "egress guard in place: pod traffic cannot leave $BRIDGE"

  cat >"$C/etc/config.toml" <<TOML
version = 2
root = "$C/root"
state = "$C/state"
[grpc]
  address = "$C/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/pause:3.10"
  stream_server_address = "127.0.0.1"
  # No CAP_SYS_RESOURCE in this VM: the sandbox's oom_score_adj -998 would be refused.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$C/cni/net.d"
[plugins."io.containerd.internal.v1.opt"]
  path = "$C/opt"
TOML
  cat >"$C/cni/net.d/10-tempaudio.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "tempaudio-e2e", "plugins": [{"type": "bridge",
 "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
 "ipam": {"type": "host-local", "dataDir": "$C/cni/ipam",
  "ranges": [[{"subnet": "$SUBNET", "rangeStart": "10.209.0.10", "gateway": "$IP"}]],
  "routes": [{"dst": "10.96.0.0/16"}]}}]}
JSON
  containerd --config "$C/etc/config.toml" >"$C/log/containerd.log" 2>&1 &
  echo $! >"$C/containerd.pid"
  until ctr -a "$C/containerd.sock" version >/dev/null 2>&1; do sleep 0.2; done
  for archive in "$images"/*.tar; do
    ctr -a "$C/containerd.sock" -n k8s.io images import "$archive" >/dev/null
  done
  log "containerd up, images imported: $(ls "$images" | tr '\n' ' ')"

  cd "$W"
  [ -f sa.key ] || { openssl genrsa -out sa.key 2048 2>/dev/null
                     openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null; }
  [ -f token ] || openssl rand -hex 16 >token
  echo "$(cat token),admin,admin-uid,\"system:masters\"" >tokens.csv
  echo 'nameserver 127.0.0.1' >resolv.conf
  start etcd "$bin/etcd" --data-dir="$W/etcd" --listen-client-urls=http://127.0.0.1:23790 \
    --advertise-client-urls=http://127.0.0.1:23790 --listen-peer-urls=http://127.0.0.1:23800 \
    --initial-advertise-peer-urls=http://127.0.0.1:23800 \
    --initial-cluster=default=http://127.0.0.1:23800 --unsafe-no-fsync --log-level=warn
  start kube-apiserver "$bin/kube-apiserver" --etcd-servers=http://127.0.0.1:23790 \
    --cert-dir="$W/certs" --bind-address=$IP --advertise-address=$IP --secure-port=16443 \
    --token-auth-file="$W/tokens.csv" --authorization-mode=Node,RBAC \
    --service-cluster-ip-range=10.96.0.0/16 \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$W/sa.pub" --service-account-signing-key-file="$W/sa.key" \
    --allow-privileged=true --kubelet-preferred-address-types=InternalIP --v=1
  until [ -f certs/apiserver.crt ] && curl -sf --cacert certs/apiserver.crt \
      -H "Authorization: Bearer $(cat token)" "https://$IP:16443/readyz" >/dev/null; do
    sleep 0.5
  done
  cat >kubeconfig <<KC
apiVersion: v1
kind: Config
clusters: [{name: e2e, cluster: {server: "https://$IP:16443", certificate-authority: $W/certs/apiserver.crt}}]
users: [{name: admin, user: {token: $(cat token)}}]
contexts: [{name: e2e, context: {cluster: e2e, user: admin, namespace: default}}]
current-context: e2e
KC
  local kc=(--kubeconfig="$W/kubeconfig" --authentication-kubeconfig="$W/kubeconfig"
            --authorization-kubeconfig="$W/kubeconfig" --bind-address=127.0.0.1
            --leader-elect=false)
  start kube-controller-manager "$bin/kube-controller-manager" "${kc[@]}" --secure-port=10257 \
    --controllers='*,-nodeipam' --service-account-private-key-file="$W/sa.key" \
    --root-ca-file="$W/certs/apiserver.crt" --v=1
  start kube-scheduler "$bin/kube-scheduler" "${kc[@]}" --secure-port=10259 --v=1
  log "control plane up"

  cat >kubelet-config.yaml <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://$C/containerd.sock
podLogsDir: $W/pod-logs
resolvConf: $W/resolv.conf
clusterDNS: ["$IP"]
clusterDomain: cluster.local
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
evictionHard: {memory.available: 100Mi, nodefs.available: 2%, imagefs.available: 2%}
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
YAML
  start kubelet "$bin/kubelet" --config="$W/kubelet-config.yaml" --kubeconfig="$W/kubeconfig" \
    --root-dir="$W/kubelet" --hostname-override=e2e-node --node-ip=$IP --v=1
  cat >kube-proxy.yaml <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $W/kubeconfig}
mode: iptables
hostnameOverride: e2e-node
clusterCIDR: $SUBNET
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["$IP/32"]
iptables: {localhostNodePorts: false, masqueradeAll: false}
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
YAML
  start kube-proxy "$bin/kube-proxy" --config="$W/kube-proxy.yaml" --v=1
  cat >Corefile <<CF
cluster.local:53 in-addr.arpa:53 {
  bind $IP
  errors
  cache 5
  kubernetes cluster.local in-addr.arpa {
    kubeconfig $W/kubeconfig e2e
    pods insecure
  }
}
CF
  start coredns "$bin/coredns" -conf "$W/Corefile"
  export KUBECONFIG=$W/kubeconfig
  until "$bin/kubectl" wait --for=condition=Ready node/e2e-node --timeout=60s >/dev/null 2>&1; do
    sleep 1
  done
  log "node Ready"
  echo "$W/kubeconfig"
}

stop() {  # SIGTERM, up to 15 s, then SIGKILL; only processes from our own pid files
  local file=$1 pid
  pid=$(cat "$file" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$file"
}

down() {
  set +e
  local bin=${1:-}
  if [ -n "$bin" ] && [ -f "$W/kubeconfig" ] && [ -f "$W/kube-apiserver.pid" ]; then
    # Pods first, so that CNI DEL runs and their network namespaces go.
    KUBECONFIG=$W/kubeconfig "$bin/kubectl" delete pods --all -A --grace-period=1 \
      --timeout=60s >/dev/null 2>&1
  fi
  for name in kube-proxy kubelet coredns kube-scheduler kube-controller-manager \
      kube-apiserver etcd; do
    stop "$W/$name.pid"
  done
  if [ -S "$C/containerd.sock" ]; then
    local ctr=(ctr -a "$C/containerd.sock" -n k8s.io)
    for task in $("${ctr[@]}" tasks ls -q 2>/dev/null); do
      "${ctr[@]}" tasks kill -s KILL "$task" >/dev/null 2>&1; sleep 0.2
      "${ctr[@]}" tasks delete "$task" >/dev/null 2>&1
    done
    for container in $("${ctr[@]}" containers ls -q 2>/dev/null); do
      "${ctr[@]}" containers delete "$container" >/dev/null 2>&1
    done
  fi
  stop "$C/containerd.pid"
  # Processes whose pid file is gone, e.g. a shim after a crash: only ours, by their paths.
  pkill -9 -f "containerd-shim.*$C" 2>/dev/null
  [ -n "$bin" ] && "$bin/kube-proxy" --cleanup >/dev/null 2>&1
  for ipt in iptables ip6tables; do
    $ipt -D INPUT -j KUBE-FIREWALL 2>/dev/null; $ipt -D OUTPUT -j KUBE-FIREWALL 2>/dev/null
    $ipt -F KUBE-FIREWALL 2>/dev/null; $ipt -X KUBE-FIREWALL 2>/dev/null
    for table in mangle filter nat; do $ipt -t $table -X KUBE-KUBELET-CANARY 2>/dev/null; done
    $ipt -t mangle -X KUBE-IPTABLES-HINT 2>/dev/null
  done
  for netns in $(ls /var/run/netns 2>/dev/null | grep '^cni-'); do ip netns delete "$netns"; done
  ip link del $BRIDGE 2>/dev/null
  guard -D
  grep -E " ($W|$C)/" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l
  if [ -f "$DIR/sysctls" ]; then
    paste -d= <(printf '%s\n' "${SYSCTLS[@]}") "$DIR/sysctls" | xargs -r sysctl -q -w
    rm -f "$DIR/sysctls"
  fi
  rm -rf "$W" "$C"
  log "down: processes stopped, rules, bridge, mounts and sysctls restored"
  return 0
}

case ${1:-} in
  up) up "$2" "$3" ;;
  down) down "${2:-}" ;;
  *) echo "usage: $0 up BIN IMAGES | down [BIN]" >&2; exit 2 ;;
esac
