package server

import (
	"sync"
	"time"
)

// callLimiter is a token bucket per uid: a user who floods the helper with
// calls (each may cost a polkit round trip and kernel work) gets
// api.ErrTooManyCalls instead of slowing it down for everyone. Its memory
// is bounded: at most maxBuckets uids, full buckets are dropped.
type callLimiter struct {
	rate, burst float64
	mu          sync.Mutex
	buckets     map[uint32]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

const maxBuckets = 4096

func newCallLimiter(rate, burst float64) *callLimiter {
	return &callLimiter{rate: rate, burst: burst, buckets: map[uint32]*bucket{}}
}

// allow takes a token from uid's bucket.
func (l *callLimiter) allow(uid uint32, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[uid]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			l.sweepLocked(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[uid] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// sweepLocked forgets buckets that have refilled (idle uids); if every uid
// is busy, the oldest half goes.
func (l *callLimiter) sweepLocked(now time.Time) {
	for uid, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.buckets, uid)
		}
	}
	for uid := range l.buckets {
		if len(l.buckets) < maxBuckets/2 {
			break
		}
		delete(l.buckets, uid)
	}
}
