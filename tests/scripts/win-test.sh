#!/bin/sh
# Run the cross-built Windows test programs under wine, headless, and print the usual closing
# line "N passed, N failed, N skipped" (tests/scripts/run-tests.sh).  The wine prefix lives in
# the build directory ($WIN_BUILD/wineprefix; the first run creates it, a few seconds).  The
# stand-in computecore.dll is installed as the prefix's system32\computecore.dll, which is
# exactly where the HCS backend loads it from on Windows (LoadLibraryExW with
# LOAD_LIBRARY_SEARCH_SYSTEM32), so the production code path is the one tested.
#
#   usage: WIN_BUILD=build-win WINE=wine64 win-test.sh TEST.exe...
set -eu
WIN_BUILD=${WIN_BUILD:-build-win}
WINE=${WINE:-wine64}
mkdir -p "$WIN_BUILD"
WINEPREFIX="$(cd "$WIN_BUILD" && pwd)/wineprefix"
WINEDEBUG=-all
# no Mono or Gecko installers while the prefix is created; our DLL, never a builtin one
WINEDLLOVERRIDES="mscoree,mshtml=;computecore=n"
DISPLAY=
export WINEPREFIX WINEDEBUG WINEDLLOVERRIDES DISPLAY

if [ ! -f "$WINEPREFIX/system.reg" ]; then
	echo "win-test: creating the wine prefix $WINEPREFIX"
	"$WINE" wineboot --init >/dev/null 2>&1 || true
fi
sys32="$WINEPREFIX/drive_c/windows/system32"
if [ -f "$WIN_BUILD/computecore.dll" ]; then
	[ -d "$sys32" ] || { echo "win-test: no system32 in $WINEPREFIX"; exit 1; }
	cp "$WIN_BUILD/computecore.dll" "$sys32/computecore.dll"
fi

rc=0
TEST_RUNNER="$WINE" sh "$(dirname "$0")/run-tests.sh" "$@" || rc=$?
# leave no wineserver behind (it would otherwise linger a few seconds)
ws=$(dirname "$WINE")/wineserver
[ -x "$ws" ] || ws=$(dirname "$WINE")/wineserver64
[ -x "$ws" ] && "$ws" -k 2>/dev/null || true
exit $rc
