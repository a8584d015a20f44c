#!/usr/bin/env bash
# capacity.sh: the capacity benchmark (issue 4). Everything runs on this
# machine over 127.0.0.1, and the phases run one after the other so they
# never share the cores with each other (each shares them with its own load
# generator, as a server shares them with its bots here).
#
#   floor     the floor program (bots/internal/floor): per player and tick,
#             one snapshot-sized frame written and one input frame read per
#             TCP connection, nothing else. No server can use less CPU.
#   tickroom  `tickroom serve` under `tickroom bots` (PLAYERS wandering bots
#             in ROOM_SIZE-player rooms, one input per tick).
#   idle      a fresh `tickroom serve` with IDLE_PLAYERS joined bots that send
#             nothing: server memory per connection.
#   pinned    server CPU against the floor with each process pinned: the
#             server (tickroom serve, or the floor's server) on CPU 0 and its
#             load (the bots, or the floor's clients) on CPU 1, with taskset,
#             at every player count in POINTS, all in one run: at each point
#             tickroom and the floor run one after the other, the order
#             alternating from point to point. The floor's frames are as large
#             as tickroom's snapshots measured at the previous tickroom run
#             (SNAPSHOT_BYTES before the first). Needs taskset and 2 CPUs.
#
# CPU is the process's own accounting (utime+stime in /proc/PID/stat) and
# memory is VmRSS in /proc/PID/status, both read by this script.
#
# Measurement windows (wall clock, from the moment the load generator starts):
#   floor     from WARMUP to DURATION-1s (the floor ticks for DURATION from
#             the moment all its connections are up);
#   tickroom  from PLAYERS/RAMP (the bots' ramp, rounded up) + WARMUP to
#             DURATION-1s (`tickroom bots --duration` includes the ramp);
#   idle      RSS baseline just before the bots start; RSS joined at
#             IDLE_DURATION/2, or later if the server does not yet hold a
#             socket per bot (but no later than IDLE_DURATION-3s); server CPU
#             from there to IDLE_DURATION-1s. Memory per connection divides by
#             the sockets the server holds at that moment (its fd count over
#             the baseline's), which the report gives next to IDLE_PLAYERS.
#
# Usage (from anywhere; the script works in the repository root):
#   bots/capacity.sh
#   PLAYERS=1500 bots/capacity.sh                      # the 1,500-player gap target
#   PHASES=floor PLAYERS=1000 DURATION=20s bots/capacity.sh
#
# Environment (defaults in brackets):
#   PLAYERS [1000]  ROOM_SIZE [16]  TICK_RATE [60]  DURATION [60s]  WARMUP [5s]
#   RAMP [500]      bots connected per second in the tickroom phase
#   IDLE_PLAYERS [10000]  IDLE_DURATION [30s]  IDLE_RAMP [2000]
#   IDLE_TICK_RATE [TICK_RATE]  the idle server's tick rate. Idle players
#                         still get a snapshot every tick, so at 60 Hz the
#                         idle run is a send load too; a low rate isolates
#                         memory from CPU starvation on a small machine.
#   SNAPSHOT_BYTES [90]   floor snapshot payload (16-player arena delta)
#   INPUT_BYTES [8]       floor input payload
#   PHASES ["floor tickroom idle"]  any subset of floor, tickroom, idle and
#                         pinned, in any order
#   POINTS ["160 320 640 1000"]  player counts of the pinned phase
#   PINNED_DURATION [25s] each pinned run; measured from the ramp plus
#                         WARMUP to PINNED_DURATION-1s
#   BOTS_FLAGS [""]       extra flags for `tickroom bots` in the tickroom phase
#   SERVE_FLAGS [""]      extra flags for `tickroom serve` (e.g. --cpu-profile FILE)
#   OUT [bench-results/<UTC timestamp>], relative to the repository root
# Durations are whole seconds, written 60, 60s or 1m.
#
# Output in $OUT: capacity.json (every figure), a table on stdout (also in
# capacity.txt), samples.txt (the raw /proc readings), the bots' JSON reports
# and every process's log.
set -euo pipefail

cd "$(dirname "$0")/.."

die() {
	echo "capacity.sh: $*" >&2
	exit 1
}

# secs DURATION prints whole seconds for 60, 60s or 1m.
secs() {
	case $1 in
	*[0-9]m) [[ ${1%m} =~ ^[0-9]+$ ]] && echo $((${1%m} * 60)) && return ;;
	*[0-9]s) [[ ${1%s} =~ ^[0-9]+$ ]] && echo "${1%s}" && return ;;
	*) [[ $1 =~ ^[0-9]+$ ]] && echo "$1" && return ;;
	esac
	die "bad duration $1: want whole seconds, like 60, 60s or 1m"
}

int() { # int NAME VALUE: VALUE must be a positive integer
	[[ $2 =~ ^[0-9]+$ && $2 -gt 0 ]] || die "$1=$2 must be a positive integer"
	echo "$2"
}

