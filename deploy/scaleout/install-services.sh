#!/usr/bin/env bash
# Install what a one-machine scale-out cluster runs, if missing: Debian's postgresql and
# redis-server (the cluster starts them as its own processes; the packages' system services are
# not used).
set -euo pipefail
if command -v redis-server >/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
echo "installing postgresql and redis-server (apt-get)"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq postgresql redis-server >/dev/null
