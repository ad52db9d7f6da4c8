#!/bin/sh
# make test's container stage: runs ci/compose-test.sh (images, compose,
# mail flow, scaling, restart) where containers can run: as root, after
# ci/podman-setup.sh has installed and configured podman and a base image,
# and a container actually starts.  Elsewhere it says why it is skipped.
cd "$(dirname "$0")/.." || exit 2
if [ "$(id -u)" -ne 0 ]; then
	echo "compose-test: skipped: needs root (podman with runc and cgroupfs)"
	exit 0
fi
if ! ci/podman-setup.sh >build/podman-setup.log 2>&1; then
	echo "compose-test: skipped: podman set-up failed here (see build/podman-setup.log)"
	tail -5 build/podman-setup.log
	exit 0
fi
if ! podman run --rm --network host "${MF_BASE_IMAGE:-debian:bookworm-slim}" true \
	>build/podman-probe.log 2>&1; then
	echo "compose-test: skipped: this machine cannot run containers (see build/podman-probe.log)"
	tail -3 build/podman-probe.log
	exit 0
fi
exec ci/compose-test.sh