PLAYERS=$(int PLAYERS "${PLAYERS:-1000}")
ROOM_SIZE=$(int ROOM_SIZE "${ROOM_SIZE:-16}")
TICK_RATE=$(int TICK_RATE "${TICK_RATE:-60}")
RAMP=$(int RAMP "${RAMP:-500}")
IDLE_PLAYERS=$(int IDLE_PLAYERS "${IDLE_PLAYERS:-10000}")
IDLE_RAMP=$(int IDLE_RAMP "${IDLE_RAMP:-2000}")
IDLE_TICK_RATE=$(int IDLE_TICK_RATE "${IDLE_TICK_RATE:-$TICK_RATE}")
SNAPSHOT_BYTES=$(int SNAPSHOT_BYTES "${SNAPSHOT_BYTES:-90}")
INPUT_BYTES=$(int INPUT_BYTES "${INPUT_BYTES:-8}")
DURATION_S=$(secs "${DURATION:-60s}")
WARMUP_S=$(secs "${WARMUP:-5s}")
IDLE_DURATION_S=$(secs "${IDLE_DURATION:-30s}")
PHASES=${PHASES:-floor tickroom idle}
POINTS=${POINTS:-160 320 640 1000}
PINNED_DURATION_S=$(secs "${PINNED_DURATION:-25s}")
BOTS_FLAGS=${BOTS_FLAGS:-}
SERVE_FLAGS=${SERVE_FLAGS:-}
OUT=${OUT:-bench-results/$(date -u +%Y%m%dT%H%M%SZ)}
END_MARGIN_S=1  # stop measuring this long before the load generator ends
MIN_WINDOW_S=5 # refuse windows shorter than this

has_phase() { [[ " $PHASES " == *" $1 "* ]]; }
for p in $PHASES; do
	case $p in floor | tickroom | idle | pinned) ;; *) die "unknown phase $p in PHASES (want floor, tickroom, idle, pinned)" ;; esac
done

ramp_s() { echo $((($1 + $2 - 1) / $2)); } # ramp_s PLAYERS RATE: seconds, rounded up
need_fds_pinned=0
if has_phase pinned; then
	command -v taskset >/dev/null || die "the pinned phase needs taskset (util-linux)"
	(($(nproc) >= 2)) || die "the pinned phase needs 2 CPUs (server on CPU 0, load on CPU 1); this machine has $(nproc)"
	for n in $POINTS; do
		int POINTS "$n" >/dev/null
		((PINNED_DURATION_S - END_MARGIN_S - WARMUP_S - $(ramp_s "$n" "$RAMP") >= MIN_WINDOW_S)) ||
			die "PINNED_DURATION=${PINNED_DURATION_S}s leaves under ${MIN_WINDOW_S}s to measure at $n players"
		((n + 256 <= need_fds_pinned)) || need_fds_pinned=$((n + 256))
	done
fi
if has_phase floor && ((DURATION_S - END_MARGIN_S - WARMUP_S < MIN_WINDOW_S)); then
	die "DURATION=${DURATION_S}s leaves under ${MIN_WINDOW_S}s to measure after WARMUP=${WARMUP_S}s"
fi
if has_phase tickroom && ((DURATION_S - END_MARGIN_S - WARMUP_S - $(ramp_s "$PLAYERS" "$RAMP") < MIN_WINDOW_S)); then
	die "DURATION=${DURATION_S}s leaves under ${MIN_WINDOW_S}s to measure after the ramp ($(ramp_s "$PLAYERS" "$RAMP")s at RAMP=$RAMP) and WARMUP=${WARMUP_S}s"
fi
if has_phase idle && (($(ramp_s "$IDLE_PLAYERS" "$IDLE_RAMP") + 2 > IDLE_DURATION_S / 2)); then
	die "IDLE_DURATION=${IDLE_DURATION_S}s: the ramp ($(ramp_s "$IDLE_PLAYERS" "$IDLE_RAMP")s at IDLE_RAMP=$IDLE_RAMP) must end 2s before half of it"
fi

# Every process gets a socket per player plus a few files of its own.
need_fds=$((PLAYERS + 256))
has_phase idle && need_fds=$((IDLE_PLAYERS > PLAYERS ? IDLE_PLAYERS + 256 : need_fds))
((need_fds_pinned > need_fds)) && need_fds=$need_fds_pinned
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fds=$(ulimit -n)
[[ $fds == unlimited ]] || ((fds >= need_fds)) ||
	die "open file limit is $fds (hard limit $(ulimit -Hn)); this run needs $need_fds. Raise the hard limit (limits.conf, or ulimit -Hn as root)."

mkdir -p "$OUT"
SAMPLES=$OUT/samples.txt
: >"$SAMPLES"
CLK_TCK=$(getconf CLK_TCK)

