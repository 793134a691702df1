#!/usr/bin/env bash
# Make a Debian bookworm base image from Debian's packages alone, for machines that reach no image
# registry (the CI machine: Docker Hub is unreachable, Debian's mirror is not). It stands in for
# python:3.11-slim: Python 3.11 with venv, and the CA certificates (a proxy's own CA goes into
# docker/certs/, which every image of ours trusts).
#
#   docker/base-image.sh [TAG]        (default: coding-base:bookworm; does nothing if it exists)
#
# Needs root, debootstrap and a running Docker engine. MIRROR overrides Debian's mirror.
set -euo pipefail
tag="${1:-coding-base:bookworm}"
mirror="${MIRROR:-http://deb.debian.org/debian}"
if docker image inspect "$tag" > /dev/null 2>&1; then
    echo "base image $tag exists"
    exit 0
fi
root="$(mktemp -d /var/tmp/coding-base.XXXXXX)"
trap 'rm -rf "$root"' EXIT
echo "debootstrap bookworm into $root ..."
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$root" "$mirror" > "$root.log" 2>&1 || { tail -20 "$root.log"; exit 1; }
rm -f "$root.log"
echo "deb $mirror bookworm main" > "$root/etc/apt/sources.list"
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/usr/share/doc "$root"/usr/share/man
tar -C "$root" -c . | docker import \
    -c 'ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'CMD ["bash"]' - "$tag" > /dev/null
# python:3.11-slim calls it python; Debian only python3.
docker build -q -t "$tag" - > /dev/null <<DOCKERFILE
FROM $tag
RUN ln -s /usr/bin/python3 /usr/local/bin/python
DOCKERFILE
echo "made $tag ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
