#!/bin/sh
# Fetch and unpack the guest kernel into OUT (vm-images/kernel.sh OUT), from Debian packages
# only: the kernel image package that linux-image-amd64 currently depends on (resolved, never
# hard-coded, so the build follows the archive), downloaded with `apt-get download`,
# unpacked with dpkg-deb (nothing is installed), depmod'ed, and its bzImage's xz payload
# decompressed into an uncompressed ELF vmlinux that QEMU boots through the PVH entry (about
# 3 s faster under TCG than the bzImage, qemu-harness.md §2).
#
# Result: OUT/<version>/vmlinux, OUT/<version>/lib/modules/<version>/ (with modules.dep) and
# OUT/current (the version, one line, rewritten on every run: make's stamp of this step).  A
# version already unpacked is not fetched again.
# KERNEL_PACKAGE=linux-image-X overrides the resolution.
set -eu
out=${1:?usage: kernel.sh OUTDIR}
meta=${KERNEL_META:-linux-image-amd64}

resolve() {
	apt-cache depends "$meta" 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}
pkg=${KERNEL_PACKAGE:-$(resolve)}
if [ -z "$pkg" ]; then
	echo "vm-image: no package list knows $meta; running apt-get update" >&2
	apt-get update -qq
	pkg=$(resolve)
fi
[ -n "$pkg" ] || { echo "vm-image: cannot resolve the kernel package of $meta" >&2; exit 1; }
ver=${pkg#linux-image-}
dir=$out/$ver

if [ ! -f "$dir/.complete" ]; then
	echo "vm-image: fetching $pkg" >&2
	mkdir -p "$out"
	tmp=$(mktemp -d "$out/.fetch.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	chmod 755 "$tmp"
	# apt drops privileges to _apt for downloads when it can write there.
	(cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >/dev/null)
	deb=$(ls "$tmp"/*.deb)
	mkdir -p "$tmp/root"
	dpkg-deb -x "$deb" "$tmp/root"
	depmod -b "$tmp/root" "$ver"
	bz=$tmp/root/boot/vmlinuz-$ver
	[ -f "$bz" ] || { echo "vm-image: $pkg has no boot/vmlinuz-$ver" >&2; exit 1; }
	# The bzImage carries the kernel as one xz stream: find its magic (FD 37 7A 58 5A 00) and
	# decompress that stream alone (--single-stream ignores what follows it).
	off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$bz" | head -n 1 | cut -d: -f1)
	[ -n "$off" ] || { echo "vm-image: no xz payload in $bz" >&2; exit 1; }
	tail -c +"$((off + 1))" "$bz" | xz -dc --single-stream >"$tmp/vmlinux"
	[ "$(head -c 4 "$tmp/vmlinux" | od -An -c | tr -d ' ')" = '177ELF' ] ||
		{ echo "vm-image: the payload of $bz is not an ELF image" >&2; exit 1; }
	# QEMU boots an ELF kernel only through the PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY).
	readelf -n "$tmp/vmlinux" | grep -q 'Xen.*0x00000012' ||
		{ echo "vm-image: vmlinux has no PVH entry note (CONFIG_PVH)" >&2; exit 1; }
	rm -rf "$dir"
	mkdir -p "$dir/lib/modules"
	mv "$tmp/vmlinux" "$dir/vmlinux"
	mv "$tmp/root/lib/modules/$ver" "$dir/lib/modules/$ver"
	touch "$dir/.complete"
fi
echo "$ver" >"$out/current.tmp"
mv "$out/current.tmp" "$out/current"
