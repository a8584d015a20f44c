package rooms

import (
	"sync"
	"sync/atomic"
	"time"
)

// stuckAfter is how long a worker may be inside one turn before the clock
// counts it as stuck and starts a helper in its place. A room's tick takes
// tens of microseconds; half a millisecond keeps the other rooms' lateness
// under a millisecond when a game step blocks.
const stuckAfter = 500 * time.Microsecond

// maxHelpers bounds the extra workers the clock starts while workers are
// stuck in slow rooms: each may hold an OS thread if the room it runs
// blocks, and a node should stay within GOMAXPROCS plus a few threads.
const maxHelpers = 4

// clock is a node's one tick clock. Node tick k is due at origin + k*period;
// every awake room ticks at every node tick, so all rooms of a node tick in
// phase. The clock is the only place that waits precisely (waiter: a
// timerfd on Linux), once per node tick for the whole node, where a timer
// and a nanosleep per room woke threads for every room-tick.
//
// Goroutines: run (one) waits for each node tick and releases every awake
// room to the run queue. The workers (Config.Workers of them) take rooms off
// the run queue and run their turns (Room.turn): control operations, then
// the tick if one is due. A room is on the run queue at most once and runs on
// one worker at a time (Room.state), so its game still needs no locks. When
// a worker has been inside one turn for longer than stuckAfter (a game step
// that blocks or spins), run starts a helper, which works until the queue is
// empty, so a slow room delays only itself: run looks at every node tick and
// again stuckAfter after it. The Registry starts the clock
// with its first room and stops it, waiting for every goroutine, once its
// rooms have closed.
type clock struct {
	period     time.Duration
	origin     time.Time
	stuckAfter time.Duration
	newWaiter  func() (waiter, error) // the precise wait; tests give a Go timer's
	waiter     waiter                 // made by start
	runq       chan *Room             // rooms with work; never full (one place per room)

	mu      sync.Mutex
	awake   []*Room // ticked at every node tick; Room.slot is the index
	started bool
	stopped bool

	kick    chan struct{} // wakes run when the first room wakes (capacity 1)
	idle    atomic.Bool   // run waits in its idle select
	stop    chan struct{}
	wg      sync.WaitGroup
	workers []workerSlot // Config.Workers, then room for helpers
	stats   ClockStats
	// beforeTick, if set, runs just before each node tick's release: it
	// reads the node's connections (netcode.TickReader), so that inputs
	// are read once a tick, right before the rooms apply them.
	beforeTick atomic.Pointer[func()]
}

// workerSlot is what run knows of one worker: whether the slot is taken, and
// since when (nanoseconds after origin) the worker runs its current turn, 0
// while it waits.
type workerSlot struct {
	taken atomic.Bool
	since atomic.Int64
}

// ClockStats are the node clock's counters, safe to read at any time.
type ClockStats struct {
	Ticks    atomic.Uint64 // node ticks released
	Overruns atomic.Uint64 // node ticks skipped because the clock woke a period or more late
	// Lateness is how late the clock released each node tick against its
	// schedule: the precision of the node's one sleep. A room's own
	// lateness (TickStats.Lateness) adds the time it waited for a worker.
	Lateness Histogram
	Helpers  atomic.Uint64 // helper workers started because workers were stuck in slow rooms
}

func newClock(period time.Duration, workers, maxRooms int, newWaiter func() (waiter, error)) *clock {
	return &clock{
		period:     period,
		origin:     time.Now(),
		stuckAfter: min(stuckAfter, period/4),
		newWaiter:  newWaiter,
		runq:       make(chan *Room, maxRooms+1),
		kick:       make(chan struct{}, 1),
		stop:       make(chan struct{}),
		workers:    make([]workerSlot, workers+maxHelpers),
	}
}

// due returns when node tick k is due.
func (c *clock) due(k uint64) time.Time { return c.origin.Add(time.Duration(k) * c.period) }

