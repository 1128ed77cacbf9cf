#!/usr/bin/env bash
# Starts the single-node cluster: builds (or takes from the cache) every program, makes the node's network
# namespace and a private mount namespace, starts etcd, the control plane, containerd, the kubelet and
# kube-proxy inside them, forwards the API server to the host's loopback, and deploys CoreDNS, the
# NetworkPolicy enforcer and the PVC provisioner. Nothing is added to the host's routes or firewall.
#
#   tools/cluster/up.sh      # then: kubectl --kubeconfig build/cluster/kubeconfig get nodes
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tools/cluster/lib.sh
. "$here/lib.sh"
# shellcheck source=tools/cluster/pki.sh
. "$here/pki.sh"

log() { echo "cluster: $*" >&2; }
fail() {
	log "$*"
	log "what was started stays for inspection: make cluster-down removes it"
	exit 1
}
trap 'log "failed at tools/cluster/up.sh line $LINENO (logs in $CLUSTER_OUT/logs); make cluster-down removes what was started"' ERR
[ "$(id -u)" = 0 ] || fail "needs root (network namespaces, mounts, cgroups)"

if [ -f "$CLUSTER_RUN/pids/holder" ] && kill -0 "$(cat "$CLUSTER_RUN/pids/holder")" 2>/dev/null; then
	log "already running (make cluster-down stops it); kubeconfig: $KUBECONFIG_ADMIN"
	exit 0
fi
ip netns list | grep -qw "^$NETNS" && fail "network namespace $NETNS exists but nothing runs: make cluster-down first"

started=$(date +%s)
bin="$("$here/build.sh")/bin"
images="$(dirname "$bin")/images"
# discovery cache in build/cluster, not in ~/.kube
kubectl() { "$bin/kubectl" --kubeconfig "$KUBECONFIG_ADMIN" --cache-dir "$CLUSTER_OUT/kube-cache" "$@"; }

mkdir -p "$CLUSTER_RUN/pids" "$CLUSTER_OUT/logs" "$CLUSTER_STATE"
ln -sfn "$bin/kubectl" "$CLUSTER_OUT/kubectl"  # the matching kubectl, for people and tests
rm -rf "${CLUSTER_STATE:?}"/{etcd,kubelet,pki,volumes,cni,pod-logs,private}
mkdir -p "$CLUSTER_STATE/volumes" "$CLUSTER_STATE/cni/net.d" "$CLUSTER_STATE/containerd"

# kernel-wide settings the kubelet changes: kept for cluster-down
for key in $KUBELET_SYSCTLS; do echo "$key=$(sysctl -n "$key")"; done > "$CLUSTER_RUN/sysctls.saved"

pki_create

# The node's network: a namespace with loopback and one bridge holding the node's address; pods hang off
# the CNI bridge inside it. No link to the host's namespace exists.
ip netns add "$NETNS"
node_net() { ip netns exec "$NETNS" "$@"; }
node_net ip link set lo up
node_net ip link add "$NODE_BRIDGE" type bridge
node_net ip addr add "$NODE_IP/24" dev "$NODE_BRIDGE"
node_net ip link set "$NODE_BRIDGE" up
node_net ip route add default dev "$NODE_BRIDGE"
node_net sysctl -q -w net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1

# A mount namespace for the node (mounts made by containerd and the kubelet stay in it and vanish with it);
# it receives the host's mounts but sends none back.
nsenter --net="/run/netns/$NETNS" -- unshare --mount --propagation slave -- sleep infinity \
	</dev/null >/dev/null 2>&1 &
echo $! > "$CLUSTER_RUN/pids/holder"
for _ in $(seq 50); do
	[ "$(readlink "/proc/$(cat "$CLUSTER_RUN/pids/holder")/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ] && break
	sleep 0.1
done

# Paths that containerd (shim sockets), runc and the kubelet (device plugins, log links) use whatever their
# settings say are private folders of the node's mount namespace; only their empty mount points, which
# cluster-down removes when it made them, appear on the host.
for path in $NODE_PRIVATE_PATHS; do
	[ -e "$path" ] || echo "$path" >> "$CLUSTER_RUN/host-paths-made"
	mkdir -p "$path" "$CLUSTER_STATE/private$path"
	in_node mount --bind "$CLUSTER_STATE/private$path" "$path"
done

# start NAME CMD...: run CMD inside the node, log to build/cluster/logs/NAME.log
start() {
	local name=$1
	shift
	# nsenter execs the program: the recorded pid is the program's
	nsenter --mount="/proc/$(cat "$CLUSTER_RUN/pids/holder")/ns/mnt" --net="/run/netns/$NETNS" -- "$@" \
		</dev/null >"$CLUSTER_OUT/logs/$name.log" 2>&1 &
	echo $! > "$CLUSTER_RUN/pids/$name"
}
# wait_for WHAT SECONDS CMD...: retry CMD until it succeeds
wait_for() {
	local what=$1 seconds=$2
	shift 2
	for _ in $(seq $((seconds * 2))); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	fail "$what not ready after ${seconds}s (logs in $CLUSTER_OUT/logs)"
}

pki=$CLUSTER_STATE/pki
start etcd "$bin/etcd" --name node --data-dir "$CLUSTER_STATE/etcd" \
	--listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
	--listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
	--initial-cluster node=http://127.0.0.1:2380
start kube-apiserver "$bin/kube-apiserver" --etcd-servers http://127.0.0.1:2379 \
	--advertise-address "$NODE_IP" --bind-address 0.0.0.0 --secure-port 6443 \
	--service-cluster-ip-range "$SERVICE_CIDR" --allow-privileged=true \
	--authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
	--client-ca-file "$pki/ca.crt" --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
	--kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" \
	--kubelet-client-key "$pki/apiserver-kubelet-client.key" --kubelet-certificate-authority "$pki/ca.crt" \
	--kubelet-preferred-address-types InternalIP \
	--service-account-issuer https://kubernetes.default.svc.cluster.local \
	--service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key"
