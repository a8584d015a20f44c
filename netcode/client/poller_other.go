//go:build !linux

package client

// Poller is Linux-only (epoll): elsewhere NewPoller fails with
// ErrPollerUnsupported, and each client reads with its own goroutine.
type Poller struct{}

type polled struct{}

// NewPoller returns ErrPollerUnsupported.
func NewPoller() (*Poller, error) { return nil, ErrPollerUnsupported }

// Close does nothing.
func (p *Poller) Close() error { return nil }

func (p *Poller) prepare(*Client, *connection) error { return ErrPollerUnsupported }
func (p *Poller) serve(*Client, *connection) error   { return ErrPollerUnsupported }
func (p *Poller) end(*polled, error)                 {}
