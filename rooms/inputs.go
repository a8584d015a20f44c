package rooms

import (
	"slices"
	"sync"

	"github.com/tickroom/tickroom/sim"
)

// inputQueue holds one player's inputs until the next tick. A connection's
// reader pushes; the room drains. Payloads are copied into fixed slots, made
// on the first input (a player who sends none costs no slots), so the queue
// never allocates after that and its memory is bounded.
type inputQueue struct {
	mu       sync.Mutex
	capacity int
	size     int      // bytes per slot
	seqs     []uint32 // nil until the first input
	sizes    []uint8
	data     []byte // capacity slots of size bytes
	head, n  int
	lastSeq  uint32 // highest seq queued; older or repeated ones are stale
}

func newInputQueue(capacity, slotSize int) *inputQueue {
	return &inputQueue{capacity: capacity, size: slotSize}
}

func (q *inputQueue) slotSize() int { return q.size }

// push queues an input. Stale inputs (seq not above the last one) are
// ignored; when the queue is full the oldest input is dropped, since the
// newest says best what the player wants now. payload must fit a slot. It
// reports whether an input was dropped to make room.
func (q *inputQueue) push(seq uint32, payload []byte) (dropped bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if seq <= q.lastSeq {
		return false
	}
	q.lastSeq = seq
	if q.seqs == nil {
		q.seqs = make([]uint32, q.capacity)
		q.sizes = make([]uint8, q.capacity)
		q.data = make([]byte, q.capacity*q.size)
	}
	if q.n == len(q.seqs) {
		q.head = (q.head + 1) % len(q.seqs)
		q.n--
		dropped = true
	}
	i := (q.head + q.n) % len(q.seqs)
	q.seqs[i] = seq
	q.sizes[i] = uint8(len(payload))
	copy(q.data[i*q.slotSize():], payload)
	q.n++
	return dropped
}

// drain appends the queued inputs of player p to t.Inputs, copying payloads
// into *arena, and empties the queue. It returns the highest seq drained (0
// if there was none) and how many inputs were queued.
func (q *inputQueue) drain(p sim.PlayerID, t *sim.Tick, arena *[]byte) (last uint32, n int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	size := q.slotSize()
	for k := range q.n {
		i := (q.head + k) % len(q.seqs)
		start := len(*arena)
		*arena = append(*arena, q.data[i*size:i*size+int(q.sizes[i])]...)
		t.Inputs = append(t.Inputs, sim.Input{Player: p, Seq: q.seqs[i], Data: (*arena)[start:len(*arena):len(*arena)]})
		last = q.seqs[i]
	}
	n = q.n
	q.head, q.n = 0, 0
	return last, n
}

// queued returns copies of the inputs waiting, oldest first, for a
// checkpoint; the queue keeps them.
func (q *inputQueue) queued() []QueuedInput {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return nil
	}
	out := make([]QueuedInput, 0, q.n)
	size := q.slotSize()
	for k := range q.n {
		i := (q.head + k) % len(q.seqs)
		out = append(out, QueuedInput{Seq: q.seqs[i], Payload: slices.Clone(q.data[i*size : i*size+int(q.sizes[i])])})
	}
	return out
}

// messageQueue holds a room's messages until the next tick.
type messageQueue struct {
	mu       sync.Mutex
	max      int
	pending  []sim.Message
	draining []sim.Message
}

// push queues a copy of payload; false if the queue is full.
func (q *messageQueue) push(from sim.PlayerID, payload []byte) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) >= q.max {
		return false
	}
	q.pending = append(q.pending, sim.Message{From: from, Data: append([]byte(nil), payload...)})
	return true
}

// drain appends the queued messages to t.Messages and empties the queue.
func (q *messageQueue) drain(t *sim.Tick) {
	q.mu.Lock()
	q.pending, q.draining = q.draining[:0], q.pending
	q.mu.Unlock()
	t.Messages = append(t.Messages, q.draining...)
	clear(q.draining) // drop payload references
}
