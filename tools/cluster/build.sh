#!/usr/bin/env bash
# Builds the single-node cluster's programs from their Go modules (tools/cluster/modules/*, tools/cluster/cmd)
# and wraps the in-cluster ones as images, into a cache folder outside the clone keyed by everything that
# goes into the build (so a second run, or CI on the same machine, takes seconds). Prints the folder.
#
#   tools/cluster/build.sh            # -> /var/cache/physlite-facility/cluster/k8s-v1.35.4-<hash>
#   CLUSTER_CACHE=~/.cache/physlite-cluster tools/cluster/build.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tools/cluster/lib.sh
. "$here/lib.sh"

dir=$(cluster_build_dir)
if [ -f "$dir/complete" ]; then
	echo "$dir"
	exit 0
fi
started=$(date +%s)
rm -rf "$dir.partial"
mkdir -p "$dir.partial/bin" "$dir.partial/images"
out=$dir.partial

log() { echo "cluster build: $*" >&2; }
# gobuild MODULE_DIR GO_BUILD_ARGS...: the module's programs into $out/bin; each module's output is also kept
# under $CLUSTER_CACHE/modules/<module>-<hash of its files>, so changing one module (or the image step)
# rebuilds only that. The shared machine has two cores: every compile runs niced.
gobuild() {
	local module=$1 key
	shift
	key=$(basename "$module")-$(cd "$module" && find . -maxdepth 1 -type f -print0 | sort -z | xargs -0 sha256sum |
		sha256sum | cut -c1-12)
	[ "$module" = "$here" ] && key=own-$(cd "$here" && find go.mod go.sum cmd -type f -print0 | sort -z |
		xargs -0 sha256sum | sha256sum | cut -c1-12)
	if ! [ -f "$CLUSTER_CACHE/modules/$key/complete" ]; then
		rm -rf "$CLUSTER_CACHE/modules/$key"
		mkdir -p "$CLUSTER_CACHE/modules/$key"
		(cd "$module" && CGO_ENABLED=0 nice -n 10 go build -trimpath -o "$CLUSTER_CACHE/modules/$key/" "$@")
		touch "$CLUSTER_CACHE/modules/$key/complete"
	fi
	find "$CLUSTER_CACHE/modules/$key" -type f -not -name complete -exec cp {} "$out/bin/" \;
}

k8s_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	k8s_ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=$(kube_minor_part 1)"
	k8s_ldflags+=" -X $pkg.gitMinor=$(kube_minor_part 2) -X $pkg.gitTreeState=clean"
	k8s_ldflags+=" -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
log "Kubernetes $KUBERNETES_VERSION (apiserver, controller-manager, scheduler, kubelet, proxy, kubectl)"
gobuild "$here/modules/kubernetes" -ldflags "$k8s_ldflags" \
	k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
	k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy \
	k8s.io/kubernetes/cmd/kubectl
log "etcd $ETCD_VERSION"
gobuild "$here/modules/etcd" -ldflags "-s -w" go.etcd.io/etcd/server/v3
mv "$out/bin/server" "$out/bin/etcd"
log "CoreDNS $COREDNS_VERSION"
gobuild "$here/modules/coredns" -ldflags "-s -w" .
log "kube-network-policies $NETWORK_POLICIES_VERSION"
gobuild "$here/modules/network-policies" -ldflags "-s -w" sigs.k8s.io/kube-network-policies/cmd
mv "$out/bin/cmd" "$out/bin/kube-network-policies"
log "local-path-provisioner $LOCAL_PATH_VERSION"
gobuild "$here/modules/local-path-provisioner" -ldflags "-s -w" github.com/rancher/local-path-provisioner
log "pause, nsforward"
gobuild "$here" -ldflags "-s -w" ./cmd/pause ./cmd/nsforward

# Each in-cluster program becomes a one-binary image (FROM scratch); the provisioner's helper pods need a
# shell, mkdir and rm: Debian's static busybox.
image() { # image NAME ENTRYPOINT FILE...
	local name=$1 entrypoint=$2 work
	shift 2
	work=$(mktemp -d)
	mkdir "$work/context"
	for file in "$@"; do cp -a "$file" "$work/context/"; done
	printf 'FROM scratch\nCOPY . /\nENTRYPOINT ["%s"]\n' "$entrypoint" > "$work/Containerfile"
	podman build --quiet --network none --tag "$name" --file "$work/Containerfile" "$work/context" >/dev/null
	podman save --quiet --format docker-archive --output "$out/images/$(basename "${name%%:*}").tar" "$name"
	podman rmi --force "$name" >/dev/null
	rm -rf "$work"
}
log "images"
image "$PAUSE_IMAGE" /pause "$out/bin/pause"
image "$COREDNS_IMAGE" /coredns "$out/bin/coredns"
image "$NETWORK_POLICIES_IMAGE" /kube-network-policies "$out/bin/kube-network-policies"
image "$LOCAL_PATH_IMAGE" /local-path-provisioner "$out/bin/local-path-provisioner"
busybox=$(mktemp -d)
mkdir -p "$busybox/bin"
cp /bin/busybox "$busybox/bin/"
for applet in sh mkdir rm chmod ls cat echo sleep wget nc nslookup httpd; do ln -s busybox "$busybox/bin/$applet"; done
image "$BUSYBOX_IMAGE" /bin/sh "$busybox/bin"
rm -rf "$busybox"

echo "$(($(date +%s) - started))" > "$out/build-seconds"
touch "$out/complete"
rm -rf "$dir"
mv "$out" "$dir"
echo "$dir"