// tickAt returns the last node tick due at or before t.
func (c *clock) tickAt(t time.Time) uint64 {
	d := t.Sub(c.origin)
	if d < 0 {
		return 0
	}
	return uint64(d / c.period)
}

// baseFor returns the node tick of a new room's tick 0 (negative for a room
// that starts at a tick number above the node's), so that its tick first
// runs at the first node tick due after now, and the node tick before that.
func (c *clock) baseFor(now time.Time, first uint64) (base int64, before uint64) {
	before = c.tickAt(now)
	return int64(before) + 1 - int64(first), before
}

// start starts the clock's goroutines, once; ErrClosed if the clock
// stopped. base is how many workers wait on the run queue for good.
func (c *clock) start(base int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return ErrClosed
	}
	if c.started {
		return nil
	}
	w, err := c.newWaiter()
	if err != nil {
		return err
	}
	c.waiter = w
	c.started = true
	for i := range base {
		c.workers[i].taken.Store(true)
		c.wg.Add(1)
		go c.work(&c.workers[i], false)
	}
	c.wg.Add(1)
	go c.run(base)
	return nil
}

// shutdown stops the clock and waits for its goroutines. The rooms must
// have finished: nothing is left to run. Safe to call more than once.
func (c *clock) shutdown() {
	c.mu.Lock()
	if !c.stopped {
		c.stopped = true
		close(c.stop)
		if c.waiter != nil {
			c.waiter.interrupt()
		}
	}
	c.mu.Unlock()
	c.wg.Wait()
	if c.waiter != nil {
		c.waiter.close()
	}
}

