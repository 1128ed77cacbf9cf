#!/usr/bin/env bash
# Loads images from podman's storage into the running node's containerd (namespace k8s.io), under the same
# names, so pods can use them with imagePullPolicy IfNotPresent/Never. An image that podman does not have is
# skipped with a message; one already loaded (same image ID) is not loaded again.
#
#   tools/cluster/load-images.sh ghcr.io/physlite-facility/hub:0.1.0 ghcr.io/physlite-facility/notebook:0.1.0
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tools/cluster/lib.sh
. "$here/lib.sh"

if ! [ -f "$CLUSTER_RUN/pids/holder" ] || ! kill -0 "$(cat "$CLUSTER_RUN/pids/holder")" 2>/dev/null; then
	echo "cluster: not running (make cluster first); no image loaded" >&2
	exit 1
fi
ctr_node() { in_node ctr --address "$CLUSTER_RUN/containerd/containerd.sock" -n k8s.io "$@"; }
for image in "$@"; do
	if ! podman image exists "$image"; then
		echo "cluster: skipped $image: podman has no such image (make images builds it)"
		continue
	fi
	id=$(podman image inspect --format '{{.Id}}' "$image")
	if ctr_node images ls "name==$image" 2>/dev/null | grep -q "physlite.image-id=$id"; then
		echo "cluster: $image already on the node"
		continue
	fi
	started=$(date +%s)
	archive=$(mktemp --tmpdir="$CLUSTER_STATE" image-XXXXXX.tar)
	podman save --quiet --format docker-archive --output "$archive" "$image"
	ctr_node images import "$archive" >/dev/null
	rm -f "$archive"
	ctr_node images label "$image" "physlite.image-id=$id" >/dev/null
	echo "cluster: loaded $image in $(($(date +%s) - started))s"
done
