#!/usr/bin/env bash
# abtest.sh: server CPU of two commits, side by side. The machines here are
# shared and noisy, so one run of each says little; this alternates runs of
# the two servers under the same bots (built from B) and reports each pair's
# ratio and their median.
#
# Usage (from anywhere; the script works in the repository root):
#   bots/abtest.sh A B          # any two revisions git knows (HEAD~1, a hash)
#   PAIRS=6 PLAYERS=500 bots/abtest.sh HEAD~1 HEAD
#
# Environment (defaults in brackets): PAIRS [3], PLAYERS [500],
# ROOM_SIZE [16], DURATION [40] seconds per run, WARMUP [10] seconds before
# the server's CPU is sampled, SERVE_FLAGS_A / SERVE_FLAGS_B [""] extra
# `tickroom serve` flags per side, OUT [bench-results/ab-<UTC time>].
# Everything runs on 127.0.0.1. CPU is the server process's utime+stime
# from /proc over [WARMUP, DURATION-2s] of each run.
set -euo pipefail
cd "$(dirname "$0")/.."

die() {
	echo "abtest.sh: $*" >&2
	exit 1
}
(($# == 2)) || die "usage: bots/abtest.sh REV_A REV_B"
PAIRS=${PAIRS:-3} PLAYERS=${PLAYERS:-500} ROOM_SIZE=${ROOM_SIZE:-16}
DURATION=${DURATION:-40} WARMUP=${WARMUP:-10}
for v in PAIRS PLAYERS ROOM_SIZE DURATION WARMUP; do
	[[ ${!v} =~ ^[0-9]+$ && ${!v} -gt 0 ]] || die "$v=${!v} must be a positive integer"
done
((DURATION - 2 - WARMUP >= 5)) || die "DURATION=$DURATION leaves under 5 s to sample after WARMUP=$WARMUP"
OUT=${OUT:-bench-results/ab-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
ulimit -n 65536 2>/dev/null || true

# Only processes started here are stopped, by their PID.
PIDS=()
WORKTREES=()
cleanup() {
	local p w
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for w in "${WORKTREES[@]}"; do git worktree remove --force "$w" 2>/dev/null || true; done
}
trap cleanup EXIT

build() { # build NAME REV: a worktree at REV, built into $OUT/tickroom-NAME; sets BUILT to its short hash
	local tree
	tree=$(mktemp -d)
	WORKTREES+=("$tree")
	git worktree add --quiet --detach "$tree" "$2" || die "no revision $2"
	(cd "$tree" && go build -o "$OUT/tickroom-$1" ./cmd/tickroom) || die "build of $2 failed"
	BUILT=$(git -C "$tree" rev-parse --short HEAD)
}
build a "$1"
REV_A=$BUILT
build b "$2"
REV_B=$BUILT
echo "A = $1 ($REV_A), B = $2 ($REV_B); bots from B; $PAIRS pairs of $DURATION s, $PLAYERS players at 60 Hz in rooms of $ROOM_SIZE" | tee "$OUT/ab.txt"

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
CLK_TCK=$(getconf CLK_TCK)

run() { # run SIDE N: one run against server SIDE; sets US to its µs per player-tick
	local side=$1 n=$2 log=$OUT/serve-$1-$2.log flags url i t0 t1 bots
	flags=SERVE_FLAGS_${side^^}
	# shellcheck disable=SC2086 # the flags are split on purpose
	"$OUT/tickroom-$side" serve --listen 127.0.0.1:0 --admin-listen "" --max-players "$ROOM_SIZE" ${!flags:-} \
		--log-format text 2>"$log" >&2 &
	local spid=$!
	PIDS+=("$spid")
	url=
	for ((i = 0; i < 200; i++)); do
		url=$(sed -n 's/.*msg="tickroom serving".* url=\([^ ]*\).*/\1/p' "$log")
		[[ -z $url ]] || break
		kill -0 "$spid" 2>/dev/null || die "tickroom serve ($side) exited at start; see $log"
		sleep 0.05
	done
	[[ $url == ws://127.0.0.1:*/ws ]] || die "no server URL from $side; see $log"
	"$OUT/tickroom-b" bots --url "$url" --players "$PLAYERS" --room-size "$ROOM_SIZE" --duration "${DURATION}s" \
		--ramp 500 --json "$OUT/bots-$side-$n.json" >"$OUT/bots-$side-$n.out" 2>&1 &
	bots=$!
	PIDS+=("$bots")
	sleep "$WARMUP"
	t0=$(cpu_ticks "$spid")
	sleep $((DURATION - 2 - WARMUP))
	t1=$(cpu_ticks "$spid")
	wait "$bots" || die "bots failed against $side; see $OUT/bots-$side-$n.out"
	kill "$spid" 2>/dev/null || true
	wait "$spid" 2>/dev/null || true
	US=$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v s=$((DURATION - 2 - WARMUP)) -v p="$PLAYERS" \
		'BEGIN { printf "%.2f", d / hz / s * 1e6 / (p * 60) }')
}

ratios=()
for ((n = 1; n <= PAIRS; n++)); do
	# Alternate which side goes first, so that a drift in the machine's
	# speed does not favour one.
	if ((n % 2)); then
		run a "$n" && a=$US
		run b "$n" && b=$US
	else
		run b "$n" && b=$US
		run a "$n" && a=$US
	fi
	r=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", b / a }')
	ratios+=("$r")
	echo "pair $n: A $a µs, B $b µs per player-tick: B/A $r" | tee -a "$OUT/ab.txt"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
echo "median B/A: $median (below 1: B uses less server CPU)" | tee -a "$OUT/ab.txt"
