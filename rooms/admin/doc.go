// Package admin is a tickroom node's operator interface: a JSON HTTP API to
// list, create, close, pause, step and inspect rooms and to kick players and
// broadcast to them; Prometheus metrics; net/http/pprof; and a live dashboard
// page fed by Server-Sent Events. It serves on its own listener, apart from
// the game's WebSocket endpoint, and every route but the health checks and
// the dashboard's static files needs the bearer token.
//
// Goroutines: net/http runs each request on its own goroutine; the
// event streams (the node feed and a room's watch feed) are such requests,
// bounded in number by Config.MaxStreams, and end when the client goes or
// Shutdown is called. Serve also starts one sampler goroutine, which reads
// the node's counters once per Config.SampleInterval, keeps the recent
// history and fans each encoded sample out to the node feeds; Shutdown stops
// it and waits for it. Nothing here runs on a room's tick: room operations go
// through the room's control queue, and metrics read counters the rooms and
// connections already keep, at scrape time.
package admin
