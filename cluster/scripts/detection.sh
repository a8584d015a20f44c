#!/usr/bin/env bash
# Measures membership failure detection on loopback with real processes:
# for each trial, three `tickroom serve` nodes form a cluster; one is
# killed with SIGKILL (or stopped with SIGSTOP for STALL seconds and
# continued) and the other two nodes' logs tell when they declared it
# dead. Prints one line per trial and per observer.
#
#   cluster/scripts/detection.sh [TRIALS] [STALL]
#
# TRIALS (default 5) kill trials; then, if STALL is set (seconds, e.g.
# 1), as many stall trials. Stops only the processes it started.
set -euo pipefail
cd "$(dirname "$0")/../.."
trials=${1:-5}
stall=${2:-}
dir=$(mktemp -d)
bin=$dir/tickroom
go build -o "$bin" ./cmd/tickroom
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	rm -rf "$dir"
}
trap cleanup EXIT

start() { # name gossip-port game-port admin-port [seed]
	local extra=()
	[ -n "${5:-}" ] && extra=(--join "127.0.0.1:$5")
	"$bin" serve --node-name "$1" --gossip-listen "127.0.0.1:$2" --listen "127.0.0.1:$3" \
		--admin-listen "127.0.0.1:$4" --log-format json "${extra[@]}" >"$dir/$1.log" 2>&1 &
	pids+=($!)
	last=$!
}

trial() { # kind n
	local base=$((17000 + $2 * 10))
	rm -f "$dir"/*.log
	pids=()
	start a $base $((base + 1)) $((base + 2))
	sleep 0.3
	start b $((base + 3)) $((base + 4)) $((base + 5)) $base
	start c $((base + 6)) $((base + 7)) $((base + 8)) $base
	local victim=$last
	sleep 3 # formed
	local t0
	t0=$(date +%s.%N)
	if [ "$1" = kill ]; then
		kill -9 "$victim" || echo "trial $2: the victim had already exited"
		sleep 6
	else
		kill -STOP "$victim" || { echo "trial $2: the victim had already exited:"; tail -3 "$dir/c.log"; }
		sleep "$stall"
		kill -CONT "$victim" || true
		sleep 6
	fi
	for obs in a b; do
		python3 - "$dir/$obs.log" "$t0" "$1" "$obs" <<'PY'
import json, sys, datetime
path, t0, kind, obs = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
seen = None
for line in open(path):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    if r.get("msg") == "member gone" and str(r.get("member", "")).startswith("c-"):
        t = datetime.datetime.fromisoformat(r["time"].replace("Z", "+00:00")).timestamp()
        seen = t - t0
        break
print(f"{kind:5s} observer {obs}: " + ("declared dead after %.2f s" % seen if seen is not None else "never declared dead"))
PY
	done
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}

for i in $(seq 1 "$trials"); do trial kill "$i"; done
if [ -n "$stall" ]; then
	for i in $(seq 1 "$trials"); do trial stall "$((i + trials))"; done
fi
