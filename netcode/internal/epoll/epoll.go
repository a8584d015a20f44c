//go:build linux

// Package epoll is a level-triggered epoll set that reports the ids its
// owner registered sockets under, plus a wake-up pipe so that another
// goroutine can interrupt a Wait. It is the readiness half of netcode's
// pollers (the server's and the client's): they register sockets whose
// reads they do themselves, with package rawio.
//
// A Set has no goroutines. One goroutine calls Wait or WaitParked (and, once
// its loop is over, Close); Add, Del and Wake may be called from any
// goroutine.
package epoll

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
)

// ErrClosed: the Set was closed.
var ErrClosed = errors.New("epoll: set closed")

// wakeID is the wake-up pipe's id; registered ids must not use it.
const wakeID = 0

// Set is an epoll instance and its wake-up pipe.
type Set struct {
	epfd         int
	wakeR, wakeW int
	events       []syscall.EpollEvent // Wait only
	// file is the epoll descriptor in the Go runtime's poller, made by the
	// first WaitParked (Wait goroutine only): registered there, every
	// event of the set would wake the runtime's poller, which a set waited
	// on with Wait(0) does not want. Once made, it owns epfd.
	file *os.File
	raw  syscallConn

	mu     sync.Mutex // guards closed against the descriptors' reuse
	closed bool
}

// New returns a Set whose Wait reports up to batch ids at a time.
func New(batch int) (*Set, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	var pipe [2]int
	if err := syscall.Pipe2(pipe[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err != nil {
		syscall.Close(epfd)
		return nil, fmt.Errorf("pipe2: %w", err)
	}
	s := &Set{epfd: epfd, wakeR: pipe[0], wakeW: pipe[1], events: make([]syscall.EpollEvent, max(batch, 1))}
	ev := event(wakeID)
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, pipe[0], &ev); err != nil {
		s.closeFDs()
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	return s, nil
}

// park puts the epoll descriptor in the Go runtime's poller: an epoll
// descriptor is itself readable while it has ready events.
func (s *Set) park() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if err := syscall.SetNonblock(s.epfd, true); err != nil {
		return fmt.Errorf("epoll: set non-blocking: %w", err)
	}
	if s.file != nil {
		return nil // parked already
	}
	f := os.NewFile(uintptr(s.epfd), "epoll")
	s.file = f // from now on f owns epfd: closeFDs closes it once, through f
	raw, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("epoll: %w", err)
	}
	s.raw = raw
	return nil
}

// syscallConn is the part of syscall.RawConn WaitParked uses.
type syscallConn interface {
	Read(f func(fd uintptr) (done bool)) error
}

func event(id uint64) syscall.EpollEvent {
	return syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))}
}

// Add registers fd under id (not 0) for readability, level-triggered: Wait
// reports id as long as fd has something to read, or has hung up or failed.
func (s *Set) Add(fd int, id uint64) error {
	if id == wakeID {
		return errors.New("epoll: id 0 is reserved")
	}
	ev := event(id)
	return s.ctl(syscall.EPOLL_CTL_ADD, fd, &ev)
}

// Del unregisters fd. The caller must call it before fd is closed: a number
// closed and reused by another socket would name that one instead.
func (s *Set) Del(fd int) error {
	return s.ctl(syscall.EPOLL_CTL_DEL, fd, nil)
}

func (s *Set) ctl(op, fd int, ev *syscall.EpollEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if err := syscall.EpollCtl(s.epfd, op, fd, ev); err != nil {
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	return nil
}

// Wake makes the current or next Wait return, with woken set.
func (s *Set) Wake() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	var b [1]byte
	_, _ = syscall.Write(s.wakeW, b[:]) // EAGAIN: a wake-up is pending already
}

// WaitParked waits, without limit, for registered sockets to be ready or for
// a Wake, like Wait(ids, -1), but parks the calling goroutine in the Go
// runtime's poller rather than blocking its thread in epoll_wait: a thread
// that blocks gives up its processor, and getting one back when the events
// come costs a hand-off and a context switch per wake-up, the dearer the
// fewer processors. The runtime's poller, which waits when the process has
// nothing else to run, notices the set's readiness with everything else.
func (s *Set) WaitParked(ids []uint64) (_ []uint64, woken bool, err error) {
	if s.raw == nil {
		if err := s.park(); err != nil {
			return ids, false, err
		}
	}
	var werr error
	rerr := s.raw.Read(func(uintptr) bool {
		ids, woken, werr = s.Wait(ids, 0)
		return werr != nil || woken || len(ids) > 0
	})
	switch {
	case werr != nil:
		return ids, woken, werr
	case rerr != nil:
		return ids, woken, fmt.Errorf("epoll: wait in the runtime's poller: %w", rerr)
	}
	return ids, woken, nil
}

// Wait waits up to msec milliseconds (-1: without limit) for registered
// sockets to be ready or for a Wake, and appends the ready ids to ids. It
// retries when interrupted by a signal.
func (s *Set) Wait(ids []uint64, msec int) (_ []uint64, woken bool, err error) {
	for {
		n, err := syscall.EpollWait(s.epfd, s.events, msec)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return ids, false, fmt.Errorf("epoll_wait: %w", err)
		}
		for i := range n {
			ev := &s.events[i]
			id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if id != wakeID {
				ids = append(ids, id)
				continue
			}
			woken = true
			var b [64]byte
			for {
				if k, _ := syscall.Read(s.wakeR, b[:]); k <= 0 {
					break
				}
			}
		}
		return ids, woken, nil
	}
}

// Close closes the set's descriptors. Call it from Wait's goroutine once it
// waits no more; Add, Del and Wake fail or do nothing after it.
func (s *Set) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.closeFDs()
	}
}

func (s *Set) closeFDs() {
	if s.file != nil {
		_ = s.file.Close() // takes it out of the runtime's poller and closes epfd
	} else {
		syscall.Close(s.epfd)
	}
	syscall.Close(s.wakeR)
	syscall.Close(s.wakeW)
}