# --- processes: everything started here is in PIDS, and only those are killed.
PIDS=()
SLEEP_PID=
stop_pid() { # stop_pid PID: SIGTERM, SIGKILL after 15 s; waits and sets RC to its exit status
	local pid=$1 i
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 150; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
	fi
	wait_rc "$pid"
}
wait_rc() { # wait_rc PID: waits for it, sets RC to its exit status and forgets it (its PID may be reused)
	local p keep=()
	RC=0
	wait "$1" || RC=$?
	for p in "${PIDS[@]}"; do
		if [[ $p != "$1" ]]; then keep+=("$p"); fi
	done
	PIDS=("${keep[@]}")
}
cleanup() {
	local pid
	if [[ -n $SLEEP_PID ]]; then kill "$SLEEP_PID" 2>/dev/null || true; fi
	for pid in "${PIDS[@]}"; do
		if kill -0 "$pid" 2>/dev/null; then stop_pid "$pid"; fi
	done
	return 0
}
trap cleanup EXIT
trap 'echo "capacity.sh: interrupted" >&2; exit 130' INT
trap 'exit 143' TERM

# --- /proc readings
now() { date +%s.%N; }
sleep_until() { # sleep_until T0 SECONDS: sleeps until SECONDS after the instant T0 (from now)
	# In the background, so that a signal to this script is handled at once.
	sleep "$(awk -v t="$1" -v s="$2" -v n="$(now)" 'BEGIN { d = t + s - n; printf "%.3f", (d > 0 ? d : 0) }')" &
	SLEEP_PID=$!
	wait "$SLEEP_PID"
	SLEEP_PID=
}
cpu_ticks() { # utime+stime of PID in clock ticks (fields 14 and 15; the name in field 2 may hold spaces)
	sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }
