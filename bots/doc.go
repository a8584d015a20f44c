// Package bots runs headless bot load against a tickroom server: many real
// protocol clients in one process that join rooms, send inputs, apply
// snapshots and measure what a player would feel (snapshot gaps, input
// latency, round trips, bandwidth), with SLO gates for CI. It backs the
// `tickroom bots` command.
//
// Goroutines: Run owns all of them and returns only after they stopped. Each
// bot is a netcode/client.Client with one goroutine of its own. On Linux a
// few client.Pollers (Config.Pollers) read every bot's connection and call
// the bots' callbacks, and each bot's goroutine only waits, to reconnect
// after a drop; with Pollers 0 each bot's goroutine reads its connection
// itself. There is no goroutine per bot beyond that.
// A ramp goroutine dials bots at the configured rate (with a bounded number
// of dials in flight), a few driver goroutines send every bot's inputs and
// pings on a shared schedule, and a reporter goroutine samples progress once
// a second.
package bots
