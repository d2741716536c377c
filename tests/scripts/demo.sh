#!/bin/sh
# ferry demo (today's best): ferryctl plays the host, spawns a real ferry-gcs as a local
# process over hybrid vsock (unix sockets), and runs busybox containers through it with crun,
# over the GCS bridge protocol.  Step 5 changes the host process under a running container
# (--hop-every) and checks that its output arrives exactly once.  A real VM migration replaces
# this in later work.
set -eu
B=${BUILD:-build}
work=$(mktemp -d /tmp/ferry-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
sh tests/scripts/mkrootfs.sh "$B/rootfs"
rootfs=$(cd "$B/rootfs" && pwd)
run() {
	# exec (in the background case) so that a signal to $! reaches ferryctl itself
	${exec_run:+exec} "$B/ferryctl" gcs-run --transport "hybrid:$work/v.sock" --gcs "$B/ferry-gcs" \
		--gcs-root "$work/gcs" --gcs-state-dir "$work/state" --private-cgroup2 \
		--timeout 20000 "$@"
}
echo "== 1. a container prints and exits with 3 (exit code is relayed)"
rc=0
run --rootfs "$rootfs" -- sh -c 'echo "hello from a crun container, pid $$ in its namespace"; uname -a; exit 3' || rc=$?
echo "   ferryctl exit code: $rc"
[ "$rc" -eq 3 ]
echo "== 2. stdin round trip through the guest agent"
printf 'ferry\ncarries\nstdin\n' | run -i --rootfs "$rootfs" -- sh -c 'tr a-z A-Z'
echo "== 3. a process in the utility VM itself (null container id), with a terminal"
run --uvm -t -- sh -c 'tty; stty size'
echo "== 4. SIGTERM to ferryctl is forwarded to the container's init, which exits 143"
(exec_run=1 run --rootfs "$rootfs" -- sh -c 'trap "echo init got SIGTERM; exit 143" TERM; echo ready; while :; do sleep 0.1; done') &
pid=$!
sleep 2
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
echo "   ferryctl exit code: $rc"
[ "$rc" -eq 143 ]
echo "== 5. the host changes under a running container: a new host process every 500 ms"
echo "   (the container prints line 1..300, one every 10 ms; each hop: cut, export the state,"
echo "   a forked host adopts it and takes the same terminal fds; the old host exits)"
n=300
{
	rc=0
	run --hop-every 500 --rootfs "$rootfs" -- sh -c \
		"i=1; while [ \$i -le $n ]; do echo \"line \$i\"; i=\$((i+1)); usleep 10000; done; exit 5" \
		2>"$work/hop.err" || rc=$?
	echo "$rc" >"$work/hop.rc"
} | awk -v n="$n" -v res="$work/hop.res" '
	$1 != "line" || $2 != seen + 1 { bad++; if (bad <= 5) printf "   unexpected after line %d: %s\n", seen, $0 }
	$1 == "line" && $2 == seen + 1 { seen++ }
	END { print (bad == 0 && seen == n) ? "ok" : "bad", seen, NR > res }'
sed 's/^/   /' "$work/hop.err"
read -r verdict seen total <"$work/hop.res"
rc=$(cat "$work/hop.rc")
hops=$(grep -c '^ferryctl: hop [0-9]*: host pid' "$work/hop.err" || true)
echo "   ferryctl exit code: $rc (the last host's), $total lines, $seen in order"
[ "$verdict" = ok ] && [ "$rc" -eq 5 ] && [ "$hops" -ge 3 ]
echo "   every line exactly once across $((hops + 1)) host processes"
echo "demo: ok"
