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
		local module_started=$SECONDS
		(cd "$module" && CGO_ENABLED=0 nice -n 10 go build -trimpath -o "$CLUSTER_CACHE/modules/$key/" "$@")
		echo $((SECONDS - module_started)) > "$CLUSTER_CACHE/modules/$key/seconds"
		touch "$CLUSTER_CACHE/modules/$key/complete"
	fi
	cold_seconds=$((cold_seconds + $(cat "$CLUSTER_CACHE/modules/$key/seconds" 2>/dev/null || echo 0)))
	find "$CLUSTER_CACHE/modules/$key" -type f -not -name complete -not -name seconds -exec cp {} "$out/bin/" \;
}

# what a build from nothing takes: each module's compile time (measured when it was built) plus the images
cold_seconds=0
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
log "kube-router $KUBE_ROUTER_VERSION (its NetworkPolicy firewall runs as a node process, like kube-proxy)"
gobuild "$here/modules/kube-router" -ldflags "-s -w" github.com/cloudnativelabs/kube-router/v2/cmd/kube-router
log "local-path-provisioner $LOCAL_PATH_VERSION"
gobuild "$here/modules/local-path-provisioner" -ldflags "-s -w" github.com/rancher/local-path-provisioner
# Flux's controllers (tests/cluster/test_flux.py), their CRDs from the same releases' module zips
mkdir -p "$out/crds/flux"
for controller in $FLUX_CONTROLLERS; do
	log "Flux $controller $(module_version "$controller" "github.com/fluxcd/$controller")"
	gobuild "$here/modules/$controller" -ldflags "-s -w" "github.com/fluxcd/$controller"
	module_dir=$(cd "$here/modules/$controller" && go list -m -f '{{.Dir}}' "github.com/fluxcd/$controller")
	cp "$module_dir"/config/crd/bases/*.yaml "$out/crds/flux/"
done
log "traefik $TRAEFIK_VERSION (dask-gateway's proxy; its CRDs from the same module zip)"
gobuild "$here/modules/traefik" -ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$TRAEFIK_VERSION" \
	github.com/traefik/traefik/v3/cmd/traefik
mkdir -p "$out/crds"
cp "$(cd "$here/modules/traefik" && go list -m -f '{{.Dir}}' github.com/traefik/traefik/v3)/docs/content/reference/dynamic-configuration/kubernetes-crd-definition-v1.yml" \
	"$out/crds/traefik.yaml"
log "pause, nsforward"
gobuild "$here" -ldflags "-s -w" ./cmd/pause ./cmd/nsforward

# Each program that runs in a pod becomes a one-binary image (FROM scratch); the provisioner's helper pods need a
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
# the project's podman settings (runc, cgroupfs), as make images uses them
export CONTAINERS_CONF=${CONTAINERS_CONF:-$CLUSTER_REPO/images/containers.conf}
images_started=$SECONDS
image "$PAUSE_IMAGE" /pause "$out/bin/pause"
image "$COREDNS_IMAGE" /coredns "$out/bin/coredns"
image "$LOCAL_PATH_IMAGE" /local-path-provisioner "$out/bin/local-path-provisioner"
busybox=$(mktemp -d)
mkdir -p "$busybox/bin"
cp /bin/busybox "$busybox/bin/"
for applet in sh mkdir rm chmod ls cat echo sleep wget nc nslookup httpd; do ln -s busybox "$busybox/bin/$applet"; done
image "$BUSYBOX_IMAGE" /bin/sh "$busybox/bin"
rm -rf "$busybox"
image "$TRAEFIK_IMAGE" /traefik "$out/bin/traefik"
for controller in $FLUX_CONTROLLERS; do
	image "$(flux_image "$controller")" "/$controller" "$out/bin/$controller"
done

echo $((cold_seconds + SECONDS - images_started)) > "$out/build-seconds"
touch "$out/complete"
rm -rf "$dir"
mv "$out" "$dir"
# earlier builds (other versions or inputs) go; the per-module caches stay
find "$CLUSTER_CACHE" -mindepth 1 -maxdepth 1 -name 'k8s-*' -not -name "$(basename "$dir")" -exec rm -rf {} +
echo "$dir"
