package redislock

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shopstack/inventory/internal/lock"
)

// fenceTTL is how long an idle key's counter is kept. Losing it is safe (a
// missing counter restarts from the clock), so it only bounds memory.
const fenceTTL = 7 * 24 * time.Hour

// nextScript increments the counter KEYS[1] and returns it. A missing
// counter (new key, or Redis lost its data) starts from the server's clock
// in microseconds: above every token handed out before, since tokens grow
// by one per acquisition, far slower than one per microsecond. Numbers
// travel as decimal strings: Lua's own number-to-string conversion may
// switch to exponent notation, while values near 1.8e15 are exact doubles.
var nextScript = redis.NewScript(nextLua + `
return next(KEYS[1], ARGV[1])
`)

// nextLua defines next(counter, ttl), nextScript's step, which the scripts
// that take many locks at once share.
const nextLua = `
local function next(k, ttl)
	local c = redis.call('GET', k)
	if c then
		c = tonumber(c)
	else
		local t = redis.call('TIME')
		c = tonumber(t[1]) * 1000000 + tonumber(t[2])
	end
	c = string.format('%d', c + 1)
	redis.call('SET', k, c, 'EX', ttl)
	return c
end
`

// raiseScript sets the counter KEYS[1] to max(counter, ARGV[1]).
var raiseScript = redis.NewScript(`
local c = redis.call('GET', KEYS[1])
if (not c) or tonumber(c) < tonumber(ARGV[1]) then
	redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
else
	redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 1
`)

// nextToken returns the fencing token for a lease just acquired on key:
// greater than the token of every earlier lease on key.
//
// With several masters, phase 1 increments the counter on all of them and
// takes the largest answer of a quorum; phase 2 raises a quorum's counters
// to that token. Any two quorums intersect, so the next holder's phase 1
// sees at least this token on one master and goes above it. Phase 2 is
// skipped when the phase-1 quorum already agrees on the token: NEXT left
// it on each of them.
func (l *Locker) nextToken(ctx context.Context, key string) (int64, error) {
	ctx = quorumContext(ctx, l.cfg.OpTimeout)
	k := l.fenceKey(key)
	ttl := int64(fenceTTL / time.Second)
	if len(l.clients) == 1 {
		return next(ctx, l.clients[0], k, ttl)
	}
	answers, err := l.onQuorum(ctx, func(ctx context.Context, c redis.UniversalClient) (int64, error) {
		return next(ctx, c, k, ttl)
	})
	if err != nil {
		return 0, fmt.Errorf("increment: %w", err)
	}
	token := slices.Max(answers)
	if slices.Min(answers) == token {
		return token, nil
	}
	if err := l.raise(ctx, k, token); err != nil {
		return 0, err
	}
	return token, nil
}

// Advance makes every token granted on key from now on greater than token,
// raising key's counter on a quorum of servers. The service calls it when
// the database refused a lease's token as older than one it has seen: a
// counter that went back (a cluster failover lost its latest increments)
// would otherwise hand out refused tokens until it climbed past.
func (l *Locker) Advance(ctx context.Context, key string, token int64) error {
	if err := l.raise(quorumContext(ctx, l.cfg.OpTimeout), l.fenceKey(key), token); err != nil {
		l.refresh()
		return fmt.Errorf("redislock: advance %s: %w: %v", key, lock.ErrUnavailable, err)
	}
	return nil
}

// raise sets the counter k to at least token on a quorum.
func (l *Locker) raise(ctx context.Context, k string, token int64) error {
	ttl := int64(fenceTTL / time.Second)
	_, err := l.onQuorum(ctx, func(ctx context.Context, c redis.UniversalClient) (int64, error) {
		return 0, raiseScript.Run(ctx, c, []string{k}, strconv.FormatInt(token, 10), ttl).Err()
	})
	if err != nil {
		return fmt.Errorf("raise to %d: %w", token, err)
	}
	return nil
}

func next(ctx context.Context, c redis.UniversalClient, k string, ttl int64) (int64, error) {
	s, err := nextScript.Run(ctx, c, []string{k}, ttl).Text()
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(s, 10, 64)
}

// onQuorum runs fn on every server at once and returns the results of the
// first quorum to succeed, or an error once a quorum can no longer succeed.
// Servers still running fn then are left to finish on their own within
// ctx (see quorumContext).
func (l *Locker) onQuorum(ctx context.Context, fn func(context.Context, redis.UniversalClient) (int64, error)) ([]int64, error) {
	type result struct {
		i   int
		v   int64
		err error
	}
	ch := make(chan result, len(l.clients))
	for i, c := range l.clients {
		go func() {
			v, err := fn(ctx, c)
			ch <- result{i, v, err}
		}()
	}
	var ok []int64
	var errs []string
	for range l.clients {
		r := <-ch
		if r.err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", l.serverName(r.i), r.err))
		} else {
			ok = append(ok, r.v)
		}
		if len(ok) >= l.quorum {
			return ok, nil
		}
		if len(l.clients)-len(errs) < l.quorum {
			break
		}
	}
	return nil, fmt.Errorf("%d of %d servers failed, quorum %d: %s", len(errs), len(l.clients), l.quorum, strings.Join(errs, "; "))
}

// serverName names the i-th client in errors.
func (l *Locker) serverName(i int) string {
	if l.cluster != nil {
		return "cluster"
	}
	return l.cfg.Addrs[i]
}