// enqueue puts r on the run queue. The caller moved r's state to queued, so
// r is on the queue at most once and the queue, with a place for every room
// the registry may hold, never blocks.
func (c *clock) enqueue(r *Room) {
	c.runq <- r
	if c.idle.Load() { // no node tick will look for stuck workers: have run look
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

// busy reports whether a turn is queued or under way.
func (c *clock) busy() bool {
	if len(c.runq) > 0 {
		return true
	}
	for i := range c.workers {
		if c.workers[i].since.Load() != 0 {
			return true
		}
	}
	return false
}

// wakeRoom adds r to the rooms ticked at every node tick. The room's turn
// calls it.
func (c *clock) wakeRoom(r *Room) {
	c.mu.Lock()
	r.slot = len(c.awake)
	c.awake = append(c.awake, r)
	first := len(c.awake) == 1
	c.mu.Unlock()
	if first {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

// sleepRoom takes r out of the rooms ticked at every node tick. The room's
// turn calls it.
func (c *clock) sleepRoom(r *Room) {
	c.mu.Lock()
	defer c.mu.Unlock()
	last := len(c.awake) - 1
	if r.slot < 0 || r.slot > last || c.awake[r.slot] != r {
		return
	}
	moved := c.awake[last]
	c.awake[r.slot] = moved
	moved.slot = r.slot
	c.awake[last] = nil
	c.awake = c.awake[:last]
	r.slot = -1
}

// run is the clock's goroutine: it waits for each node tick, precisely, and
// releases the awake rooms. While no room is awake it sleeps until one
// wakes.
func (c *clock) run(base int) {
	defer c.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	k := c.tickAt(time.Now()) + 1
	looking := false
	for {
		c.mu.Lock()
		idle := len(c.awake) == 0
		c.mu.Unlock()
		if idle {
			// No node tick looks for stuck workers: look every stuckAfter
			// while turns are queued or under way.
			var look <-chan time.Time
			if looking || c.busy() {
				timer.Reset(c.stuckAfter)
				look = timer.C
			}
			c.idle.Store(true)
			looking = false
			select {
			case <-c.kick:
				looking = true // an op was queued, or a room woke
			case now := <-look:
				c.helpStuckWorkers(now, base)
			case <-c.stop:
				return
			}
			c.idle.Store(false)
			k = max(k, c.tickAt(time.Now())+1)
			continue
		}
		if !c.waitUntil(c.due(k)) {
			return
		}
		now := time.Now()
		late := now.Sub(c.due(k))
		if late >= c.period {
			// Woken a period or more late (a stalled machine): release the
			// tick due now, not the ones that passed, back to back.
			skipped := uint64(late / c.period)
			c.stats.Overruns.Add(skipped)
			k += skipped
			late -= time.Duration(skipped) * c.period
		}
		c.stats.Lateness.Record(late)
		if read := c.beforeTick.Load(); read != nil {
			(*read)()
		}
		c.release(k)
		c.helpStuckWorkers(now, base) // after the release: a helper finds the tick's rooms queued
		c.stats.Ticks.Add(1)
		// Look again once a turn of this tick could be stuck: stuckAfter
		// after the release, not after the due time, which a long read
		// may have used up. A plain timer: a look a millisecond late costs
		// nothing but that.
		timer.Reset(c.stuckAfter)
		select {
		case now = <-timer.C:
		case <-c.stop:
			return
		}
		c.helpStuckWorkers(now, base)
		k++
	}
}

// waitUntil waits for due, precisely. It returns false if the clock was
// stopped. A stop that lands just before a wait arms the timer is seen when
// that wait ends, at most a period later.
func (c *clock) waitUntil(due time.Time) bool {
	for {
		select {
		case <-c.stop:
			return false
		default:
		}
		d := time.Until(due)
		if d <= 0 {
			return true
		}
		if err := c.waiter.wait(d); err != nil {
			// The timerfd failed (it cannot, short of a broken system):
			// keep time coarsely rather than stop every room. A stop
			// waits out this sleep, at most a period.
			time.Sleep(d)
		}
	}
}

// release hands node tick k to every awake room. The order rotates by one
// place a tick, each room moving one place later, so that no room is always
// served last; a room's snapshot gap then grows by one room's work, instead
// of by a whole node tick's work once per rotation (which it would if rooms
// moved earlier: the first room would become the last).
func (c *clock) release(k uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := uint64(len(c.awake))
	if n == 0 {
		return
	}
	start := (n - k%n) % n
	for i := range n {
		r := c.awake[(start+i)%n]
		r.released.Store(k)
		r.schedule()
	}
}

// helpStuckWorkers starts a helper for every worker stuck in a turn for
// longer than stuckAfter beyond the base workers' count, up to maxHelpers,
// so that base workers are always free to run the other rooms.
func (c *clock) helpStuckWorkers(now time.Time, base int) {
	t := int64(now.Sub(c.origin))
	stuck, working := 0, 0
	for i := range c.workers {
		w := &c.workers[i]
		if !w.taken.Load() {
			continue
		}
		working++
		if s := w.since.Load(); s != 0 && time.Duration(t-s) >= c.stuckAfter {
			stuck++
		}
	}
	for free := working - stuck; free < base; free++ {
		w := c.claimSlot()
		if w == nil {
			return
		}
		c.stats.Helpers.Add(1)
		c.wg.Add(1)
		go c.work(w, true)
	}
}

// claimSlot takes a free worker slot for a helper, or nil if none is left.
func (c *clock) claimSlot() *workerSlot {
	for i := range c.workers {
		if c.workers[i].taken.CompareAndSwap(false, true) {
			return &c.workers[i]
		}
	}
	return nil
}

// work is a worker: it runs rooms' turns off the run queue. A helper stops
// as soon as the queue is empty; a base worker waits for more until the
// clock stops.
func (c *clock) work(w *workerSlot, helper bool) {
	defer c.wg.Done()
	defer w.taken.Store(false)
	for {
		var r *Room
		if helper {
			select {
			case r = <-c.runq:
			default:
				return
			}
		} else {
			select {
			case r = <-c.runq:
			case <-c.stop:
				return
			}
		}
		w.since.Store(max(int64(time.Since(c.origin)), 1))
		r.turn()
		w.since.Store(0)
		r.turnDone()
	}
}
