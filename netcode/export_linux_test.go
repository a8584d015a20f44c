package netcode

// PollerWakeups returns how often the server's pollers have returned from
// epoll_wait, for tests that check a poller does not spin.
func PollerWakeups(s *Server) uint64 {
	var n uint64
	for _, p := range s.pollers {
		n += p.wakeups.Load()
	}
	return n
}
