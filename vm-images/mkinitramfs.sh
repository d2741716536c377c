#!/bin/sh
# Build the guest initramfs (vm-images/mkinitramfs.sh KERNEL_OUT GCS OUT, KERNEL_OUT being
# what vm-images/kernel.sh made: the version in KERNEL_OUT/current): an
# uncompressed newc cpio (the kernel unpacks it faster under TCG than any compressed one)
# holding busybox-static with its applet links, crun with the shared libraries it needs
# (found with ldd), the static ferry-gcs, vm-images/init, and the kernel modules of
# vm-images/modules.list with their dependencies, in load order, listed in
# /etc/ferry/modules.{all,hyperv}.  File times are zeroed and entries sorted, so the same
# inputs give the same bytes.
set -eu
kout=$(cd "${1:?usage: mkinitramfs.sh KERNEL_OUT GCS OUT}" && pwd)
gcs=${2:?}
out=${3:?}
ver=$(cat "$kout/current")
kdir=$kout/$ver
here=$(dirname "$0")
bb=${BUSYBOX:-/bin/busybox}
crun=${CRUN:-$(command -v crun)}
[ -x "$bb" ] || { echo "mkinitramfs: $bb missing (busybox-static)" >&2; exit 1; }
[ -x "$crun" ] || { echo "mkinitramfs: crun missing" >&2; exit 1; }
file -L "$gcs" | grep -q 'statically linked' ||
	{ echo "mkinitramfs: $gcs is not static (build without SAN=1)" >&2; exit 1; }

tmp=$(mktemp -d "$out.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
mkdir -p "$root"
for d in bin sbin usr/bin usr/sbin proc sys dev run tmp etc/ferry lib/modules root var/tmp; do
	mkdir -p "$root/$d"
done
cp "$bb" "$root/bin/busybox"
for applet in $("$bb" --list-full); do
	[ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done
cp "$gcs" "$root/bin/ferry-gcs"
strip -s "$root/bin/ferry-gcs" 2>/dev/null || true
cp "$crun" "$root/usr/bin/crun"
# crun's shared libraries and the dynamic loader, at the paths ldd names.
ldd "$crun" | awk '/=> \// { print $3 } /^\t\/lib/ { print $1 }' | while read -r lib; do
	mkdir -p "$root$(dirname "$lib")"
	cp -L "$lib" "$root$lib"
done
install -m 0755 "$here/init" "$root/init"
echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"

# Modules: resolve each group's dependencies in load order, without duplicates.
mods=$kdir/lib/modules/$ver
for group in all hyperv; do
	names=$(sed -n "s/^$group://p" "$here/modules.list")
	for m in $names; do
		modprobe -d "$kdir" -S "$ver" --show-depends "$m" | awk '$1 == "insmod" { print $2 }'
	done | awk '!seen[$0]++' | while read -r ko; do
		rel=/lib/modules/$ver/${ko#"$mods"/}
		mkdir -p "$root$(dirname "$rel")"
		cp "$ko" "$root$rel"
		echo "$rel"
	done >"$root/etc/ferry/modules.$group"
done

find "$root" -exec touch -h -d @0 {} +
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --reproducible --quiet) >"$tmp/initrd.cpio"
mv "$tmp/initrd.cpio" "$out"
