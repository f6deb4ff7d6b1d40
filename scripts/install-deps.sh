#!/usr/bin/env bash
# Installs the Debian packages Torpor needs on a host, when they are missing:
# QEMU (the VMM), the kernel, busybox and a C toolchain the guest images are built
# from, nats-server, protoc. As root it runs apt-get; otherwise it prints the command.
set -euo pipefail
PKGS=(qemu-system-x86 linux-image-amd64 busybox-static cpio xz-utils kmod gcc libc6-dev python3 nats-server protobuf-compiler libprotobuf-dev curl)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" != 0 ]; then
  echo "torpor needs these Debian packages: ${missing[*]}" >&2
  echo "install them with:  sudo apt-get update && sudo $cmd" >&2
  exit 1
fi
echo "installing ${missing[*]} (apt-get)…" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
$cmd -qq >/dev/null
