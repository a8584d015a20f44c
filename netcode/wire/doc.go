// Package wire is tickroom's wire protocol: the message types a client and a
// server exchange, their MessagePack encoding, the error and close codes, and
// the snapshot delta codec. PROTOCOL.md is the human-readable form of this
// package; the two must agree.
//
// Every message is one binary WebSocket frame holding one MessagePack array
// whose first element is the message Type and whose remaining elements are the
// message's fields in a fixed order.
//
// The package does no I/O and starts no goroutines. An Encoder or a Decoder is
// not safe for concurrent use: each connection owns its own. Byte slices
// returned by a decoder (raw payloads) alias the frame they were decoded from
// and are valid only until that frame's buffer is reused.
package wire
