#!/usr/bin/env bash
# Build the synthdb image where Docker Hub cannot be reached (no `python:3.11-slim-bookworm` to pull).
#
#   sudo infra/docker/build-offline.sh [--wheels DIR] [--ca-cert FILE]... [--tag IMAGE] [--base-tag IMAGE]
#                                      [--rebuild-base]
#
# 1. debootstrap a minimal Debian bookworm (python3 3.11, python3-venv, ca-certificates) into a temporary folder
#    and `docker import` it as a local base image (synthdb-base:bookworm); skipped when that image exists, unless
#    --rebuild-base. Needs the Debian mirror (DEBIAN_MIRROR, default http://deb.debian.org/debian) and root.
# 2. `docker build --network host --build-arg BASE_IMAGE=<that image> -f infra/docker/Dockerfile .` from the
#    repository root. The Dockerfile's apt-get reaches the same Debian mirror, its pip install PyPI (or
#    PIP_INDEX_URL, passed on when set).
#
# --wheels DIR: a folder of wheels (at least the torch 2.13.0 CPU wheel, torch-2.13.0+cpu-cp311-...whl) served to
# the build over http://127.0.0.1:PORT/ for the time of the build (pip --find-links); nothing of it is copied into
# the build context or an image layer. Without it, the Dockerfile takes torch's CPU build from
# download.pytorch.org/whl/cpu, which an offline site cannot reach either.
# --ca-cert FILE (repeatable): a PEM certificate authority the base image trusts, for a site whose HTTPS goes
# through an intercepting proxy (pip inside the build fails with CERTIFICATE_VERIFY_FAILED without it). It stays
# trusted in the final image, which runs behind the same proxy.
#
# Environment: DEBIAN_MIRROR, WHEELS_PORT (default 8765), PIP_INDEX_URL, BUILD_TIMEOUT (seconds, default 3600).
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
image_tag="synthdb:latest"
base_tag="synthdb-base:bookworm"
wheels_dir=""
ca_certs=()
rebuild_base=0
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
wheels_port="${WHEELS_PORT:-8765}"

while (( $# )); do
  case "$1" in
    --wheels) wheels_dir="$(cd "$2" && pwd)"; shift 2 ;;
    --ca-cert) ca_certs+=("$(realpath "$2")"); shift 2 ;;
    --tag) image_tag="$2"; shift 2 ;;
    --base-tag) base_tag="$2"; shift 2 ;;
    --rebuild-base) rebuild_base=1; shift ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "build-offline: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

for tool in docker debootstrap; do
  if ! command -v "$tool" >/dev/null; then
    echo "build-offline: $tool is not installed (apt-get install docker.io debootstrap)" >&2
    exit 2
  fi
done

rootfs=""
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; fi
  if [[ -n "$rootfs" && -d "$rootfs" ]]; then
    # a debootstrap that failed half-way can leave /proc or /sys mounted inside the tree: never rm through them
    for m in proc sys dev/pts; do
      if mountpoint -q "$rootfs/$m"; then umount -l "$rootfs/$m" || true; fi
    done
    rm -rf --one-file-system "$rootfs"
  fi
}
trap cleanup EXIT

# --- 1. the base image -----------------------------------------------------------------------------------------
if (( rebuild_base )) || ! docker image inspect "$base_tag" >/dev/null 2>&1; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "build-offline: debootstrap needs root (run with sudo)" >&2
    exit 2
  fi
  rootfs="$(mktemp -d /tmp/synthdb-rootfs.XXXXXX)"
  echo "build-offline: debootstrap bookworm from $mirror into $rootfs"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$rootfs" "$mirror"
  # the same suites the official Debian images use; no service may start inside an image build
  cat > "$rootfs/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${mirror%/debian}/debian-security bookworm-security main
EOF
  for cert in "${ca_certs[@]}"; do
    cp "$cert" "$rootfs/usr/local/share/ca-certificates/$(basename "${cert%.*}").crt"
  done
  if (( ${#ca_certs[@]} )); then chroot "$rootfs" update-ca-certificates; fi
  printf '#!/bin/sh\nexit 101\n' > "$rootfs/usr/sbin/policy-rc.d"
  chmod 755 "$rootfs/usr/sbin/policy-rc.d"
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
  echo "build-offline: docker import as $base_tag"
  tar --numeric-owner -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    - "$base_tag"
  cleanup
  rootfs=""
else
  echo "build-offline: using the existing base image $base_tag (--rebuild-base to make it again)"
fi

# --- 2. the synthdb image ----------------------------------------------------------------------------------------
build_args=(--build-arg "BASE_IMAGE=$base_tag")
if [[ -n "$wheels_dir" ]]; then
  echo "build-offline: serving $wheels_dir at http://127.0.0.1:$wheels_port/ for the build"
  python3 -m http.server --bind 127.0.0.1 --directory "$wheels_dir" "$wheels_port" >/dev/null 2>&1 &
  server_pid=$!
  for _ in $(seq 50); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$wheels_port") 2>/dev/null; then break; fi
    sleep 0.2
  done
  build_args+=(--build-arg "WHEELS_URL=http://127.0.0.1:$wheels_port/" --build-arg "TORCH_INDEX_URL=")
fi
if [[ -n "${PIP_INDEX_URL:-}" ]]; then
  build_args+=(--build-arg "PIP_INDEX_URL=$PIP_INDEX_URL")
fi

cd "$root"
echo "build-offline: docker build -t $image_tag ${build_args[*]}"
start=$(date +%s)
timeout "${BUILD_TIMEOUT:-3600}" docker build --network host "${build_args[@]}" \
  -f infra/docker/Dockerfile -t "$image_tag" .
echo "build-offline: built $image_tag in $(( $(date +%s) - start )) s"
docker images "$image_tag"
