#!/bin/sh
# Fetch and cross-build the libraries ferry's Windows build links (jansson, protobuf-c runtime,
# cmocka) from Debian's source packages, and unpack libev's source for embedding.  Everything
# lives under OUTDIR (the build directory's deps/): a private apt configuration whose deb-src
# entries are derived from the system's own apt sources (the machine's /etc/apt is only read),
# the unpacked sources, an install prefix, and one stamp per dependency.  A dependency whose
# stamp exists is not fetched or built again, so a warm cache costs nothing.
#
#   usage: win-deps.sh OUTDIR
#   env:   MINGW_HOST (default x86_64-w64-mingw32), JOBS (default 2)
set -eu

OUT=${1:?usage: win-deps.sh OUTDIR}
HOST=${MINGW_HOST:-x86_64-w64-mingw32}
JOBS=${JOBS:-2}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
APTDIR="$OUT/apt"
SRC="$OUT/src"
PREFIX="$OUT/prefix"
STAMP="$OUT/stamp"
LOG="$OUT/log"
mkdir -p "$SRC" "$PREFIX" "$STAMP" "$LOG"

say() { echo "win-deps: $*"; }

# ---- private apt configuration --------------------------------------------------------------

# Print the system's apt sources with every binary entry turned into a source entry: one-line
# "deb ..." lines become "deb-src ...", deb822 stanzas get "Types: deb-src".
derive_sources() {
	eval "$(apt-config shell SL Dir::Etc::sourcelist/f SP Dir::Etc::sourceparts/d)"
	for f in "$SL" "$SP"*.list; do
		[ -f "$f" ] || continue
		sed -n 's/^[[:space:]]*deb\([[:space:]]\)/deb-src\1/p' "$f"
	done >"$APTDIR/sources.list"
	mkdir -p "$APTDIR/sources.list.d"
	rm -f "$APTDIR/sources.list.d/"*.sources
	n=0
	for f in "$SP"*.sources; do
		[ -f "$f" ] || continue
		n=$((n + 1))
		awk '
			/^[Tt]ypes:/ { if ($0 ~ /[[:space:]]deb([[:space:]]|$)/) print "Types: deb-src"; else print; next }
			{ print }
		' "$f" >"$APTDIR/sources.list.d/$n.sources"
	done
}

apt_private() {
	apt-get -q \
		-o Dir::Etc::sourcelist="$APTDIR/sources.list" \
		-o Dir::Etc::sourceparts="$APTDIR/sources.list.d" \
		-o Dir::State="$APTDIR/state" \
		-o Dir::Cache="$APTDIR/cache" \
		-o APT::Sandbox::User="$(id -un)" \
		"$@"
}

apt_ready=""
apt_prepare() {
	[ -n "$apt_ready" ] && return 0
	mkdir -p "$APTDIR/state/lists/partial" "$APTDIR/cache/archives/partial"
	derive_sources
	say "apt-get update (private deb-src lists)"
	# An unreachable or source-less entry only costs its own index; apt-get source reports
	# clearly if the package is then missing.
	apt_private update >"$LOG/apt-update.log" 2>&1 || say "apt-get update reported errors (see $LOG/apt-update.log)"
	apt_ready=1
}

# Unpack the Debian source package $1 into $SRC/$1 (patches applied by dpkg-source).
fetch() {
	pkg=$1
	[ -d "$SRC/$pkg" ] && return 0
	apt_prepare
	say "apt-get source $pkg"
	rm -rf "$SRC/tmp-$pkg"
	mkdir -p "$SRC/tmp-$pkg"
	(cd "$SRC/tmp-$pkg" && apt_private source "$pkg") >"$LOG/fetch-$pkg.log" 2>&1 || {
		cat "$LOG/fetch-$pkg.log"
		say "cannot fetch the source package $pkg"
		exit 1
	}
	dir=$(find "$SRC/tmp-$pkg" -mindepth 1 -maxdepth 1 -type d | head -1)
	[ -n "$dir" ] || { say "apt-get source $pkg unpacked nothing"; exit 1; }
	mv "$dir" "$SRC/$pkg"
	rm -rf "$SRC/tmp-$pkg"
}

# ---- the builds -----------------------------------------------------------------------------

TOOLCHAIN="$OUT/mingw.cmake"
cat >"$TOOLCHAIN" <<EOF
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_C_COMPILER $HOST-gcc)
set(CMAKE_RC_COMPILER $HOST-windres)
set(CMAKE_FIND_ROOT_PATH /usr/$HOST $PREFIX)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
EOF

cmake_build() {
	name=$1
	shift
	b="$OUT/obj/$name"
	rm -rf "$b"
	mkdir -p "$b"
	(cd "$b" && cmake "$SRC/$name" -DCMAKE_TOOLCHAIN_FILE="$TOOLCHAIN" \
		-DCMAKE_INSTALL_PREFIX="$PREFIX" -DCMAKE_BUILD_TYPE=Release "$@" &&
		make -j"$JOBS" && make install) >"$LOG/build-$name.log" 2>&1 || {
		tail -30 "$LOG/build-$name.log"
		say "building $name failed (log: $LOG/build-$name.log)"
		exit 1
	}
}

build_jansson() {
	fetch jansson
	say "cross-building jansson"
	cmake_build jansson -DJANSSON_BUILD_SHARED_LIBS=OFF -DJANSSON_BUILD_DOCS=OFF \
		-DJANSSON_EXAMPLES=OFF -DJANSSON_WITHOUT_TESTS=ON
}

build_protobuf_c() {
	fetch protobuf-c
	say "cross-building protobuf-c (runtime only)"
	b="$OUT/obj/protobuf-c"
	rm -rf "$b"
	mkdir -p "$b"
	(cd "$b" && "$SRC/protobuf-c/configure" --host="$HOST" --prefix="$PREFIX" \
		--disable-protoc --disable-shared --enable-static &&
		make -j"$JOBS" && make install) >"$LOG/build-protobuf-c.log" 2>&1 || {
		tail -30 "$LOG/build-protobuf-c.log"
		say "building protobuf-c failed (log: $LOG/build-protobuf-c.log)"
		exit 1
	}
}

build_cmocka() {
	fetch cmocka
	say "cross-building cmocka (static)"
	cmake_build cmocka -DBUILD_SHARED_LIBS=OFF -DWITH_STATIC_LIB=ON -DWITH_EXAMPLES=OFF \
		-DUNIT_TESTING=OFF
}

# libev is not built here: ferry compiles ev.c itself with its own configuration (ev.pod,
# "embedding"), so only the source is needed.
build_libev() {
	fetch libev
	[ -f "$SRC/libev/ev.c" ] || { say "libev source has no ev.c"; exit 1; }
}

for dep in jansson protobuf-c cmocka libev; do
	[ -f "$STAMP/$dep" ] && continue
	fn=build_$(echo "$dep" | tr - _)
	$fn
	date -u +%Y-%m-%dT%H:%M:%SZ >"$STAMP/$dep"
done
