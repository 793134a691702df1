#!/usr/bin/env bash
# A Docker engine and both compose tools on a Debian bookworm machine, from Debian's packages only
# (for CI: no image registry or Docker download site is reachable there, Debian's mirror is).
#
#   docker/engine.sh      installs what is missing, starts dockerd if none answers, then exits 0
#
# - docker.io (the engine, 20.10) and docker-compose (1.29, the Python one) from bookworm;
# - the Compose v2 plugin (`docker compose`) from Debian trixie's docker-compose package, unpacked
#   into the CLI's plugin folder without installing the package (it would replace 1.29);
# - debootstrap, for docker/base-image.sh.
# Needs root.
set -euo pipefail
missing=()
command -v dockerd > /dev/null || missing+=(docker.io)
command -v docker-compose > /dev/null || missing+=(docker-compose)
command -v debootstrap > /dev/null || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" > /dev/null
fi
plugin=/usr/local/lib/docker/cli-plugins/docker-compose
if ! docker compose version > /dev/null 2>&1 && [ ! -x "$plugin" ]; then
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
        > "$work/sources.list"
    apt=(-o "Dir::Etc::sourcelist=$work/sources.list" -o Dir::Etc::sourceparts=/dev/null
         -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache")
    apt-get "${apt[@]}" update -qq
    (cd "$work" && apt-get "${apt[@]}" download docker-compose 2> /dev/null)
    dpkg-deb -x "$work"/docker-compose_2*.deb "$work/x"
    mkdir -p "$(dirname "$plugin")"
    install -m 755 "$work/x/usr/libexec/docker/cli-plugins/docker-compose" "$plugin"
fi
if ! docker info > /dev/null 2>&1; then
    nohup dockerd > /var/log/dockerd.log 2>&1 &
    for _ in $(seq 60); do
        docker info > /dev/null 2>&1 && break
        sleep 1
    done
fi
docker info > /dev/null
echo "docker engine $(docker version -f '{{.Server.Version}}'); $(docker compose version); $(docker-compose version --short) (docker-compose)"
