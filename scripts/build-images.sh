#!/usr/bin/env bash
# Builds Torpor guest images from the host's Debian packages
# (linux-image-amd64, busybox-static, gcc + libc6-dev for the static guest program).
#
#   scripts/build-images.sh [DATA]                       default + slow-start
#   scripts/build-images.sh [DATA] --name N --from DIR   image N from DIR (DIR/entrypoint is run as the app)
#
# DATA defaults to $TORPOR_DATA or ./data. Output: DATA/images/<name>/{vmlinux,initramfs.cpio,image.json}.
# Idempotent: an image whose inputs did not change is not rebuilt (a stamp holds the inputs' hash).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="${TORPOR_DATA:-./data}"
NAME=""
FROM=""
while [ $# -gt 0 ]; do
  case "$1" in
    --name) NAME="$2"; shift 2 ;;
    --from) FROM="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) DATA="$1"; shift ;;
  esac
done
if [ -n "$FROM" ] && [ -z "$NAME" ]; then echo "--from needs --name" >&2; exit 2; fi
if [ -n "$NAME" ] && ! [[ "$NAME" =~ ^[a-z0-9][a-z0-9._-]{0,62}$ ]]; then
  echo "bad image name '$NAME' (lowercase letters, digits, . _ -)" >&2; exit 2
fi
mkdir -p "$DATA/images"
DATA="$(cd "$DATA" && pwd)"
IMAGES="$DATA/images"

KVER="${TORPOR_KERNEL_VERSION:-$(ls /boot/vmlinuz-*-amd64 2>/dev/null | sed 's#.*/vmlinuz-##' | sort -V | tail -1)}"
[ -n "$KVER" ] || { echo "no /boot/vmlinuz-*-amd64: install linux-image-amd64" >&2; exit 1; }
VMLINUZ="/boot/vmlinuz-$KVER"
MODDIR="/lib/modules/$KVER"
BUSYBOX="$(command -v busybox || true)"
[ -n "$BUSYBOX" ] || { echo "no busybox: install busybox-static" >&2; exit 1; }
MODULES="virtio_ring virtio virtio_mmio failover net_failover virtio_net virtio_console"

# --- shared pieces: uncompressed kernel and the static guest program ------------------
SHARED="$IMAGES/.shared"
mkdir -p "$SHARED"
VMLINUX="$SHARED/vmlinux-$KVER"
if [ ! -s "$VMLINUX" ]; then
  # The bzImage carries the kernel as an xz stream: find its magic, unpack it, check for ELF.
  python3 - "$VMLINUZ" "$VMLINUX.tmp" <<'PY'
import lzma, sys
data = open(sys.argv[1], 'rb').read()
magic = b'\xfd7zXZ\x00'
pos = data.find(magic)
while pos >= 0:
    try:
        out = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data[pos:])
        if out[:4] == b'\x7fELF':
            open(sys.argv[2], 'wb').write(out)
            sys.exit(0)
    except lzma.LZMAError:
        pass
    pos = data.find(magic, pos + 1)
sys.exit('no xz-compressed ELF kernel found in ' + sys.argv[1])
PY
  mv "$VMLINUX.tmp" "$VMLINUX"
fi

GUEST_SRC="$REPO/images/guest/torpor-guest.c"
GUEST_HASH="$(sha256sum "$GUEST_SRC" | cut -c1-16)"
GUEST_BIN="$SHARED/torpor-guest-$GUEST_HASH"
if [ ! -x "$GUEST_BIN" ]; then
  gcc -O2 -static -Wall -o "$GUEST_BIN.tmp" "$GUEST_SRC"
  strip "$GUEST_BIN.tmp" 2>/dev/null || true
  mv "$GUEST_BIN.tmp" "$GUEST_BIN"
fi

