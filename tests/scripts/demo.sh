#!/bin/sh
# The best demonstration available today; replaced by a real VM migration in later work.
set -eu
B=${BUILD:-build}
echo "ferry demo: unit tests of the common library"
for t in "$B"/tests/unit/test_*; do "$t"; done
