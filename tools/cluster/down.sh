#!/usr/bin/env bash
# Stops the single-node cluster and removes everything up.sh made: every process (the components, the pods'
# containers, their shims), the node's network namespace with every rule in it, the node's mount namespace
# with every mount in it, the pods' cgroups, the kernel settings the kubelet changed, the run folder and the
# state of etcd and the kubelet. Kept: the build cache and containerd's image store (a warm start needs
# them). Safe to run when nothing is running.
#
#   tools/cluster/down.sh
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tools/cluster/lib.sh
. "$here/lib.sh"

log() { echo "cluster: $*" >&2; }

# stop NAME...: SIGTERM the recorded processes, then SIGKILL what is left after 10 s
stop() {
	local name pids=()
	for name in "$@"; do
		[ -f "$CLUSTER_RUN/pids/$name" ] && pids+=("$(cat "$CLUSTER_RUN/pids/$name")")
	done
	[ ${#pids[@]} -gt 0 ] || return 0
	kill "${pids[@]}" 2>/dev/null
	for _ in $(seq 20); do
		kill -0 "${pids[@]}" 2>/dev/null || break
		sleep 0.5
	done
	kill -9 "${pids[@]}" 2>/dev/null
	for name in "$@"; do rm -f "$CLUSTER_RUN/pids/$name"; done
}

# node_processes: every process in the node's network or mount namespace or in the pods' cgroups
node_processes() {
	local netns="" mntns="" pid
	[ -e "/run/netns/$NETNS" ] && netns=$(stat -L -c %i "/run/netns/$NETNS")
	[ -f "$CLUSTER_RUN/pids/holder" ] && mntns=$(readlink "/proc/$(cat "$CLUSTER_RUN/pids/holder")/ns/mnt" 2>/dev/null)
	for pid in $(ls /proc | grep -E '^[0-9]+$'); do
		[ "$pid" = $$ ] && continue
		if { [ -n "$netns" ] && [ "$(stat -L -c %i "/proc/$pid/ns/net" 2>/dev/null)" = "$netns" ]; } ||
			{ [ -n "$mntns" ] && [ "$(readlink "/proc/$pid/ns/mnt" 2>/dev/null)" = "$mntns" ]; } ||
			grep -q ':/physlite-cluster/' "/proc/$pid/cgroup" 2>/dev/null; then
			echo "$pid"
		fi
	done
}

# the kubelet first (it would restart containers), then the pods' containers through containerd
stop kubelet
sock=$CLUSTER_RUN/containerd/containerd.sock
if [ -S "$sock" ] && [ -f "$CLUSTER_RUN/pids/holder" ]; then
	ctr_node() { in_node ctr --address "$sock" -n k8s.io "$@"; }
	for task in $(ctr_node tasks list -q 2>/dev/null); do ctr_node tasks kill -s SIGKILL "$task" >/dev/null 2>&1; done
	sleep 1
	for task in $(ctr_node tasks list -q 2>/dev/null); do ctr_node tasks delete -f "$task" >/dev/null 2>&1; done
	for container in $(ctr_node containers list -q 2>/dev/null); do ctr_node containers delete "$container" >/dev/null 2>&1; done
fi
stop kube-router kube-proxy containerd kube-scheduler kube-controller-manager
stop kube-apiserver nsforward
stop etcd
# whatever is left in the node (shims, containers' processes), then the mount namespace's holder
leftover=$(node_processes)
[ -n "$leftover" ] && kill -9 $leftover 2>/dev/null
stop holder
sleep 0.5
leftover=$(node_processes)
[ -n "$leftover" ] && kill -9 $leftover 2>/dev/null

ip netns list 2>/dev/null | grep -qw "^$NETNS" && ip netns delete "$NETNS"

# mounts that reached the host's namespace (none should: the node's mounts die with its namespace)
for mount in $(awk '{print $5}' /proc/self/mountinfo | grep -E "^($CLUSTER_RUN|$CLUSTER_STATE)(/|$)" | sort -r); do
	umount -l "$mount" 2>/dev/null
done

# the pods' cgroups, deepest first
for hierarchy in /sys/fs/cgroup/*/; do
	[ -d "$hierarchy/physlite-cluster" ] && find "$hierarchy/physlite-cluster" -depth -type d -exec rmdir {} + 2>/dev/null
done

# the mount points of the node's private folders that up.sh created on the host (empty now)
if [ -f "$CLUSTER_RUN/host-paths-made" ]; then
	while IFS= read -r path; do rmdir "$path" 2>/dev/null; done < "$CLUSTER_RUN/host-paths-made"
fi

if [ -f "$CLUSTER_RUN/sysctls.saved" ]; then
	while IFS= read -r setting; do sysctl -q -w "$setting" >/dev/null; done < "$CLUSTER_RUN/sysctls.saved"
fi

rm -rf "${CLUSTER_STATE:?}"/{etcd,kubelet,pki,volumes,cni,pod-logs,private} "$CLUSTER_RUN"
rm -f "$KUBECONFIG_ADMIN" "$CLUSTER_OUT/kubectl"
log "down: no process, namespace, mount or rule of the cluster is left"
