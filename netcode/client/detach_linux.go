package client

import "github.com/tickroom/tickroom/netcode/internal/rawio"

// detach takes a polled connection's socket out of the Go runtime's
// poller (rawio.Detach): the runtime took an event for every packet on
// sockets that nobody parks on, which cost a tenth of the bots' CPU. From
// then on the poller reads the socket with non-blocking reads, and a write
// that finds it full retries after short sleeps until its deadline, so no
// thread blocks either. It runs on the client's goroutine before the
// poller reads the connection, holding the write lock so that no write
// sees the swap half done.
func (c *Client) detach(pc *polled) error {
	conn := pc.conn
	conn.wmu.Lock()
	defer conn.wmu.Unlock()
	d, err := rawio.Detach(conn.nc, conn.writeDeadline)
	if err != nil {
		return err
	}
	conn.nc = d
	pc.sock = d
	return nil
}
