#!/usr/bin/env bash
# Build a signed flat apt repository laid out like NVIDIA's CUDA repository
# (<out>/<distro>/<arch>/ with InRelease, Packages, the key file 3bf863cc.pub and
# the label "NVIDIA CUDA"), holding one stand-in package: cuda-toolkit-12-8,
# whose nvcc is a shell script. molecule/host_roles points repos_cuda_base_url
# at it (file://), because NVIDIA's host is not reachable from the test hosts.
# Needs gpg and dpkg-deb.
set -euo pipefail
out=${1:?usage: make_cuda_mirror.sh OUT_DIR [DISTRO] [ARCH]}
distro=${2:-debian12}
arch=${3:-x86_64}
repo="$out/$distro/$arch"
deb=cuda-toolkit-12-8_12.8.93-1_all.deb

rm -rf "$out"
mkdir -p "$repo"
work=$(mktemp -d)
export GNUPGHOME="$work/gnupg"
cleanup() { gpgconf --kill gpg-agent 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
mkdir -m 700 "$GNUPGHOME"

gpg --batch --quiet --passphrase '' \
  --quick-gen-key 'slm.edge test CUDA mirror <cuda-mirror@example.invalid>' ed25519 sign never
gpg --batch --armor --export > "$repo/3bf863cc.pub"

pkg="$work/pkg"
mkdir -p "$pkg/DEBIAN" "$pkg/usr/local/cuda-12.8/bin" "$pkg/usr/local/cuda-12.8/lib64"
cat > "$pkg/DEBIAN/control" <<CONTROL
Package: cuda-toolkit-12-8
Version: 12.8.93-1
Architecture: all
Maintainer: slm.edge tests <tests@example.invalid>
Description: stand-in for NVIDIA's CUDA 12.8 toolkit (molecule/host_roles)
CONTROL
cat > "$pkg/usr/local/cuda-12.8/bin/nvcc" <<'NVCC'
#!/bin/sh
echo "nvcc: NVIDIA (R) Cuda compiler driver (slm.edge test stand-in)"
echo "Cuda compilation tools, release 12.8, V12.8.93"
NVCC
chmod 0755 "$pkg/usr/local/cuda-12.8/bin/nvcc"
dpkg-deb --root-owner-group -Zgzip --build "$pkg" "$repo/$deb" > /dev/null

cd "$repo"
{
  dpkg-deb -f "$deb"
  echo "Filename: ./$deb"
  echo "Size: $(stat -c %s "$deb")"
  echo "SHA256: $(sha256sum "$deb" | cut -d' ' -f1)"
  echo
} > Packages
{
  echo "Origin: NVIDIA"
  echo "Label: NVIDIA CUDA"
  echo "Date: $(LC_ALL=C date -u '+%a, %d %b %Y %H:%M:%S UTC')"
  echo "SHA256:"
  printf ' %s %s Packages\n' "$(sha256sum Packages | cut -d' ' -f1)" "$(stat -c %s Packages)"
} > Release
gpg --batch --yes --clearsign --output InRelease Release
echo "$repo"
