# A single-node Kubernetes on this machine (issue 14), from upstream code at the versions pinned in
# tools/cluster/modules/*/go.mod, built once into a cache outside the clone (CLUSTER_CACHE, default
# /var/cache/physlite-facility/cluster/<versions-hash>). The node's network is a namespace of its own:
# nothing is added to the host's routes or firewall, and nothing leaves the machine.
#   make cluster              build (or take from the cache) and start it; kubeconfig: build/cluster/kubeconfig,
#                             API server on 127.0.0.1:$(CLUSTER_API_PORT); also loads the images of `make images`
#   make cluster-down         stop it and remove every process, namespace, mount, rule and cgroup it made
#   make cluster-build        only build (or check) the cache
#   make cluster-load-images  load the hub and notebook images from podman into the node (skips missing ones)
#   make cluster-chart        helm install/upgrade our own part of the chart (subcharts off) into the running
#                             cluster, namespace analysis-facility (tools/cluster/chart.py; CHART_VALUES=file)
#   make deploy-local         the whole chart (Zero to JupyterHub, dask-gateway, ours) into the running cluster
#                             with the local images and the development IAM (tools/cluster/deploy_local.py; the
#                             subcharts from AF_SUBCHARTS=<folder> where they cannot be downloaded); then
#                             http://127.0.0.1:18080. make deploy-local-down removes it.
# tests/cluster starts the cluster from the cache itself and stops it at the end.
APT_PACKAGES += containerd runc containernetworking-plugins busybox-static conntrack iptables iproute2 \
	util-linux openssl podman ipset
CLUSTER_API_PORT ?= 16443
export CLUSTER_API_PORT
TEST_PREREQS += cluster-build

.PHONY: cluster cluster-down cluster-build cluster-load-images cluster-chart deploy-local deploy-local-down

cluster-build: sysdeps
	@nice -n 10 tools/cluster/build.sh >/dev/null

cluster: cluster-build
	tools/cluster/up.sh
	@$(MAKE) --no-print-directory cluster-load-images

cluster-down:
	tools/cluster/down.sh

# the names `make images` gives the hub and notebook images (tools/images/build.py reads them from the chart)
cluster-load-images: venv
	tools/cluster/load-images.sh $$($(PY) -c 'import sys; sys.path.insert(0, "tools/images"); import build; \
		print(build.image_name("hub"), build.image_name("notebook"))')

cluster-chart: venv
	$(PY) tools/cluster/chart.py install $(if $(CHART_VALUES),-f $(CHART_VALUES))

deploy-local: venv images images-proxy
	$(PY) tools/cluster/deploy_local.py up $(if $(CHART_VALUES),-f $(CHART_VALUES))

deploy-local-down: venv
	$(PY) tools/cluster/deploy_local.py down
