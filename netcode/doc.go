// Package netcode is tickroom's transport: it accepts binary WebSocket
// connections, runs the protocol handshake and heartbeat, decodes client
// messages and hands them to a Session, and writes replies, events and
// snapshots back. It knows nothing of rooms: what a join or an input means is
// the Session's business (package rooms implements it).
//
// Goroutines: Server.Serve runs one accept loop; the first Serve also
// starts the Server's pinger, which asks each connection for its heartbeat
// ping in turn (and, for polled connections, checks their heartbeat), and
// its pollers (ServerConfig.Pollers, Linux only). Each connection starts
// with a goroutine of its own that performs the upgrade and the handshake.
// Then, with pollers, it hands the connection to one and ends: a poller
// reads its connections and decodes their frames, so a joined connection has
// no goroutine while it waits (and its socket, taken out of the Go runtime's
// poller, costs the runtime nothing). A poller reads once per tick of a
// Handler that is a TickReader (ServerConfig.ReadMode ReadOnTick: the
// handler's tick calls for the read and waits for it), or when epoll says a
// connection is readable (ReadOnArrival: the poller's goroutine parks in the
// Go runtime's poller on its epoll set, with no thread blocked). A poller
// calls Session.Input itself; a request (join, leave, room message) may wait
// on a room, so it is answered on a goroutine started for it, the
// connection being out of the poller's hands until it is done. Without
// pollers, the connection's goroutine reads until the connection ends.
// Either way a connection's Session methods are never concurrent and see its
// messages in order. A writer goroutine runs only while there is something
// to write: replies, events, pings, a snapshot the fast path could not
// write, the close. An idle connection has no writer either. The Server owns
// them all; Shutdown stops them and waits for them (a connection is
// finished, and its Session's Closed called, once its reading is over and
// its last writer is done; the pollers stop after every connection has).
// Other goroutines talk to a connection through non-blocking methods: Send
// queues a control message in a small bounded queue (a client too slow to
// drain it is disconnected with wire.CloseSlowConsumer); OfferSnapshot puts
// a snapshot in a one-slot mailbox where a newer snapshot replaces an unsent
// one, so a slow client costs neither memory nor the room's time.
//
// Fast path: when nothing is queued for a connection and its writer is
// idle, OfferSnapshot writes the snapshot on the caller's goroutine with one
// non-blocking write, sparing the writer's wake-up (the largest per-player
// cost of a tick). A write that does not go through whole hands the socket,
// and the rest of the frame, to the writer. One atomic says who owns the
// socket, so frames never interleave.
package netcode
