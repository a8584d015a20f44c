// Package netcode is tickroom's transport: it accepts binary WebSocket
// connections, runs the protocol handshake and heartbeat, decodes client
// messages and hands them to a Session, and writes replies, events and
// snapshots back. It knows nothing of rooms: what a join or an input means is
// the Session's business (package rooms implements it).
//
// Goroutines: Server.Serve runs one accept loop, and the Server one pinger,
// which asks each connection for its heartbeat ping in turn. Each connection
// has a reader goroutine, which performs the handshake, decodes frames and
// calls the connection's Session (so Session methods for one connection are
// never concurrent), and a writer goroutine only while it has something to
// write: replies, events, pings, a snapshot the fast path could not write,
// the close. An idle connection has no writer, which saves its stack. The
// Server owns them all; Shutdown stops them and waits for them (the reader
// waits for the connection's last writer). Other goroutines talk to a
// connection through non-blocking methods: Send queues a control message in a small bounded queue (a client
// too slow to drain it is disconnected with wire.CloseSlowConsumer);
// OfferSnapshot puts a snapshot in a one-slot mailbox where a newer snapshot
// replaces an unsent one, so a slow client costs neither memory nor the
// room's time.
//
// Fast path: when nothing is queued for a connection and its writer is
// idle, OfferSnapshot writes the snapshot on the caller's goroutine with one
// non-blocking write, sparing the writer's wake-up (the largest per-player
// cost of a tick). A write that does not go through whole hands the socket,
// and the rest of the frame, to the writer. One atomic says who owns the
// socket, so frames never interleave.
package netcode