"$bin/nsforward" -listen "127.0.0.1:$CLUSTER_API_PORT" -netns "/run/netns/$NETNS" -to 127.0.0.1:6443 \
	</dev/null >"$CLUSTER_OUT/logs/nsforward.log" 2>&1 &
echo $! > "$CLUSTER_RUN/pids/nsforward"
wait_for "the API server" 120 kubectl get --raw /readyz
log "API server ready after $(($(date +%s) - started))s"

start kube-controller-manager "$bin/kube-controller-manager" --kubeconfig "$pki/controller-manager.kubeconfig" \
	--leader-elect=false --use-service-account-credentials --root-ca-file "$pki/ca.crt" \
	--service-account-private-key-file "$pki/sa.key" --service-cluster-ip-range "$SERVICE_CIDR" \
	--allocate-node-cidrs --cluster-cidr "$POD_CIDR" --node-cidr-mask-size 24
start kube-scheduler "$bin/kube-scheduler" --kubeconfig "$pki/scheduler.kubeconfig" --leader-elect=false

# containerd (Debian's) with its own root, state and socket, runc, cgroupfs, and our sandbox image
containerd_sock=$CLUSTER_RUN/containerd/containerd.sock
mkdir -p "$CLUSTER_RUN/containerd"
sed -e "s|@STATE@|$CLUSTER_STATE|g; s|@RUN@|$CLUSTER_RUN|g; s|@PAUSE_IMAGE@|$PAUSE_IMAGE|g" \
	"$here/config/containerd.toml" > "$CLUSTER_RUN/containerd/config.toml"
sed -e "s|@STATE@|$CLUSTER_STATE|g; s|@POD_CIDR@|$POD_CIDR|g" \
	"$here/config/cni.conflist" > "$CLUSTER_STATE/cni/net.d/10-pods.conflist"
start containerd containerd --config "$CLUSTER_RUN/containerd/config.toml"
wait_for containerd 30 in_node ctr --address "$containerd_sock" version
for archive in "$images"/*.tar; do
	in_node ctr --address "$containerd_sock" -n k8s.io images import "$archive" >/dev/null
done

# the kubelet's pods live under their own cgroup, removed by cluster-down
for hierarchy in /sys/fs/cgroup/*/; do
	[ -e "$hierarchy/cgroup.procs" ] && mkdir -p "$hierarchy/physlite-cluster"
done
echo "# no upstream resolvers: nothing leaves this machine" > "$CLUSTER_RUN/resolv.conf"
sed -e "s|@PKI@|$pki|g; s|@DNS@|$DNS_SERVICE_IP|g; s|@SOCK@|$containerd_sock|g; s|@RUN@|$CLUSTER_RUN|g" \
	-e "s|@STATE@|$CLUSTER_STATE|g" "$here/config/kubelet.yaml" > "$CLUSTER_RUN/kubelet.yaml"
start kubelet "$bin/kubelet" --config "$CLUSTER_RUN/kubelet.yaml" --kubeconfig "$pki/kubelet.kubeconfig" \
	--root-dir "$CLUSTER_STATE/kubelet" --hostname-override "$NODE_NAME" --node-ip "$NODE_IP"
sed -e "s|@PKI@|$pki|g; s|@POD_CIDR@|$POD_CIDR|g; s|@NODE@|$NODE_NAME|g" \
	"$here/config/kube-proxy.yaml" > "$CLUSTER_RUN/kube-proxy.yaml"
start kube-proxy "$bin/kube-proxy" --config "$CLUSTER_RUN/kube-proxy.yaml"
wait_for "the node" 120 kubectl wait --for condition=Ready --timeout 1s "node/$NODE_NAME"
log "node Ready after $(($(date +%s) - started))s"

# the add-ons, with the images built here
for manifest in "$here"/manifests/*.yaml; do
	sed -e "s|@COREDNS_IMAGE@|$COREDNS_IMAGE|g" -e "s|@LOCAL_PATH_IMAGE@|$LOCAL_PATH_IMAGE|g; s|@BUSYBOX_IMAGE@|$BUSYBOX_IMAGE|g" \
		-e "s|@DNS@|$DNS_SERVICE_IP|g; s|@NODE@|$NODE_NAME|g; s|@VOLUMES@|$CLUSTER_STATE/volumes|g" "$manifest"
	echo "---"
done | kubectl apply -f - >/dev/null
kubectl -n kube-system rollout status deployment/coredns --timeout 180s >/dev/null
# the NetworkPolicy firewall: kube-router with only its firewall (no routing, no service proxy, no CNI)
start kube-router "$bin/kube-router" --kubeconfig "$pki/kube-router.kubeconfig" --hostname-override "$NODE_NAME" \
	--run-firewall=true --run-router=false --run-service-proxy=false --enable-cni=false \
	--service-cluster-ip-range "$SERVICE_CIDR" --metrics-port 0 --health-port 20244
wait_for "kube-router's firewall" 60 node_net iptables -S KUBE-ROUTER-FORWARD
kubectl -n local-path-storage rollout status deployment/local-path-provisioner --timeout 180s >/dev/null

seconds=$(($(date +%s) - started))
echo "$seconds" > "$CLUSTER_OUT/up-seconds"
log "ready in ${seconds}s: Kubernetes $KUBERNETES_VERSION; kubeconfig $KUBECONFIG_ADMIN (API on 127.0.0.1:$CLUSTER_API_PORT)"
