// Package netcode is tickroom's transport: it accepts binary WebSocket
// connections, runs the protocol handshake and heartbeat, decodes client
// messages and hands them to a Session, and writes replies, events and
// snapshots back. It knows nothing of rooms: what a join or an input means is
// the Session's business (package rooms implements it).
//
// Goroutines: Server.Serve runs one accept loop. Each connection has exactly
// two goroutines, both owned by the Server and waited for by Shutdown: a
// reader, which performs the handshake, decodes frames and calls the
// connection's Session (so Session methods for one connection are never
// concurrent), and a writer, which is the only goroutine that writes to the
// socket. Other goroutines talk to a connection through non-blocking methods:
// Send queues a control message in a small bounded queue (a client too slow
// to drain it is disconnected with wire.CloseSlowConsumer); OfferSnapshot
// puts a snapshot in a one-slot mailbox where a newer snapshot replaces an
// unsent one, so a slow client costs neither memory nor the room's time.
package netcode
