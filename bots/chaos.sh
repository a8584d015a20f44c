#!/usr/bin/env bash
# chaos.sh: rooms that outlive their node (issue 12), as a user runs it.
#
# Starts NODES `tickroom serve` processes on 127.0.0.1 in one cluster (with a
# cluster key, so rooms are checkpointed, fenced and handed off), runs
# `tickroom bots` through the last node (its seeds: all of them), and then,
# while the bots play:
#   at KILL_AT    kill -9 the first node that hosts rooms  (failover)
#   at DRAIN_AT   POST /admin/drain to the next one          (live hand-off; it exits)
#   at STALL_AT   SIGSTOP the next one for STALL seconds     (a node paused by the
#                 OS: it loses its leases, its rooms are taken over, and on
#                 SIGCONT it sends its players on)
# and prints the bots' report: drops and resumes, seats lost, the longest
# outage (drop to resume: the failover's kill-to-resume time), the game time a
# failover took back, the snapshot gaps (a hand-off shows as a gap, not a
# drop), and errors. Every process it starts is stopped by PID on exit.
#
# Usage: bots/chaos.sh            (from anywhere; about a minute)
#        NODES=5 PLAYERS=64 ROOM_SIZE=8 DURATION=45s bots/chaos.sh
set -euo pipefail
cd "$(dirname "$0")/.."

NODES=${NODES:-5}
PLAYERS=${PLAYERS:-48}
ROOM_SIZE=${ROOM_SIZE:-8}
DURATION=${DURATION:-45}
KILL_AT=${KILL_AT:-10}
DRAIN_AT=${DRAIN_AT:-20}
STALL_AT=${STALL_AT:-30}
STALL=${STALL:-4}
BASE=${BASE:-19100}
KEY=${KEY:-00112233445566778899aabbccddeeff}

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT

go build -o "$work/tickroom" ./cmd/tickroom

game() { echo "ws://127.0.0.1:$((BASE + $1))/ws"; }
admin() { echo "http://127.0.0.1:$((BASE + 100 + $1))"; }
seeds=""
for i in $(seq 1 "$NODES"); do seeds="$seeds${seeds:+,}$(game "$i")"; done

for i in $(seq 1 "$NODES"); do
	join=()
	[ "$i" -gt 1 ] && join=(--join "127.0.0.1:$((BASE + 201))")
	"$work/tickroom" serve --node-name "n$i" --listen "127.0.0.1:$((BASE + i))" \
		--admin-listen "127.0.0.1:$((BASE + 100 + i))" --gossip-listen "127.0.0.1:$((BASE + 200 + i))" \
		--cluster-key "$KEY" "${join[@]}" --log-format json >"$work/n$i.log" 2>&1 &
	pids+=($!)
	node_pid[$i]=$!
done
for i in $(seq 1 "$NODES"); do
	until curl -fs "$(admin "$i")/readyz" >/dev/null; do sleep 0.1; done
done
sleep 1 # leases between every pair

"$work/tickroom" bots --url "$(game "$NODES")" --seeds "$seeds" --players "$PLAYERS" --room-size "$ROOM_SIZE" \
	--duration "${DURATION}s" --ramp 100 --json "$work/report.json" >"$work/bots.txt" 2>&1 &
bots=$!
pids+=($bots)
start=$(date +%s.%N)
at() { # wait until $1 seconds after the bots started
	local now; now=$(date +%s.%N)
	sleep "$(awk -v t="$1" -v n="$now" -v s="$start" 'BEGIN { d = t - (n - s); print (d > 0 ? d : 0) }')"
}
used=" $NODES " # the bots' entry node is never a victim
hosting() { # victim= the node, not yet a victim, that hosts the most rooms
	local best="" most=-1
	for i in $(seq 1 $((NODES - 1))); do
		case "$used" in *" $i "*) continue ;; esac
		n=$(curl -fs "$(admin "$i")/admin/rooms" 2>/dev/null | grep -o '"total":[0-9]*' | cut -d: -f2 || true)
		if [ "${n:-0}" -gt "$most" ]; then best=$i most=${n:-0}; fi
	done
	used="$used$best "
	victim=$best
}

at "$KILL_AT"
hosting; k=$victim
rooms_k=$(curl -fs "$(admin "$k")/admin/rooms" | grep -o '"total":[0-9]*' | cut -d: -f2)
echo "t=${KILL_AT}s kill -9 n$k ($rooms_k rooms)"
kill -9 "${node_pid[$k]}"
wait "${node_pid[$k]}" 2>/dev/null || true

at "$DRAIN_AT"
hosting; d=$victim
rooms_d=$(curl -fs "$(admin "$d")/admin/rooms" | grep -o '"total":[0-9]*' | cut -d: -f2)
echo "t=${DRAIN_AT}s drain n$d ($rooms_d rooms)"
curl -fs -X POST "$(admin "$d")/admin/drain" >/dev/null
drain_start=$(date +%s.%N)
while kill -0 "${node_pid[$d]}" 2>/dev/null; do sleep 0.05; done
echo "  n$d exited $(awk -v n="$(date +%s.%N)" -v s="$drain_start" 'BEGIN { printf "%.2f", n - s }') s after the drain began"

at "$STALL_AT"
hosting; s=$victim
echo "t=${STALL_AT}s SIGSTOP n$s for ${STALL}s"
kill -STOP "${node_pid[$s]}"
sleep "$STALL"
kill -CONT "${node_pid[$s]}"

wait "$bots" || true
cat "$work/bots.txt"
echo
echo "failovers, hand-offs, fenced rooms, by node (from their logs):"
for i in $(seq 1 "$NODES"); do
	printf "  n%d: restored %s  handed off %s  received %s  fenced %s\n" "$i" \
		"$(grep -c 'failover: room restored' "$work/n$i.log" || true)" \
		"$(grep -c '"room handed off"' "$work/n$i.log" || true)" \
		"$(grep -c '"room received"' "$work/n$i.log" || true)" \
		"$(grep -c 'room fenced' "$work/n$i.log" || true)"
done
grep -ho '"freeze":[0-9.e+-]*' "$work"/n*.log | cut -d: -f2 | sort -g | awk '{a[NR]=$1} END {if (NR) printf "hand-off freeze (ns): min %s  median %s  max %s over %d hand-offs\n", a[1], a[int((NR+1)/2)], a[NR], NR}'
echo "report: $work/report.json; logs: $work/n*.log"
