package cluster

import (
	"bytes"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Member is a node of the cluster as this node sees it.
type Member struct {
	ID      string // gossip name: unique per process start
	Addr    string // gossip host:port
	State   MemberState
	Meta    Meta
	Self    bool
	Since   time.Time // when this node last saw the state change
	BadMeta bool      // its metadata could not be decoded (an older or newer node)
}

// MemberState is a member's liveness.
type MemberState uint8

// Member states.
const (
	StateAlive   MemberState = iota + 1
	StateSuspect             // missed probes; dead unless it refutes soon
	StateDead                // failed, or cut off from this node
	StateLeft                // left on purpose
)

func (s MemberState) String() string {
	switch s {
	case StateAlive:
		return "alive"
	case StateSuspect:
		return "suspect"
	case StateDead:
		return "dead"
	case StateLeft:
		return "left"
	}
	return "unknown"
}

func memberState(s memberlist.NodeStateType) MemberState {
	switch s {
	case memberlist.StateAlive:
		return StateAlive
	case memberlist.StateSuspect:
		return StateSuspect
	case memberlist.StateLeft:
		return StateLeft
	}
	return StateDead
}

// Event is a change in the cluster's membership, or a room changing
// hosts, as this node saw it.
type Event struct {
	Kind   EventKind
	Member Member // as it is after the change; zero for room events
	// Room events: the room, its new epoch, and the node it came from or
	// went to (gossip names).
	Room     string
	Epoch    uint64
	From, To string
	Freeze   time.Duration // a hand-off's freeze
}

// EventKind says what happened to a member.
type EventKind uint8

// Event kinds.
const (
	MemberJoined   EventKind = iota + 1 // alive: new, or back from the dead
	MemberUpdated                       // its metadata changed (draining, ready, load)
	MemberLeft                          // left on purpose
	MemberFailed                        // declared dead
	RoomFailedOver                      // this node restored a room from its checkpoint after its host's lease ran out
	RoomHandedOff                       // this node handed a live room to another node
	RoomReceived                        // this node took a live room from another node
)

func (k EventKind) String() string {
	switch k {
	case MemberJoined:
		return "joined"
	case MemberUpdated:
		return "updated"
	case MemberLeft:
		return "left"
	case MemberFailed:
		return "failed"
	case RoomFailedOver:
		return "room_failed_over"
	case RoomHandedOff:
		return "room_handed_off"
	case RoomReceived:
		return "room_received"
	}
	return "unknown"
}

// logWriter turns memberlist's log lines ("[LEVEL] memberlist: ...") into
// slog records at the matching level, and counts the peers' packets and
// streams memberlist dropped (it reports them only in its log): from a
// node without the key, with another label, corrupt or of unknown types.
type logWriter struct {
	log     *slog.Logger
	dropped *atomic.Uint64
}

// droppedMarks are the log messages with which memberlist drops a peer's
// packet or stream.
var droppedMarks = [][]byte{
	[]byte("Decrypt packet failed"), []byte("failed to receive"), []byte("unacceptable label"),
	[]byte("not supported"), []byte("Failed to decode"), []byte("missing message type"),
	[]byte("invalid checksum"), []byte("handler queue full"), []byte("truncated messages"),
	[]byte("Failed to read remote state"), []byte("Failed push/pull merge"), []byte("invalid msgType"),
}

func (w *logWriter) Write(p []byte) (int, error) {
	line := bytes.TrimSpace(p)
	for _, m := range droppedMarks {
		if bytes.Contains(line, m) {
			w.dropped.Add(1)
			break
		}
	}
	level := slog.LevelDebug
	for prefix, l := range map[string]slog.Level{"[ERR]": slog.LevelError, "[WARN]": slog.LevelWarn, "[INFO]": slog.LevelDebug, "[DEBUG]": slog.LevelDebug} {
		if bytes.HasPrefix(line, []byte(prefix)) {
			level = l
			line = bytes.TrimSpace(line[len(prefix):])
			break
		}
	}
	w.log.Log(nil, level, string(line)) //nolint:staticcheck // memberlist has no context to give
	return len(p), nil
}
