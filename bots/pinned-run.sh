#!/usr/bin/env bash
# pinned-run.sh: one quick pinned measurement of a tickroom binary: the
# server on CPU 0, `tickroom bots` (from the same binary, or BOTS) on CPU 1,
# 127.0.0.1 only. Prints the server's CPU per player-tick, its context
# switches per second and threads (from /proc), and the bots' gap, input
# latency and snapshot rate. For A/B comparisons run it alternately on two
# binaries in one sitting; bots/capacity.sh PHASES=pinned is the full
# benchmark against the floor.
#
#   bots/pinned-run.sh BIN PLAYERS SECONDS [extra tickroom serve flags...]
#   bots/pinned-run.sh /tmp/tickroom-a 160 12 --read-mode arrival
set -euo pipefail
(($# >= 3)) || { echo "usage: bots/pinned-run.sh BIN PLAYERS SECONDS [serve flags]" >&2; exit 2; }
bin=$1 n=$2 secs=$3
shift 3
bots=${BOTS:-$bin}
[[ $n =~ ^[0-9]+$ && $secs =~ ^[0-9]+$ ]] || { echo "PLAYERS and SECONDS must be whole numbers" >&2; exit 2; }
tmp=$(mktemp -d)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT
taskset -c 0 "$bin" serve --listen 127.0.0.1:0 --admin-listen "" "$@" 2>"$tmp/serve.log" &
spid=$!
pids+=("$spid")
url=
for ((i = 0; i < 200; i++)); do
	url=$(sed -n 's/.*msg="tickroom serving".* url=\([^ ]*\).*/\1/p' "$tmp/serve.log")
	[[ -n $url ]] && break
	sleep 0.05
done
[[ $url == ws://127.0.0.1:*/ws ]] || { echo "no server URL; see:" >&2; cat "$tmp/serve.log" >&2; exit 1; }
taskset -c 1 "$bots" bots --url "$url" --players "$n" --room-size 16 --duration "$((secs + 8))s" --ramp 500 \
	--json "$tmp/bots.json" >"$tmp/bots.out" 2>&1 &
bpid=$!
pids+=("$bpid")
cpu() { awk '{ print $14 + $15 }' "/proc/$spid/stat"; }
switches() { cat /proc/"$spid"/task/*/status | awk '/ctxt_switches/ { s += $2 } END { print s }'; }
sleep 6 # the ramp and a warm-up
t0=$(cpu) c0=$(switches)
sleep "$secs"
t1=$(cpu) c1=$(switches)
threads=$(awk '/^Threads:/ { print $2 }' "/proc/$spid/status")
wait "$bpid" || { echo "bots failed:" >&2; cat "$tmp/bots.out" >&2; exit 1; }
python3 - "$tmp/bots.json" "$bin" "$n" "$secs" "$((t1 - t0))" "$(getconf CLK_TCK)" "$((c1 - c0))" "$threads" <<'PY'
import json, sys
path, name, n, secs, ticks, hz, cs, threads = sys.argv[1:]
d = json.load(open(path))
n, secs = int(n), int(secs)
us = int(ticks) / int(hz) / secs * 1e6 / (n * 60)
print(f"{name} players={n} us/player-tick={us:.2f} ctx-switches/s={int(cs) // secs} threads={threads} "
      f"gap-p99={d['snapshot_gap_ms']['p99']:.1f}ms input-p99={d['input_latency_ms']['p99']:.1f}ms "
      f"snapshots/s={d['snapshots_per_player_s']:.2f} errors={d['errors']}")
PY
