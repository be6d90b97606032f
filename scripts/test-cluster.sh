#!/usr/bin/env bash
# The local control plane the end-to-end tests and `make run` use (DESIGN.md, "The cluster we
# test against"): etcd from Debian, kube-apiserver and kube-controller-manager v1.20.2 built
# once from Debian's kubernetes source package and cached, all on 127.0.0.1 with TLS and a
# static bearer token.
#
#   scripts/test-cluster.sh build   build (or find) the cached binaries
#   scripts/test-cluster.sh up      start etcd, apiserver, controller-manager; write kubeconfig
#   scripts/test-cluster.sh down    stop them and remove the state directory
#   scripts/test-cluster.sh env     print `export KUBECONFIG=...` for a running cluster
#   scripts/test-cluster.sh install the stand-in VM, VMI and DataVolume CRDs (tests/crds) and
#                                   the standalone install without its Deployment (make run,
#                                   scripts/hot-order.sh: vmpoold runs here, not in a pod)
#   scripts/test-cluster.sh restart-controller-manager   (after installing CRDs)
#   scripts/test-cluster.sh restart-apiserver    SIGTERM the apiserver, start it again, wait ready
#
# Environment: VMPOOLD_CLUSTER_DIR (state, default /tmp/vmpoold-cluster-$UID),
# VMPOOLD_CLUSTER_PORT (apiserver port, default 6443), VMPOOLD_CACHE (binary cache,
# default ${XDG_CACHE_HOME:-~/.cache}/vmpoold).
set -euo pipefail

K8S_VERSION=1.20.2
cache=${VMPOOLD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vmpoold}
bindir=$cache/k8s-$K8S_VERSION
dir=${VMPOOLD_CLUSTER_DIR:-/tmp/vmpoold-cluster-$(id -u)}
port=${VMPOOLD_CLUSTER_PORT:-6443}
etcd_port=$((port + 10000))
etcd_peer=$((port + 10001))
token_user=vmpoold-admin
here=$(cd "$(dirname "$0")" && pwd)

