//go:build !linux

package netcode

import "errors"

// poller is Linux-only (epoll): elsewhere each connection has a reader
// goroutine.
type poller struct{}

type pollState uint8

func newPoller(*Server) (*poller, error) {
	return nil, errors.New("netcode: readiness-driven reads need Linux")
}

func (p *poller) arm(c *Conn)         { c.finish() }
func (p *poller) disarm(*Conn)        {}
func (p *poller) requestFinish(*Conn) {}
func (p *poller) stop()               {}
func (p *poller) alive() bool         { return false }
func (p *poller) requestPass()        {}
func (p *poller) awaitPass()          {}

// detach is never called without a poller.
func (c *Conn) detach() bool { return false }
