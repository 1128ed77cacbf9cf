# Shared settings of the single-node cluster (sourced by build.sh, up.sh, down.sh, load-images.sh).
# The pinned versions are read from the Go modules that build the programs, never written twice.
# shellcheck shell=bash

CLUSTER_TOOLS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CLUSTER_REPO=$(cd "$CLUSTER_TOOLS/../.." && pwd)

# module_version MODULE_DIR MODULE_PATH: the version that tools/cluster/modules/MODULE_DIR/go.mod requires
module_version() {
	local version
	version=$(awk -v m="$2" '$1 == "require" { $1 = ""; $0 = $0 } $1 == m && $2 ~ /^v/ {print $2; exit}' "$CLUSTER_TOOLS/modules/$1/go.mod")
	if [ -z "$version" ]; then
		echo "cluster: $CLUSTER_TOOLS/modules/$1/go.mod requires no $2" >&2
		return 1
	fi
	echo "$version"
}
KUBERNETES_VERSION=$(module_version kubernetes k8s.io/kubernetes)
ETCD_VERSION=$(module_version etcd go.etcd.io/etcd/server/v3)
COREDNS_VERSION=$(module_version coredns github.com/coredns/coredns)
KUBE_ROUTER_VERSION=$(module_version kube-router github.com/cloudnativelabs/kube-router/v2)
LOCAL_PATH_VERSION=$(module_version local-path-provisioner github.com/rancher/local-path-provisioner)
TRAEFIK_VERSION=$(module_version traefik github.com/traefik/traefik/v3)

# kube_minor_part N: field N of the Kubernetes version (1 = major, 2 = minor)
kube_minor_part() { echo "${KUBERNETES_VERSION#v}" | cut -d. -f"$1"; }

# Names under which the in-cluster images are imported into the node's containerd (the manifests use them).
IMAGE_PREFIX=localhost/physlite-cluster
PAUSE_IMAGE=$IMAGE_PREFIX/pause:1
COREDNS_IMAGE=$IMAGE_PREFIX/coredns:$COREDNS_VERSION
LOCAL_PATH_IMAGE=$IMAGE_PREFIX/local-path-provisioner:$LOCAL_PATH_VERSION
BUSYBOX_IMAGE=$IMAGE_PREFIX/busybox:1
TRAEFIK_IMAGE=$IMAGE_PREFIX/traefik:${TRAEFIK_VERSION#v}
# Flux's controllers (each from tools/cluster/modules/<name>): flux_image NAME -> its image at its pinned version
FLUX_CONTROLLERS="source-controller kustomize-controller helm-controller"
flux_image() { echo "$IMAGE_PREFIX/$1:$(module_version "$1" "github.com/fluxcd/$1")"; }

# Where things live. The build cache and the node's image store outlive `make cluster-down`; the run
# folder, the state of etcd and the kubelet, and the volumes do not.
CLUSTER_CACHE=${CLUSTER_CACHE:-/var/cache/physlite-facility/cluster}
CLUSTER_STATE=${CLUSTER_STATE:-/var/lib/physlite-facility/cluster}
CLUSTER_RUN=${CLUSTER_RUN:-/run/physlite-cluster}
CLUSTER_OUT=${CLUSTER_OUT:-$CLUSTER_REPO/build/cluster}
KUBECONFIG_ADMIN=$CLUSTER_OUT/kubeconfig

# The node's network: everything below exists only inside the namespace $NETNS.
NETNS=${CLUSTER_NETNS:-physlite-cluster}
NODE_NAME=physlite-node
NODE_BRIDGE=node0
NODE_IP=10.201.0.1
POD_CIDR=10.244.0.0/24
SERVICE_CIDR=10.96.0.0/16
API_SERVICE_IP=10.96.0.1
DNS_SERVICE_IP=10.96.0.10
# the API server on the host's loopback (forwarded into the namespace by nsforward)
CLUSTER_API_PORT=${CLUSTER_API_PORT:-16443}

# Host paths that the node's programs use whatever their settings say (CNI caches its results in
# /var/lib/cni, shared with podman on the host): bind-mounted from
# $CLUSTER_STATE/private inside the node's mount namespace (up.sh), so nothing lands on the host's.
NODE_PRIVATE_PATHS="/run/containerd /var/lib/kubelet /var/log/containers /var/log/pods /opt/containerd /var/lib/cni"

# Kernel settings the kubelet changes on start (they are not per network namespace): saved by up.sh,
# restored by down.sh.
KUBELET_SYSCTLS="vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
kernel.keys.root_maxkeys kernel.keys.root_maxbytes"

# cluster_build_dir: the cache folder of this exact build (versions + a hash of every input)
cluster_build_dir() {
	local hash
	hash=$(cd "$CLUSTER_TOOLS" && {
		find build.sh go.mod go.sum cmd modules -type f -print0 | sort -z | xargs -0 sha256sum
		echo "$PAUSE_IMAGE $COREDNS_IMAGE $LOCAL_PATH_IMAGE $BUSYBOX_IMAGE $TRAEFIK_IMAGE"
	} | sha256sum | cut -c1-12)
	echo "$CLUSTER_CACHE/k8s-$KUBERNETES_VERSION-$hash"
}

# in_node CMD...: run CMD in the node's network and mount namespaces
in_node() {
	nsenter --mount="/proc/$(cat "$CLUSTER_RUN/pids/holder")/ns/mnt" --net="/run/netns/$NETNS" -- "$@"
}
