#!/bin/sh
# Run test binaries (cmocka), each with a time limit, and print one closing line
# "N passed, N failed, N skipped" counted from cmocka's own summaries.  Exits non-zero when
# any test failed, a binary crashed or timed out, or no test ran at all.  TEST_RUNNER, when set,
# is a command put before each binary (e.g. wine for the cross-built Windows tests).
set -u
pass=0 fail=0 skip=0 broken=""
TEST_TIMEOUT=${TEST_TIMEOUT:-600}
for t in "$@"; do
	out=$(mktemp)
	timeout -k 5 "$TEST_TIMEOUT" ${TEST_RUNNER:-} "$t" >"$out" 2>&1
	rc=$?
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$out" | tail -1)
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$out" | tail -1)
	s=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$out" | tail -1)
	pass=$((pass + ${p:-0})) fail=$((fail + ${f:-0})) skip=$((skip + ${s:-0}))
	if [ "$rc" -ne 0 ] || [ -n "${f:-}" ] || [ -z "${p:-}${s:-}" ]; then
		echo "---- $t (exit $rc)"
		cat "$out"
		[ "$rc" -ne 0 ] && [ -z "${f:-}" ] && broken="$broken $(basename "$t")"
	else
		echo "ok   $(basename "$t"): ${p:-0} passed${s:+, $s skipped}"
		grep -E '^\[  SKIPPED \] [a-z_]' "$out" | sed 's/^/     /'
	fi
	rm -f "$out"
done
if [ -n "$broken" ]; then
	echo "crashed or timed out:$broken"
	fail=$((fail + 1))
fi
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
