#!/bin/sh
# Build a minimal busybox root filesystem for container tests in DIR (idempotent: an existing,
# complete DIR is left alone).  Uses busybox-static (/bin/busybox), one symlink per applet, and
# the directories an OCI runtime mounts over (/proc /dev /sys /tmp ...).  The tree is built
# next to DIR and renamed into place, so concurrent runs never see a half-built rootfs.
set -eu
dir=${1:?usage: mkrootfs.sh DIR}
bb=${BUSYBOX:-/bin/busybox}
[ -f "$dir/.ferry-rootfs" ] && exit 0
[ -x "$bb" ] || { echo "mkrootfs: $bb not found (install busybox-static)" >&2; exit 1; }
file -L "$bb" 2>/dev/null | grep -q 'dynamically linked' &&
	{ echo "mkrootfs: $bb is not static (install busybox-static)" >&2; exit 1; }
mkdir -p "$(dirname "$dir")"
tmp=$(mktemp -d "$dir.tmp.XXXXXX")
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
for d in bin sbin usr/bin usr/sbin proc dev sys tmp etc root run var/tmp; do
	mkdir -p "$tmp/$d"
done
chmod 1777 "$tmp/tmp" "$tmp/var/tmp"
cp "$bb" "$tmp/bin/busybox"
for applet in $("$bb" --list); do
	[ "$applet" = busybox ] && continue
	[ -e "$tmp/bin/$applet" ] || ln -s busybox "$tmp/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$tmp/etc/passwd"
echo 'root:x:0:' >"$tmp/etc/group"
touch "$tmp/.ferry-rootfs"
if mv -T "$tmp" "$dir" 2>/dev/null; then
	trap - EXIT
fi
[ -f "$dir/.ferry-rootfs" ]
