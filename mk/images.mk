# The hub and notebook images (images/*/Dockerfile), built with podman/buildah from Debian's packages.
#   make images    build them under the tags the chart's values name (no-op when no input changed);
#                  sizes and build times in build/bench/images.json
# tests/images runs them as a cluster does (part of `make test`).
APT_PACKAGES += podman buildah runc fuse-overlayfs slirp4netns uidmap mmdebstrap catatonit skopeo
# the project's podman settings (runc, cgroupfs, file events, slirp4netns, ulimits under the host's)
export CONTAINERS_CONF := $(abspath images/containers.conf)

IMAGES_BUILD := $(BUILD)/images
IMAGE_BUILDER := tools/images/build.py
# what an image is built from: its Dockerfile and ignore file, the lock, the project's sources
IMAGE_SOURCES := pyproject.toml uv.lock README.md images/containers.conf $(IMAGE_BUILDER) \
	$(shell find src hub_config -type f -not -path '*/__pycache__/*' -not -name '*.pyc' 2>/dev/null) \
	$(wildcard notebooks/*.ipynb)

.PHONY: images images-base images-proxy
images: $(IMAGES_BUILD)/hub.built $(IMAGES_BUILD)/notebook.built

# the base is rebuilt only when its recipe (the builder) or the name the Dockerfiles give it changes (a new base
# means rebuilding every layer above it); editing the Dockerfiles alone keeps it
$(IMAGES_BUILD)/base.built: $(IMAGE_BUILDER) images/hub/Dockerfile images/notebook/Dockerfile | venv sysdeps
	@mkdir -p $(@D)
	@base="$$(sed -n 's/^ARG BASE=//p' images/hub/Dockerfile) $$(sha256sum $(IMAGE_BUILDER) | cut -c1-16)"; \
	if [ -f $@ ] && [ "$$(cat $@)" = "$$base" ] && podman image exists "$${base% *}"; then touch $@; \
	else $(PY) $(IMAGE_BUILDER) base && echo "$$base" > $@; fi

images-base: $(IMAGES_BUILD)/base.built

$(IMAGES_BUILD)/%.built: images/%/Dockerfile images/%/Dockerfile.dockerignore $(IMAGE_SOURCES) \
		$(IMAGES_BUILD)/base.built | venv sysdeps
	$(PY) $(IMAGE_BUILDER) $*
	@touch $@

# configurable-http-proxy for clusters that cannot pull quay.io's (make deploy-local): Debian's nodejs and the
# version images/proxy/package-lock.json pins
images-proxy: $(IMAGES_BUILD)/proxy.built

$(IMAGES_BUILD)/proxy.built: images/proxy/package.json images/proxy/package-lock.json $(IMAGE_BUILDER) | venv sysdeps
	@mkdir -p $(@D)
	$(PY) $(IMAGE_BUILDER) proxy
	@touch $@

TEST_PREREQS += images