# --- one image -------------------------------------------------------------------------
# build_image NAME IMAGE_ENV_FILE_OR_EMPTY APP_DIR_OR_EMPTY
build_image() {
  local name="$1" envfile="$2" appdir="$3"
  local out="$IMAGES/$name"
  local inputs
  inputs="$( {
    echo "kernel $KVER $(stat -c %s "$VMLINUX")"
    echo "busybox $(sha256sum "$BUSYBOX" | cut -c1-16)"
    echo "guest $GUEST_HASH"
    sha256sum "$REPO/images/guest/init" "$0" | cut -c1-64
    if [ -n "$envfile" ]; then sha256sum "$envfile" | cut -c1-64; fi
    if [ -n "$appdir" ]; then (cd "$appdir" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum; find . -printf '%p %m %y\n' | sort); fi
  } | sha256sum | cut -c1-32)"
  if [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$inputs" ] && [ -s "$out/initramfs.cpio" ] && [ -s "$out/vmlinux" ]; then
    echo "image $name: up to date ($out)"
    return 0
  fi
  local root
  root="$(mktemp -d)"
  mkdir -p "$root"/{bin,sbin,usr/bin,proc,sys,dev,tmp,etc/torpor,lib/modules,root,app}
  rmdir "$root/app"
  cp "$BUSYBOX" "$root/bin/busybox"
  for a in $("$BUSYBOX" --list); do
    [ "$a" = busybox ] || ln -s busybox "$root/bin/$a"
  done
  cp "$REPO/images/guest/init" "$root/init"
  chmod 755 "$root/init"
  cp "$GUEST_BIN" "$root/usr/bin/torpor-guest"
  for m in $MODULES; do
    local f
    f="$(find "$MODDIR/kernel" -name "$m.ko*" | head -1)"
    [ -n "$f" ] || { echo "module $m not found under $MODDIR" >&2; exit 1; }
    case "$f" in
      *.ko.xz) xz -dc "$f" > "$root/lib/modules/$m.ko" ;;
      *.ko.zst) zstd -dc "$f" > "$root/lib/modules/$m.ko" ;;
      *) cp "$f" "$root/lib/modules/$m.ko" ;;
    esac
  done
  if [ -n "$envfile" ]; then cp "$envfile" "$root/etc/torpor/image.env"; fi
  if [ -n "$appdir" ]; then
    mkdir -p "$root/app"
    cp -a "$appdir/." "$root/app/"
    chmod 755 "$root/app/entrypoint"
  fi
  mkdir -p "$out"
  (cd "$root" && find . -print0 | sort -z | cpio --null -o -H newc --owner=0:0 --quiet) > "$out/initramfs.cpio.tmp"
  rm -rf "$root"
  if [ "$(stat -c %d:%i "$VMLINUX")" != "$(stat -c %d:%i "$out/vmlinux" 2>/dev/null)" ]; then
    ln -f "$VMLINUX" "$out/vmlinux" 2>/dev/null || cp -f "$VMLINUX" "$out/vmlinux"
  fi
  mv "$out/initramfs.cpio.tmp" "$out/initramfs.cpio"
  printf '{"name":"%s","kernel":"%s","built":"%s","inputs":"%s"}\n' "$name" "$KVER" "$(date -u +%FT%TZ)" "$inputs" > "$out/image.json"
  echo "$inputs" > "$out/stamp"
  echo "image $name: built ($out, initramfs $(stat -c %s "$out/initramfs.cpio") bytes)"
}

if [ -n "$FROM" ]; then
  [ -d "$FROM" ] || { echo "$FROM is not a folder" >&2; exit 2; }
  [ -f "$FROM/entrypoint" ] || { echo "$FROM has no entrypoint script" >&2; exit 2; }
  build_image "$NAME" "" "$(cd "$FROM" && pwd)"
else
  for img in default slow-start; do
    if [ -z "$NAME" ] || [ "$NAME" = "$img" ]; then
      build_image "$img" "$REPO/images/$img/image.env" ""
    fi
  done
fi
