#!/bin/sh
# Prepares this machine to build and run mailfleet's containers with podman:
# installs podman, podman-compose, runc and debootstrap from Debian, configures
# podman for runc + cgroupfs (no systemd here) without default ulimits, and
# makes sure a debian:bookworm-slim base image exists: pulled from docker.io
# when a registry answers, otherwise made with debootstrap from the same Debian
# mirror apt uses.  Idempotent: a second run changes nothing and is quick.
#
# Usage: ci/podman-setup.sh            (as root, or with sudo available)
# Env:   MF_BASE_IMAGE (default debian:bookworm-slim)
#        MF_DEBIAN_MIRROR (default: the first deb.debian.org-style URI apt uses)
set -eu

BASE_IMAGE=${MF_BASE_IMAGE:-debian:bookworm-slim}
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
say() { echo "podman-setup: $*" >&2; }

# --- packages ---------------------------------------------------------------
pkgs="podman podman-compose runc debootstrap uidmap fuse-overlayfs
  containernetworking-plugins catatonit curl"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	say "installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -q >/dev/null || $SUDO apt-get update
	# shellcheck disable=SC2086
	$SUDO apt-get install -y -q --no-install-recommends $missing
fi

# --- podman configuration ---------------------------------------------------
# No systemd here: cgroupfs, and the file events logger (journald is absent).
# runc: crun is not installed.  default_ulimits empty: podman's default
# nofile/nproc ulimits cannot be raised inside this machine's sandbox.
# Images and containers use the host network for builds (apt) and tests.
conf=/etc/containers/containers.conf
want_conf='# written by mailfleet ci/podman-setup.sh
[containers]
default_ulimits = []
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
'
if [ "$(cat "$conf" 2>/dev/null || true)" != "$(printf '%s' "$want_conf")" ]; then
	say "writing $conf"
	$SUDO mkdir -p /etc/containers
	printf '%s' "$want_conf" | $SUDO tee "$conf" >/dev/null
fi
# Registries: short names resolve to docker.io without asking.
reg=/etc/containers/registries.conf.d/50-mailfleet.conf
if [ ! -f "$reg" ]; then
	$SUDO mkdir -p /etc/containers/registries.conf.d
	printf 'unqualified-search-registries = ["docker.io"]\nshort-name-mode = "permissive"\n' |
		$SUDO tee "$reg" >/dev/null
fi

# --- base image -------------------------------------------------------------
if $SUDO podman image exists "$BASE_IMAGE"; then
	say "$BASE_IMAGE present"
	exit 0
fi
# A registry may not be reachable (some machines reach only Debian's
# mirror): ask docker.io first, briefly; without an answer, build the image
# with debootstrap.
if timeout 10 curl -s -o /dev/null https://registry-1.docker.io/v2/ &&
	timeout 120 $SUDO podman pull -q "docker.io/library/$BASE_IMAGE" >/dev/null 2>&1; then
	$SUDO podman tag "docker.io/library/$BASE_IMAGE" "$BASE_IMAGE"
	say "$BASE_IMAGE pulled"
	exit 0
fi
mirror=${MF_DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
	mirror=$(grep -rhE '^(URIs:|deb) ' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
		grep -o 'https\?://[^ ]*/debian' | head -1 || true)
	mirror=${mirror:-http://deb.debian.org/debian}
fi
say "no registry answered; making $BASE_IMAGE with debootstrap from $mirror"
root=$(mktemp -d /var/tmp/mf-bookworm.XXXXXX)
trap '$SUDO rm -rf "$root"' EXIT
$SUDO debootstrap --variant=minbase --include=ca-certificates bookworm "$root" "$mirror" >/dev/null
# Slim it the way debian:*-slim is: no docs, man pages or locales beyond C,
# no apt lists, and dpkg told to skip them in later installs too.
$SUDO sh -c "
  rm -rf '$root'/usr/share/doc/* '$root'/usr/share/man/* '$root'/usr/share/info/* \
         '$root'/var/lib/apt/lists/* '$root'/var/cache/apt/*.bin '$root'/var/cache/apt/archives/*.deb
  find '$root'/usr/share/locale -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
  printf 'path-exclude /usr/share/doc/*\npath-include /usr/share/doc/*/copyright\npath-exclude /usr/share/man/*\npath-exclude /usr/share/info/*\npath-exclude /usr/share/locale/*\n' \
    > '$root'/etc/dpkg/dpkg.cfg.d/docker-slim
  printf 'APT::Install-Recommends \"false\";\nAPT::Install-Suggests \"false\";\n' \
    > '$root'/etc/apt/apt.conf.d/docker-norecommends
  printf 'deb $mirror bookworm main\ndeb $mirror bookworm-updates main\ndeb $mirror-security bookworm-security main\n' \
    > '$root'/etc/apt/sources.list
"
$SUDO tar -C "$root" -c . | $SUDO podman import \
	--change 'CMD ["bash"]' --change 'ENV LANG=C.UTF-8' - "$BASE_IMAGE" >/dev/null
say "$BASE_IMAGE made with debootstrap"
