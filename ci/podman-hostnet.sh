#!/bin/sh
# podman, for podman-compose --podman-path: podman-compose 1.0.3 adds
# "--net PROJECT_default --network-alias SERVICE" even to containers with
# network_mode: host, and podman refuses the combination.  When a run or
# create asks for the host network, drop those two options; pass everything
# else through unchanged.
host=0
for a in "$@"; do
	[ "$a" = "host" ] && [ "$prev" = "--network" ] && host=1
	prev=$a
done
if [ "$host" -eq 0 ]; then
	exec podman "$@"
fi
n=$#
i=0
skip=0
for a in "$@"; do
	i=$((i + 1))
	if [ "$skip" -eq 1 ]; then
		skip=0
	elif [ "$a" = "--net" ] || [ "$a" = "--network-alias" ]; then
		skip=1
	else
		set -- "$@" "$a"
	fi
	[ "$i" -eq "$n" ] && break
done
shift "$n"
exec podman "$@"
