#!/bin/sh
# Build an OCI image archive of a busybox-static rootfs, for a private containerd in tests:
# an OCI image layout (oci-layout, index.json, blobs/sha256/ holding one uncompressed layer
# tar, the image config and the manifest) packed as OUT (a tar), its manifest annotated
# io.containerd.image.name=NAME so that `ctr images import --base-name NAME OUT` names it.
# The layer is built reproducibly (sorted, owner 0, mtime 0) from tests/scripts/mkrootfs.sh's
# tree; OUT is written next to itself and renamed into place, so concurrent runs never read
# half an archive.  Usage: mkimage.sh OUT NAME [ROOTFS]
set -eu
out=${1:?usage: mkimage.sh OUT NAME [ROOTFS]}
name=${2:?usage: mkimage.sh OUT NAME [ROOTFS]}
rootfs=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ferry-mkimage.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
if [ -z "$rootfs" ]; then
	rootfs=$tmp/rootfs
	sh "$here/mkrootfs.sh" "$rootfs"
fi
case $(uname -m) in
x86_64) arch=amd64 ;;
aarch64) arch=arm64 ;;
*) arch=$(uname -m) ;;
esac
blobs=$tmp/layout/blobs/sha256
mkdir -p "$blobs"

# blob FILE: move FILE into blobs/ under its digest; prints "DIGEST SIZE".
blob() {
	d=$(sha256sum "$1" | cut -d' ' -f1)
	s=$(stat -c %s "$1")
	mv "$1" "$blobs/$d"
	echo "$d $s"
}

tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --exclude=./.ferry-rootfs \
	-C "$rootfs" -cf "$tmp/layer" .
set -- $(blob "$tmp/layer")
layer=$1 layer_size=$2

cat >"$tmp/config" <<JSON
{"architecture":"$arch","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:$layer"]},"history":[{"created_by":"ferry tests/scripts/mkimage.sh"}]}
JSON
set -- $(blob "$tmp/config")
config=$1 config_size=$2

cat >"$tmp/manifest" <<JSON
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:$config","size":$config_size},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:$layer","size":$layer_size}]}
JSON
set -- $(blob "$tmp/manifest")
manifest=$1 manifest_size=$2

cat >"$tmp/layout/index.json" <<JSON
{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:$manifest","size":$manifest_size,"platform":{"architecture":"$arch","os":"linux"},"annotations":{"io.containerd.image.name":"$name","org.opencontainers.image.ref.name":"latest"}}]}
JSON
echo '{"imageLayoutVersion":"1.0.0"}' >"$tmp/layout/oci-layout"

mkdir -p "$(dirname "$out")"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$tmp/layout" \
	-cf "$out.tmp.$$" oci-layout index.json blobs
mv -f "$out.tmp.$$" "$out"
