// Package bots runs headless bot load against a tickroom server: many real
// protocol clients in one process that join rooms, send inputs, apply
// snapshots and measure what a player would feel (snapshot gaps, input
// latency, round trips, bandwidth), with SLO gates for CI. It backs the
// `tickroom bots` command.
//
// Goroutines: Run owns all of them and returns only after they stopped. Each
// bot is a netcode/client.Client, whose one goroutine reads the connection
// and calls the bot's callbacks; there is no goroutine per bot beyond that.
// A ramp goroutine dials bots at the configured rate (with a bounded number
// of dials in flight), a few driver goroutines send every bot's inputs and
// pings on a shared schedule, and a reporter goroutine samples progress once
// a second.
package bots
