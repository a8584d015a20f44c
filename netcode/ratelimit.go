package netcode

import "time"

// This file holds the per-connection rate limits: the token bucket and
// the flood rule for inputs.

// abusing counts a dropped input and reports whether the client dropped so
// many within a second (AbuseFactor times the input rate, plus the burst)
// that it is flooding rather than merely fast.
func (c *Conn) abusing(now time.Time) bool {
	if now.Sub(c.abuseWindow) > time.Second {
		c.abuseWindow, c.abuseDrops = now, 0
	}
	c.abuseDrops++
	cfg := &c.srv.cfg
	return c.abuseDrops > int(cfg.AbuseFactor*cfg.InputRate)+cfg.InputBurst
}

// tokenBucket is a rate limiter used by one goroutine.
type tokenBucket struct {
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
}

func newTokenBucket(rate float64, burst int) tokenBucket {
	return tokenBucket{rate: rate, burst: float64(burst), tokens: float64(burst)}
}

func (b *tokenBucket) allow(now time.Time) bool {
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
