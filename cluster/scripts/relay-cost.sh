#!/usr/bin/env bash
# relay-cost.sh: what the proxy hop costs. Two tickroom nodes on 127.0.0.1
# form a cluster: a host (rooms) and a router (--max-rooms 0 --route
# proxy), both pinned to CPU 0; `tickroom bots` on CPU 1 runs PLAYERS bots
# first straight at the host (direct), then through the router (relayed),
# alternating ROUNDS times. Prints each run's host and router CPU per
# player-tick (from /proc) and the bots' RTT, input latency and gap, so
# that the router's CPU per relayed player-tick and the added latency can
# be read as differences within one sitting.
#
#   cluster/scripts/relay-cost.sh [PLAYERS] [SECONDS] [ROUNDS]
#
# ROUTER_FLAGS adds serve flags to the router (e.g. --read-mode arrival).
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-320} secs=${2:-12} rounds=${3:-2}
tmp=$(mktemp -d)
bin=$tmp/tickroom
go build -o "$bin" ./cmd/tickroom
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT
waitfor() { # log regexp-group
	local v=
	for ((i = 0; i < 200; i++)); do
		v=$(sed -n "$2" "$1")
		[[ -n $v ]] && { echo "$v"; return; }
		sleep 0.05
	done
	echo "nothing in $1:" >&2; cat "$1" >&2; exit 1
}
taskset -c 0 "$bin" serve --node-name host --listen 127.0.0.1:0 --admin-listen "" --gossip-listen 127.0.0.1:0 2>"$tmp/host.log" &
hpid=$!; pids+=("$hpid")
hurl=$(waitfor "$tmp/host.log" 's/.*msg="tickroom serving".* url=\([^ ]*\).*/\1/p')
seed=$(waitfor "$tmp/host.log" 's/.*msg="cluster gossip started".* gossip=\([^ ]*\).*/\1/p')
taskset -c 0 "$bin" serve --node-name router --listen 127.0.0.1:0 --admin-listen "" --gossip-listen 127.0.0.1:0 \
	--join "$seed" --max-rooms 0 --route proxy ${ROUTER_FLAGS:-} 2>"$tmp/router.log" &
rpid=$!; pids+=("$rpid")
rurl=$(waitfor "$tmp/router.log" 's/.*msg="tickroom serving".* url=\([^ ]*\).*/\1/p')
sleep 3 # the cluster forms and the host's readiness is gossiped
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
run() { # label url
	taskset -c 1 "$bin" bots --url "$2" --players "$n" --room-size 16 --duration "$((secs + 8))s" --ramp 500 \
		--json "$tmp/bots.json" >"$tmp/bots.out" 2>&1 &
	local bpid=$!
	sleep 6
	local h0 r0 h1 r1
	h0=$(cpu "$hpid") r0=$(cpu "$rpid")
	sleep "$secs"
	h1=$(cpu "$hpid") r1=$(cpu "$rpid")
	wait "$bpid" || { echo "bots failed:" >&2; cat "$tmp/bots.out" >&2; exit 1; }
	python3 - "$tmp/bots.json" "$1" "$n" "$secs" "$((h1 - h0))" "$((r1 - r0))" "$(getconf CLK_TCK)" <<'PY'
import json, sys
path, label, n, secs, h, r, hz = sys.argv[1:]
d = json.load(open(path))
per = lambda t: int(t) / int(hz) / int(secs) * 1e6 / (int(n) * 60)
print(f"{label:8s} players={n} host-us/player-tick={per(h):.2f} router-us/player-tick={per(r):.2f} "
      f"rtt-p50={d['rtt_ms']['p50']:.2f}ms input-p50={d['input_latency_ms']['p50']:.1f}ms "
      f"input-p99={d['input_latency_ms']['p99']:.1f}ms gap-p99={d['snapshot_gap_ms']['p99']:.1f}ms "
      f"snapshots/s={d['snapshots_per_player_s']:.2f} errors={d['errors']}")
PY
	sleep 2 # the bots' seats are released before the next run
}
for ((k = 0; k < rounds; k++)); do
	run direct "$hurl"
	run relayed "$rurl"
done