log() { printf 'test-cluster: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# enable_deb_src, shared with build-curl.sh
# shellcheck source=scripts/debsrc.sh
. "$here/debsrc.sh"

build() {
  if [ -x "$bindir/kube-apiserver" ] && [ -x "$bindir/kube-controller-manager" ]; then
    return 0
  fi
  command -v go >/dev/null || die "go is missing: run scripts/install-deps.sh"
  [ -d /usr/share/gocode/src/github.com/modern-go/reflect2 ] ||
    die "golang-github-modern-go-reflect2-dev is missing: run scripts/install-deps.sh"
  enable_deb_src
  local work
  work=$(mktemp -d "${TMPDIR:-/tmp}/vmpoold-k8s.XXXXXX")
  log "building kube-apiserver and kube-controller-manager $K8S_VERSION in $work (once per machine, a few minutes)"
  (
    cd "$work"
    apt-get source -qq kubernetes >/dev/null 2>&1 || die "apt-get source kubernetes failed"
    src=$(find . -maxdepth 1 -type d -name 'kubernetes-*' | head -1)
    [ -n "$src" ] || die "no kubernetes source directory after apt-get source"
    cd "$src"
    # reflect2 1.0.1 crashes the apiserver under Go >= 1.18: use Debian's 1.0.2
    rm -rf vendor/github.com/modern-go/reflect2
    cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 vendor/github.com/modern-go/reflect2
    mkdir -p .go/src/k8s.io
    ln -sfn ../../.. .go/src/k8s.io/kubernetes
    GOPATH=$PWD/.go GO111MODULE=off CGO_ENABLED=0 GOFLAGS= \
      make WHAT="cmd/kube-apiserver cmd/kube-controller-manager" >"$work/build.log" 2>&1 ||
      { tail -30 "$work/build.log" >&2; die "kubernetes build failed (log: $work/build.log)"; }
    mkdir -p "$bindir.tmp"
    cp _output/bin/kube-apiserver _output/bin/kube-controller-manager "$bindir.tmp/"
  )
  rm -rf "$bindir"
  mv "$bindir.tmp" "$bindir"
  rm -rf "$work"
  log "cached in $bindir"
}

wait_ready() {
  local i
  for i in $(seq 1 120); do
    if curl -sk --max-time 2 -H "Authorization: Bearer $(cat "$dir/token")" \
        "https://127.0.0.1:$port/readyz" 2>/dev/null | grep -q '^ok'; then
      return 0
    fi
    sleep 0.5
  done
  return 1
}

certs() {
  cd "$dir"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=vmpoold-test-ca" \
    -keyout ca.key -out ca.crt >/dev/null 2>&1
  openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
    -keyout apiserver.key -out apiserver.csr >/dev/null 2>&1
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n' >san.ext
  openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
    -extfile san.ext -out apiserver.crt >/dev/null 2>&1
  # service-account signing key
  openssl genrsa -out sa.key 2048 >/dev/null 2>&1
  openssl rsa -in sa.key -pubout -out sa.pub >/dev/null 2>&1
  # audit every write (metadata only) so tests can tell exactly who wrote what, and when
  cat >audit-policy.yaml <<POLICY
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  verbs: [create, update, patch, delete, deletecollection]
- level: None
POLICY
  head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >token
  printf '%s,%s,%s,"system:masters"\n' "$(cat token)" "$token_user" "$token_user" >tokens.csv
  # a second identity, for tests of credential rotation (an exec plugin moving from one
  # token to the other); the kubeconfig uses the first
  head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >token2
  printf '%s,%s2,%s2,"system:masters"\n' "$(cat token2)" "$token_user" "$token_user" >>tokens.csv
}

kubeconfig() {
  local file=$1 server=https://127.0.0.1:$port
  cat >"$file" <<KC
apiVersion: v1
kind: Config
clusters:
- name: vmpoold-test
  cluster:
    server: $server
    certificate-authority: $dir/ca.crt
users:
- name: $token_user
  user:
    token: $(cat "$dir/token")
contexts:
- name: vmpoold-test
  context:
    cluster: vmpoold-test
    user: $token_user
    namespace: default
current-context: vmpoold-test
KC
}

# kube-controller-manager: garbage collector, HPA, namespaces. Restarted by tests after they
# install CRDs, so that the garbage collector knows the new resources at once instead of after
# its next discovery resync.
start_controller_manager() {
  log "starting kube-controller-manager (garbage collector, HPA)"
  setsid "$bindir/kube-controller-manager" \
    --kubeconfig "$dir/kubeconfig" --bind-address 127.0.0.1 --secure-port 0 --port 0 \
    --leader-elect=false --use-service-account-credentials=false \
    --controllers garbagecollector,horizontalpodautoscaling,namespace,serviceaccount-token \
    --service-account-private-key-file "$dir/sa.key" --root-ca-file "$dir/ca.crt" \
    --horizontal-pod-autoscaler-sync-period 5s \
    --concurrent-gc-syncs 20 --logtostderr=true --v=0 \
    >"$dir/controller-manager.log" 2>&1 </dev/null &
  echo $! >"$dir/controller-manager.pid"
}

# stop_component NAME SECONDS: SIGTERM the component of $dir/NAME.pid, SIGKILL after SECONDS
stop_component() {
  [ -f "$dir/$1.pid" ] || return 0
  local pid; pid=$(cat "$dir/$1.pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 $(($2 * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

restart_controller_manager() {
  [ -f "$dir/controller-manager.pid" ] || die "no cluster in $dir"
  stop_component controller-manager 5
  start_controller_manager
}

start_apiserver() {
  log "starting kube-apiserver on https://127.0.0.1:$port"
  setsid "$bindir/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$port" \
    --tls-cert-file "$dir/apiserver.crt" --tls-private-key-file "$dir/apiserver.key" \
    --client-ca-file "$dir/ca.crt" \
    --token-auth-file "$dir/tokens.csv" --authorization-mode RBAC \
    --service-account-key-file "$dir/sa.pub" --service-account-signing-key-file "$dir/sa.key" \
    --service-account-issuer https://kubernetes.default.svc \
    --service-cluster-ip-range 10.96.0.0/24 \
    --enable-admission-plugins NamespaceLifecycle,ServiceAccount \
    --disable-admission-plugins StorageObjectInUseProtection,PersistentVolumeClaimResize,DefaultStorageClass,DefaultTolerationSeconds,MutatingAdmissionWebhook,ValidatingAdmissionWebhook \
    --max-requests-inflight 800 --max-mutating-requests-inflight 400 \
    --audit-policy-file "$dir/audit-policy.yaml" --audit-log-path "$dir/audit.log" \
    --allow-privileged=false --logtostderr=true --v=0 \
    >>"$dir/apiserver.log" 2>&1 </dev/null &
  echo $! >"$dir/apiserver.pid"
}

# stop the apiserver (SIGTERM, as a rolling update does), start it again, wait until ready
restart_apiserver() {
  [ -f "$dir/apiserver.pid" ] || die "no cluster in $dir"
  stop_component apiserver 10
  start_apiserver
  wait_ready || { tail -20 "$dir/apiserver.log" >&2; die "kube-apiserver did not become ready"; }
}

up() {
  build
  if [ -f "$dir/apiserver.pid" ] && kill -0 "$(cat "$dir/apiserver.pid")" 2>/dev/null; then
    log "already running ($dir)"
    return 0
  fi
  command -v etcd >/dev/null || [ -x /usr/bin/etcd ] || die "etcd is missing: run scripts/install-deps.sh"
  rm -rf "$dir"; mkdir -p "$dir"; chmod 700 "$dir"
  (certs)
  log "starting etcd on 127.0.0.1:$etcd_port"
  ETCD_UNSUPPORTED_ARCH=${ETCD_UNSUPPORTED_ARCH:-} setsid etcd --name vmpoold-test --data-dir "$dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-cluster "vmpoold-test=http://127.0.0.1:$etcd_peer" \
    --unsafe-no-fsync --quota-backend-bytes 4294967296 \
    >"$dir/etcd.log" 2>&1 </dev/null &
  echo $! >"$dir/etcd.pid"
  start_apiserver
  wait_ready || { tail -20 "$dir/apiserver.log" >&2; die "kube-apiserver did not become ready"; }
  kubeconfig "$dir/kubeconfig"
  start_controller_manager
  log "up: export KUBECONFIG=$dir/kubeconfig"
}

down() {
  local p
  for p in controller-manager apiserver etcd; do
    if [ -f "$dir/$p.pid" ]; then
      kill "$(cat "$dir/$p.pid")" 2>/dev/null || true
    fi
  done
  for p in controller-manager apiserver etcd; do stop_component "$p" 5; done
  rm -rf "$dir"
}

# the stand-in CRDs, then our VirtualMachinePool CRD, namespace, ServiceAccount and RBAC,
# until the pool CRD is served
install() {
  [ -f "$dir/kubeconfig" ] || die "no cluster in $dir: run $0 up"
  local root=$here/.. k=(kubectl --kubeconfig "$dir/kubeconfig")
  "${k[@]}" apply -f "$root/tests/crds/kubevirt-minimal.yaml" -f "$root/tests/crds/datavolume-minimal.yaml" \
    >/dev/null || die "cannot install the stand-in CRDs"
  "${k[@]}" apply -k "$root/deploy/standalone/" -l 'app.kubernetes.io/component!=controller' >/dev/null 2>&1 ||
    die "cannot apply deploy/standalone"
  "${k[@]}" wait --for condition=established --timeout=60s crd/virtualmachinepools.pool.kubevirt.io >/dev/null ||
    die "the VirtualMachinePool CRD is not served"
}

case "${1:-}" in
  build) build ;;
  install) install ;;
  up) up ;;
  down) down ;;
  restart-controller-manager) restart_controller_manager ;;
  restart-apiserver) restart_apiserver ;;
  env)
    [ -f "$dir/kubeconfig" ] || die "no cluster in $dir: run $0 up"
    echo "export KUBECONFIG=$dir/kubeconfig" ;;
  *) echo "usage: $0 build|up|down|env|install|restart-controller-manager|restart-apiserver" >&2; exit 2 ;;
esac
