package faultnet

import (
	"container/heap"
	"time"

	"github.com/hashicorp/memberlist"
)

// delayedPacket is a packet waiting out the Network's delay.
type delayedPacket struct {
	due time.Time
	seq uint64 // arrival order, so packets due at once keep their order
	buf []byte // a copy owned by the queue
	to  memberlist.Address
}

// delayLoop holds delayed packets and writes each to the inner transport
// when it is due, unless its link has been cut meanwhile. It runs until
// Shutdown starts; packets still waiting are discarded.
func (t *Transport) delayLoop() {
	defer t.wg.Done()
	var (
		q     delayHeap
		seq   uint64
		timer = time.NewTimer(time.Hour)
	)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-t.stop:
			return
		case p := <-t.delayCh:
			if q.Len() >= MaxDelayedPackets {
				t.packetsDropped.Add(1)
				continue
			}
			p.seq = seq
			seq++
			heap.Push(&q, p)
			timer.Reset(time.Until(q[0].due))
		case <-timer.C:
			now := time.Now()
			for q.Len() > 0 && !q[0].due.After(now) {
				p := heap.Pop(&q).(delayedPacket)
				if t.net.isCut(t.addr, canonical(p.to.Addr)) {
					t.packetsDropped.Add(1)
					continue
				}
				if _, err := t.write(p.buf, p.to); err != nil {
					t.packetsDropped.Add(1)
				}
			}
			if q.Len() > 0 {
				timer.Reset(time.Until(q[0].due))
			}
		}
	}
}

// delayHeap orders delayed packets by due time, then arrival.
type delayHeap []delayedPacket

func (h delayHeap) Len() int { return len(h) }

func (h delayHeap) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].seq < h[j].seq
}

func (h delayHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }

func (h *delayHeap) Push(x any) { *h = append(*h, x.(delayedPacket)) }

func (h *delayHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	old[len(old)-1] = delayedPacket{}
	*h = old[:len(old)-1]
	return p
}