fd_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l; }
threads() { awk '/^Threads:/ { print $2 }' "/proc/$1/status"; }
sample() { # sample KEY NAME:PID...: appends wall time, and for each process its CPU ticks and RSS
	local key=$1 spec name pid
	shift
	echo "$key.t=$(now)" >>"$SAMPLES"
	for spec in "$@"; do
		name=${spec%%:*} pid=${spec#*:}
		kill -0 "$pid" 2>/dev/null || die "$name (pid $pid) exited before the end of the measurement; see the logs in $OUT"
		{
			echo "$key.$name.cpu=$(cpu_ticks "$pid")"
			echo "$key.$name.rss=$(rss_kib "$pid")"
			echo "$key.$name.hwm=$(hwm_kib "$pid")"
			echo "$key.$name.fds=$(fd_count "$pid")"
			echo "$key.$name.threads=$(threads "$pid")"
		} >>"$SAMPLES"
	done
}
record() { echo "$1=$2" >>"$SAMPLES"; }

# start_server NAME TICK_RATE [CPU]: starts `tickroom serve` on 127.0.0.1
# (pinned to CPU if given) and sets SERVER_PID and SERVER_URL
start_server() {
	local log=$OUT/$1.log i pin=()
	[[ -z ${3:-} ]] || pin=(taskset -c "$3")
	# shellcheck disable=SC2086 # SERVE_FLAGS is split on purpose
	"${pin[@]}" "$OUT/tickroom" serve --listen 127.0.0.1:0 --admin-listen "" --max-players "$ROOM_SIZE" --tick-rate "$2" $SERVE_FLAGS \
		--log-format text 2>"$log" >&2 &
	SERVER_PID=$!
	PIDS+=("$SERVER_PID")
	SERVER_URL=
	for ((i = 0; i < 200; i++)); do
		SERVER_URL=$(sed -n 's/.*msg="tickroom serving".* url=\([^ ]*\).*/\1/p' "$log")
		[[ -n $SERVER_URL ]] && break
		kill -0 "$SERVER_PID" 2>/dev/null || die "tickroom serve exited at start; see $log"
		sleep 0.05
	done
	[[ $SERVER_URL == ws://127.0.0.1:*/ws ]] || die "no ws://127.0.0.1 URL from tickroom serve in 10 s (got '$SERVER_URL'); see $log"
}

# --- build
echo "building into $OUT"
go build -o "$OUT/tickroom" ./cmd/tickroom
go build -o "$OUT/floor" ./bots/internal/floor

record run.start "$(date -u +%Y-%m-%dT%H:%M:%SZ)"

# --- phase floor
if has_phase floor; then
	echo "floor: $PLAYERS connections, ${DURATION_S}s"
	"$OUT/floor" -role server -players "$PLAYERS" -tick-rate "$TICK_RATE" -snapshot-bytes "$SNAPSHOT_BYTES" \
		-duration "${DURATION_S}s" >"$OUT/floor-server.out" 2>"$OUT/floor-server.log" &
	fs_pid=$!
	PIDS+=("$fs_pid")
	addr=
	for ((i = 0; i < 200; i++)); do
		addr=$(awk '/^listening / { print $2 }' "$OUT/floor-server.out")
		[[ -n $addr ]] && break
		kill -0 "$fs_pid" 2>/dev/null || die "floor server exited at start; see $OUT/floor-server.log"
		sleep 0.05
	done
	[[ $addr == 127.0.0.1:* ]] || die "no 127.0.0.1 address from the floor server (got '$addr')"
	# The clients outlive the server by a few seconds: they stop when it closes.
	"$OUT/floor" -role clients -addr "$addr" -players "$PLAYERS" -tick-rate "$TICK_RATE" -input-bytes "$INPUT_BYTES" \
		-duration "$((DURATION_S + 5))s" >"$OUT/floor-clients.out" 2>"$OUT/floor-clients.log" &
	fc_pid=$!
	PIDS+=("$fc_pid")
	t0=$(now)
	sleep_until "$t0" "$WARMUP_S"
	sample floor.s0 "server:$fs_pid" "clients:$fc_pid"
	sleep_until "$t0" "$((DURATION_S - END_MARGIN_S))"
	sample floor.s1 "server:$fs_pid" "clients:$fc_pid"
	wait_rc "$fs_pid"
	record floor.server.exit "$RC"
	wait_rc "$fc_pid"
	record floor.clients.exit "$RC"
fi

# --- phase tickroom
if has_phase tickroom; then
	echo "tickroom: $PLAYERS bots in rooms of $ROOM_SIZE, ${DURATION_S}s, ramp $RAMP/s"
	start_server tickroom-serve "$TICK_RATE"
	# shellcheck disable=SC2086 # BOTS_FLAGS is split on purpose
	"$OUT/tickroom" bots --url "$SERVER_URL" --players "$PLAYERS" --room-size "$ROOM_SIZE" \
		--duration "${DURATION_S}s" --ramp "$RAMP" --json "$OUT/bots.json" $BOTS_FLAGS \
		>"$OUT/bots.log" 2>&1 &
	bots_pid=$!
	PIDS+=("$bots_pid")
	t0=$(now)
	sleep_until "$t0" "$(($(ramp_s "$PLAYERS" "$RAMP") + WARMUP_S))"
	sample tickroom.s0 "server:$SERVER_PID" "bots:$bots_pid"
	sleep_until "$t0" "$((DURATION_S - END_MARGIN_S))"
	sample tickroom.s1 "server:$SERVER_PID" "bots:$bots_pid"
	wait_rc "$bots_pid"
	record tickroom.bots.exit "$RC"
	stop_pid "$SERVER_PID"
	record tickroom.server.exit "$RC"
fi

# --- phase idle
if has_phase idle; then
	echo "idle: $IDLE_PLAYERS joined bots sending nothing, ${IDLE_DURATION_S}s, ramp $IDLE_RAMP/s, server at $IDLE_TICK_RATE Hz"
	start_server idle-serve "$IDLE_TICK_RATE"
	sleep 1 # let the fresh process settle before the baseline
	sample idle.base "server:$SERVER_PID"
	"$OUT/tickroom" bots --url "$SERVER_URL" --behavior idle --input-hz 0 --players "$IDLE_PLAYERS" \
		--room-size "$ROOM_SIZE" --duration "${IDLE_DURATION_S}s" --ramp "$IDLE_RAMP" \
		--json "$OUT/idle-bots.json" >"$OUT/idle-bots.log" 2>&1 &
	bots_pid=$!
	PIDS+=("$bots_pid")
	t0=$(now)
	# Joined: at half the run, but not before the server holds a socket for
	# every bot (then one more second for the joins), nor after 3 s before
	# the end. The figures say how many were connected.
	sleep_until "$t0" "$((IDLE_DURATION_S / 2))"
	base_fds=$(awk -F= '$1 == "idle.base.server.fds" { print $2 }' "$SAMPLES")
	while (($(fd_count "$SERVER_PID") - base_fds < IDLE_PLAYERS)); do
		awk -v t="$t0" -v d="$IDLE_DURATION_S" -v n="$(now)" 'BEGIN { exit !(n < t + d - 4) }' || break
		sleep 0.5
	done
	sleep 1
	sample idle.joined "server:$SERVER_PID" "bots:$bots_pid"
	sleep_until "$t0" "$((IDLE_DURATION_S - END_MARGIN_S))"
	sample idle.end "server:$SERVER_PID" "bots:$bots_pid"
	wait_rc "$bots_pid"
	record idle.bots.exit "$RC"
	stop_pid "$SERVER_PID"
	record idle.server.exit "$RC"
fi

# --- phase pinned
# pinned_floor N BYTES: the floor at N players, server on CPU 0, clients on CPU 1
pinned_floor() {
	local n=$1 key=pinned.$1.floor out=$OUT/pinned-$1-floor i addr
	taskset -c 0 "$OUT/floor" -role server -players "$n" -tick-rate "$TICK_RATE" -snapshot-bytes "$2" \
		-duration "${PINNED_DURATION_S}s" >"$out-server.out" 2>"$out-server.log" &
	local fs=$!
	PIDS+=("$fs")
	addr=
	for ((i = 0; i < 200; i++)); do
		addr=$(awk '/^listening / { print $2 }' "$out-server.out")
		[[ -n $addr ]] && break
		kill -0 "$fs" 2>/dev/null || die "floor server exited at start; see $out-server.log"
		sleep 0.05
	done
	[[ $addr == 127.0.0.1:* ]] || die "no 127.0.0.1 address from the floor server (got '$addr')"
	taskset -c 1 "$OUT/floor" -role clients -addr "$addr" -players "$n" -tick-rate "$TICK_RATE" -input-bytes "$INPUT_BYTES" \
		-duration "$((PINNED_DURATION_S + 5))s" >"$out-clients.out" 2>"$out-clients.log" &
	local fc=$!
	PIDS+=("$fc")
	t0=$(now)
	record "$key.snapshot_bytes" "$2"
	sleep_until "$t0" "$WARMUP_S"
	sample "$key.s0" "server:$fs" "load:$fc"
	sleep_until "$t0" "$((PINNED_DURATION_S - END_MARGIN_S))"
	sample "$key.s1" "server:$fs" "load:$fc"
	wait_rc "$fs"
	record "$key.server.exit" "$RC"
	wait_rc "$fc"
	record "$key.load.exit" "$RC"
}
# pinned_tickroom N: tickroom at N players, server on CPU 0, bots on CPU 1;
# sets FRAME_BYTES to the bots' bytes down per snapshot
pinned_tickroom() {
	local n=$1 key=pinned.$1.tickroom bots
	start_server "pinned-$1-serve" "$TICK_RATE" 0
	# shellcheck disable=SC2086 # BOTS_FLAGS is split on purpose
	taskset -c 1 "$OUT/tickroom" bots --url "$SERVER_URL" --players "$n" --room-size "$ROOM_SIZE" \
		--duration "${PINNED_DURATION_S}s" --ramp "$RAMP" --json "$OUT/pinned-$1-bots.json" $BOTS_FLAGS \
		>"$OUT/pinned-$1-bots.log" 2>&1 &
	bots=$!
	PIDS+=("$bots")
	t0=$(now)
	sleep_until "$t0" "$(($(ramp_s "$n" "$RAMP") + WARMUP_S))"
	sample "$key.s0" "server:$SERVER_PID" "load:$bots"
	sleep_until "$t0" "$((PINNED_DURATION_S - END_MARGIN_S))"
	sample "$key.s1" "server:$SERVER_PID" "load:$bots"
	wait_rc "$bots"
	record "$key.load.exit" "$RC"
	stop_pid "$SERVER_PID"
	record "$key.server.exit" "$RC"
	FRAME_BYTES=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(max(8, round(d["bytes_down_per_player_s"] / d["snapshots_per_player_s"]) - 2) if d.get("snapshots_per_player_s") else "")' \
		"$OUT/pinned-$1-bots.json" 2>/dev/null || true)
	[[ -n $FRAME_BYTES ]] || FRAME_BYTES=$SNAPSHOT_BYTES
}
if has_phase pinned; then
	FRAME_BYTES=$SNAPSHOT_BYTES
	i=0
	for n in $POINTS; do
		# Alternate which goes first, so that a drift in the machine's speed
		# favours neither; tickroom goes first at the first point, so that
		# the floor's frames are tickroom's size from the start.
		if ((i % 2 == 0)); then order="tickroom floor"; else order="floor tickroom"; fi
		i=$((i + 1))
		record "pinned.$n.order" "$order"
		for side in $order; do
			echo "pinned: $side, $n players, ${PINNED_DURATION_S}s (server on CPU 0, load on CPU 1)"
			if [[ $side == tickroom ]]; then pinned_tickroom "$n"; else pinned_floor "$n" "$FRAME_BYTES"; fi
		done
	done
fi

# --- results
export POINTS PINNED_DURATION_S
export OUT PLAYERS ROOM_SIZE TICK_RATE DURATION_S WARMUP_S RAMP IDLE_PLAYERS IDLE_DURATION_S IDLE_RAMP IDLE_TICK_RATE \
	SNAPSHOT_BYTES INPUT_BYTES PHASES CLK_TCK
GIT_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
GIT_DIRTY=$([[ -n $(git status --porcelain 2>/dev/null) ]] && echo true || echo false)
GO_VERSION=$(go env GOVERSION)
CPUS=$(nproc)
export GIT_COMMIT GIT_DIRTY GO_VERSION CPUS

python3 - <<'PY' | tee "$OUT/capacity.txt"
import json, os

env = os.environ
out = env["OUT"]
clk = float(env["CLK_TCK"])
players = int(env["PLAYERS"])
rate = int(env["TICK_RATE"])
idle_players = int(env["IDLE_PLAYERS"])
phases = env["PHASES"].split()

s = {}
with open(os.path.join(out, "samples.txt")) as f:
    for line in f:
        k, _, v = line.strip().partition("=")
        s[k] = v

def num(k):
    return float(s[k])

def load(name, last_line=False):
    try:
        with open(os.path.join(out, name)) as f:
            text = f.read()
    except OSError:
        return None
    try:
        if last_line:
            text = [l for l in text.splitlines() if l.startswith("{")][-1]
        return json.loads(text)
    except (ValueError, IndexError):
        return None

def get(d, *path):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d

def per_snapshot(w, snapshots_per_player_s):
    """CPU per snapshot actually delivered, rather than per scheduled player-tick."""
    return round(w["cpu_cores"] * 1e6 / (players * snapshots_per_player_s), 3)

def window(phase, who, n, a="s0", b="s1", hz=rate):
    """CPU of `who` between samples a and b, for n players ticking at hz."""
    dt = num(f"{phase}.{b}.t") - num(f"{phase}.{a}.t")
    cpu = (num(f"{phase}.{b}.{who}.cpu") - num(f"{phase}.{a}.{who}.cpu")) / clk
    return {
        "window_s": round(dt, 3),
        "cpu_cores": round(cpu / dt, 4),
        "cpu_us_per_player_tick": round(cpu * 1e6 / (n * hz * dt), 3),
        "rss_kib": int(num(f"{phase}.{b}.{who}.rss")),
        "peak_rss_kib": int(num(f"{phase}.{b}.{who}.hwm")),
        "fds": int(num(f"{phase}.{b}.{who}.fds")),
    }

res = {
    "run": {
        "started": s.get("run.start"),
        "commit": env["GIT_COMMIT"], "dirty": env["GIT_DIRTY"] == "true",
        "go": env["GO_VERSION"], "cpus": int(env["CPUS"]),
        "phases": phases, "players": players, "room_size": int(env["ROOM_SIZE"]),
        "tick_rate": rate, "duration_s": int(env["DURATION_S"]), "warmup_s": int(env["WARMUP_S"]),
        "ramp_per_s": int(env["RAMP"]), "idle_players": idle_players,
        "idle_duration_s": int(env["IDLE_DURATION_S"]), "idle_ramp_per_s": int(env["IDLE_RAMP"]),
        "idle_tick_rate": int(env["IDLE_TICK_RATE"]),
        "floor_snapshot_bytes": int(env["SNAPSHOT_BYTES"]), "floor_input_bytes": int(env["INPUT_BYTES"]),
    }
}

if "floor" in phases:
    srv, cli = load("floor-server.out", True), load("floor-clients.out", True)
    fl = {"server": window("floor", "server", players), "clients": window("floor", "clients", players),
          "server_exit": int(s["floor.server.exit"]), "clients_exit": int(s["floor.clients.exit"]),
          "server_report": srv, "clients_report": cli}
    if cli:
        fl["bytes_down_per_player_s"] = round(cli["bytes_read"] / (players * cli["elapsed_s"]), 1)
        fl["bytes_up_per_player_s"] = round(cli["bytes_written"] / (players * cli["elapsed_s"]), 1)
    if srv:
        # Snapshots actually written: a floor on a busy machine may skip ticks.
        fl["snapshots_per_player_s"] = round(srv["frames_written"] / (players * srv["elapsed_s"]), 2)
        fl["server"]["cpu_us_per_snapshot"] = per_snapshot(fl["server"], fl["snapshots_per_player_s"])
    res["floor"] = fl

if "tickroom" in phases:
    bots = load("bots.json")
    tr = {"server": window("tickroom", "server", players), "bots_process": window("tickroom", "bots", players),
          "server_exit": int(s["tickroom.server.exit"]), "bots_exit": int(s["tickroom.bots.exit"]),
          "bots": bots}
    if bots and bots.get("snapshots_per_player_s"):
        tr["server"]["cpu_us_per_snapshot"] = per_snapshot(tr["server"], bots["snapshots_per_player_s"])
    res["tickroom"] = tr

if "floor" in phases and "tickroom" in phases:
    res["cpu_per_player_tick_ratio"] = round(
        res["tickroom"]["server"]["cpu_us_per_player_tick"] / res["floor"]["server"]["cpu_us_per_player_tick"], 3)
    a, b = get(res, "tickroom", "server", "cpu_us_per_snapshot"), get(res, "floor", "server", "cpu_us_per_snapshot")
    if a and b:
        res["cpu_per_snapshot_ratio"] = round(a / b, 3)

if "idle" in phases:
    base, joined = int(num("idle.base.server.rss")), int(num("idle.joined.server.rss"))
    conns = int(num("idle.joined.server.fds")) - int(num("idle.base.server.fds"))
    res["idle"] = {
        "players": idle_players,
        "connections": conns,  # sockets the server held at the joined sample
        "all_connected": conns >= idle_players,
        "server_rss_baseline_kib": base,
        "server_rss_joined_kib": joined,
        "rss_per_connection_kib": round((joined - base) / max(conns, 1), 3),
        "server": window("idle", "server", max(conns, 1), "joined", "end", int(env["IDLE_TICK_RATE"])),
        "bots_process": window("idle", "bots", max(conns, 1), "joined", "end", int(env["IDLE_TICK_RATE"])),
        "server_exit": int(s["idle.server.exit"]), "bots_exit": int(s["idle.bots.exit"]),
        "bots": load("idle-bots.json"),
    }

if "pinned" in phases:
    pts = []
    for n in [int(x) for x in env["POINTS"].split()]:
        pt = {"players": n, "order": s.get(f"pinned.{n}.order")}
        for side in ("tickroom", "floor"):
            key = f"pinned.{n}.{side}"
            w = window(key, "server", n)
            side_res = {"server": w, "load": window(key, "load", n),
                        "server_threads": int(num(f"{key}.s1.server.threads")),
                        "server_exit": int(s[f"{key}.server.exit"]), "load_exit": int(s[f"{key}.load.exit"])}
            if side == "tickroom":
                side_res["bots"] = load(f"pinned-{n}-bots.json")
            else:
                side_res["frame_bytes"] = int(s[f"{key}.snapshot_bytes"])
                rep = load(f"pinned-{n}-floor-server.out", True)
                side_res["server_report"] = rep
                if rep:
                    side_res["snapshots_per_player_s"] = round(rep["frames_written"] / (n * rep["elapsed_s"]), 2)
            pt[side] = side_res
        pt["cpu_per_player_tick_ratio"] = round(
            pt["tickroom"]["server"]["cpu_us_per_player_tick"] / pt["floor"]["server"]["cpu_us_per_player_tick"], 3)
        pts.append(pt)
    res["pinned"] = pts

targets = []
def target(name, value, limit, ok):
    if isinstance(value, float):
        value = round(value, 3)
    targets.append({"target": name, "measured": value, "limit": limit,
                    "met": None if value is None else ok(value, limit)})
le = lambda v, l: v <= l
if "cpu_per_player_tick_ratio" in res:
    target(f"server CPU per player-tick <= 1.3x the floor ({players} players)", res["cpu_per_player_tick_ratio"], 1.3, le)
if "tickroom" in res:
    b = res["tickroom"]["bots"]
    target(f"p99 snapshot gap <= 25 ms ({players} players; the target is at 1500)", get(b, "snapshot_gap_ms", "p99"), 25, le)
    target(f"zero errors ({players} players)", get(b, "errors"), 0, le)
    target("bytes down per player <= 6 KB/s", get(b, "bytes_down_per_player_s"), 6000, le)
    target("input latency p99 <= 18 ms", get(b, "input_latency_ms", "p99"), 18, le)
for pt in res.get("pinned", []):
    n, b = pt["players"], pt["tickroom"]["bots"]
    target(f"pinned, {n} players: server CPU per player-tick <= 1.1x the floor", pt["cpu_per_player_tick_ratio"], 1.1, le)
    if n <= 640:
        target(f"pinned, {n} players: input latency p99 <= 18 ms", get(b, "input_latency_ms", "p99"), 18, le)
        target(f"pinned, {n} players: snapshot gap p99 <= 17.5 ms", get(b, "snapshot_gap_ms", "p99"), 17.5, le)
if "idle" in res:
    i = res["idle"]
    target(f"server memory per idle connection <= 8 KiB ({i['connections']} of {idle_players} connected)",
           i["rss_per_connection_kib"], 8, le)
res["targets"] = targets

with open(os.path.join(out, "capacity.json"), "w") as f:
    json.dump(res, f, indent=2)
    f.write("\n")

# --- table
def fmt(v, spec=""):
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    return format(v, spec)

r = res["run"]
print(f"\ncapacity: {players} players, rooms of {r['room_size']}, {rate} Hz, {r['duration_s']} s "
      f"(warm-up {r['warmup_s']} s), {r['cpus']} CPUs, {r['go']}, commit {r['commit']}{' (dirty)' if r['dirty'] else ''}")
rows = []
fl, tr = res.get("floor", {}), res.get("tickroom", {})
b = tr.get("bots")
rows.append(("server CPU (cores)", get(fl, "server", "cpu_cores"), get(tr, "server", "cpu_cores"), ".3f"))
rows.append(("server CPU per player-tick (µs)", get(fl, "server", "cpu_us_per_player_tick"), get(tr, "server", "cpu_us_per_player_tick"), ".2f"))
rows.append(("  per snapshot delivered (µs)", get(fl, "server", "cpu_us_per_snapshot"), get(tr, "server", "cpu_us_per_snapshot"), ".2f"))
rows.append(("server RSS (MiB)", get(fl, "server", "rss_kib") and fl["server"]["rss_kib"] / 1024,
             get(tr, "server", "rss_kib") and tr["server"]["rss_kib"] / 1024, ".1f"))
rows.append(("load generator CPU (cores)", get(fl, "clients", "cpu_cores"), get(tr, "bots_process", "cpu_cores"), ".3f"))
rows.append(("bots' own CPU report (cores)", None, get(b, "bots_cpu_cores"), ".3f"))
rows.append(("bytes down per player-second", get(fl, "bytes_down_per_player_s"), get(b, "bytes_down_per_player_s"), ".0f"))
rows.append(("bytes up per player-second", get(fl, "bytes_up_per_player_s"), get(b, "bytes_up_per_player_s"), ".0f"))
rows.append(("snapshots per player-second", get(fl, "snapshots_per_player_s"), get(b, "snapshots_per_player_s"), ".2f"))
for p in ("p50", "p99", "max"):
    rows.append((f"snapshot gap {p} (ms)", None, get(b, "snapshot_gap_ms", p), ".2f"))
for p in ("p50", "p99", "max"):
    rows.append((f"input latency {p} (ms)", None, get(b, "input_latency_ms", p), ".2f"))
rows.append(("joined / players", None, None if b is None else f"{b.get('joined')} / {b.get('players')}", ""))
rows.append(("drops / resumes / errors", None,
             None if b is None else f"{b.get('drops')} / {b.get('resumes')} / {b.get('errors')}", ""))
rows.append(("exit status (server, load)",
             None if not fl else f"{fl['server_exit']}, {fl['clients_exit']}",
             None if not tr else f"{tr['server_exit']}, {tr['bots_exit']}", ""))
w = max(len(x[0]) for x in rows)
if fl or tr:
    print(f"\n{'':{w}}  {'floor':>12}  {'tickroom':>12}")
    for name, a, c, spec in rows:
        print(f"{name:{w}}  {fmt(a, spec):>12}  {fmt(c, spec):>12}")
if "cpu_per_player_tick_ratio" in res:
    print(f"\ntickroom / floor CPU per player-tick: {res['cpu_per_player_tick_ratio']:.2f}x"
          f" (per snapshot delivered: {fmt(res.get('cpu_per_snapshot_ratio'), '.2f')}x)")
if "idle" in res:
    i = res["idle"]
    print(f"\nidle ({r['idle_tick_rate']} Hz): {i['connections']} of {i['players']} bots connected at the sample "
          f"({fmt(get(i, 'bots', 'joined'))} joined by the end), "
          f"server RSS {i['server_rss_baseline_kib'] / 1024:.1f} -> {i['server_rss_joined_kib'] / 1024:.1f} MiB: "
          f"{i['rss_per_connection_kib']:.2f} KiB per connection; server CPU {i['server']['cpu_cores']:.3f} cores, "
          f"bots {i['bots_process']['cpu_cores']:.3f} cores; exit {i['server_exit']}, {i['bots_exit']}")
if "pinned" in res:
    print(f"\npinned (server on CPU 0, load on CPU 1), rooms of {r['room_size']}, {rate} Hz, {env['PINNED_DURATION_S']} s runs:")
    hdr = ["players", "order", "tickroom µs", "floor µs", "ratio", "snaps/s", "gap p99", "gap max", "input p99",
           "threads", "RSS MiB", "floor B", "load cores t/f", "errors"]
    print("  ".join(f"{h:>12}" for h in hdr))
    for pt in res["pinned"]:
        t, f, b = pt["tickroom"], pt["floor"], pt["tickroom"]["bots"] or {}
        row = [pt["players"], (pt["order"] or "").replace("tickroom", "T").replace("floor", "F").replace(" ", ""),
               fmt(t["server"]["cpu_us_per_player_tick"], ".2f"), fmt(f["server"]["cpu_us_per_player_tick"], ".2f"),
               fmt(pt["cpu_per_player_tick_ratio"], ".2f") + "x", fmt(b.get("snapshots_per_player_s"), ".2f"),
               fmt(get(b, "snapshot_gap_ms", "p99"), ".2f"), fmt(get(b, "snapshot_gap_ms", "max"), ".1f"),
               fmt(get(b, "input_latency_ms", "p99"), ".2f"), t["server_threads"],
               fmt(t["server"]["rss_kib"] / 1024, ".1f"), f["frame_bytes"],
               f"{t['load']['cpu_cores']:.2f}/{f['load']['cpu_cores']:.2f}", b.get("errors")]
        print("  ".join(f"{str(x):>12}" for x in row))
if targets:
    print("\ntargets:")
    for t in targets:
        print(f"  {fmt(t['met']):>3}  {t['target']}: {fmt(t['measured'])} (limit {t['limit']})")
print(f"\nwritten: {os.path.join(out, 'capacity.json')}")

# A process that failed makes the figures suspect: say so, and fail the run.
# Missed targets do not fail it; they are figures like the others.
failed = [f"{k} = {v}" for k, v in s.items() if k.endswith(".exit") and v != "0"]
failed += [f"floor {r['role']} reported {r['errors']} errors"
           for r in (get(res, "floor", "server_report"), get(res, "floor", "clients_report")) if r and r["errors"]]
if failed:
    print("\nFAILED (see the logs in " + out + "): " + "; ".join(failed))
    raise SystemExit(1)
PY
