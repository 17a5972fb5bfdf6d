package redislock

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-redsync/redsync/v4"
	"github.com/redis/go-redis/v9"

	"github.com/shopstack/inventory/internal/lock"
)

// takeScript takes, for each pair of keys (a lock, then its fencing
// counter), the lock if it is free and then the pair's next token. It
// returns each pair's token, or "0" where the lock was taken. ARGV: the
// locks' value, their TTL in milliseconds, the counters' TTL in seconds.
// A lock holding the value already is this call's, taken by a first
// delivery of the script whose answer was lost (the cluster client resends
// a pipeline to a node that failed it): it is granted again, with a new
// token.
var takeScript = redis.NewScript(nextLua + `
local out = {}
for i = 1, #KEYS, 2 do
	if redis.call('SET', KEYS[i], ARGV[1], 'NX', 'PX', ARGV[2]) or redis.call('GET', KEYS[i]) == ARGV[1] then
		out[#out + 1] = next(KEYS[i + 1], ARGV[3])
	else
		out[#out + 1] = '0'
	end
end
return out
`)

// TryLock tries once to take each of keys, in one round trip per server
// (on a cluster, one per master: a script per slot, pipelined), waiting
// for none held here or elsewhere. Each server runs one script that takes
// every free lock and its token at once; a key is granted where a quorum
// took it in time, with the largest of their tokens (raised on a quorum
// when they differ, as Lock's token is), and released where it was taken
// otherwise.
func (l *Locker) TryLock(ctx context.Context, keys []string) []lock.Grant {
	grants := make([]lock.Grant, len(keys))
	var mine []int // indexes of keys entered in the gate
	leaves := make([]func(), len(keys))
	for i, key := range keys {
		if err := ctx.Err(); err != nil {
			grants[i].Err = fmt.Errorf("redislock: lock %s: %w", key, err)
			continue
		}
		if l.yields.wait(key) > 0 {
			grants[i].Err = fmt.Errorf("redislock: lock %s: %w: left to a waiter elsewhere", key, lock.ErrNotAcquired)
			continue
		}
		leave, ok := l.gate.TryEnter(key)
		if !ok {
			grants[i].Err = fmt.Errorf("redislock: lock %s: %w: held in this process", key, lock.ErrNotAcquired)
			continue
		}
		leaves[i] = leave
		mine = append(mine, i)
	}
	if len(mine) == 0 {
		return grants
	}
	ours := make([]string, len(mine))
	for j, i := range mine {
		ours[j] = keys[i]
	}
	for j, g := range l.take(ctx, ours) {
		i := mine[j]
		if g.err != nil {
			leaves[i]()
			grants[i].Err = fmt.Errorf("redislock: lock %s: %w", keys[i], g.err)
			continue
		}
		g.lease.start(leaves[i], g.until)
		grants[i].Lease = g.lease
	}
	return grants
}

// taken is the outcome of take for one key.
type taken struct {
	lease *lease
	until time.Time
	err   error
}

// take runs takeScript on every server at once, each bounded by
// OpTimeout, and judges each key by the answers.
func (l *Locker) take(ctx context.Context, keys []string) []taken {
	value, err := randomValue()
	if err != nil {
		out := make([]taken, len(keys))
		for i := range out {
			out[i].err = fmt.Errorf("%w: %v", lock.ErrUnavailable, err)
		}
		return out
	}
	qctx := quorumContext(ctx, l.cfg.OpTimeout)
	start := time.Now()
	answers := make([][]answer, len(l.clients)) // [server][key]
	var wg sync.WaitGroup
	for s, c := range l.clients {
		wg.Go(func() { answers[s] = l.takeOn(qctx, c, keys, value) })
	}
	wg.Wait()
	// As redsync's: the lock is valid for its TTL from the first request,
	// less the clock drift Redlock allows for.
	until := start.Add(l.cfg.TTL - time.Duration(float64(l.cfg.TTL)*0.01) - 2*time.Millisecond)

	out := make([]taken, len(keys))
	var wg2 sync.WaitGroup
	for i, key := range keys {
		var tokens []int64
		var failed []string
		for s := range l.clients {
			switch a := answers[s][i]; {
			case a.err != nil:
				failed = append(failed, fmt.Sprintf("%s: %v", l.serverName(s), a.err))
			case a.token > 0:
				tokens = append(tokens, a.token)
			}
		}
		m := l.mutex(key, redsync.WithValue(value))
		ok := len(tokens) >= l.quorum && time.Now().Before(l.deadlineOf(until))
		switch {
		case ok && slices.Min(tokens) == slices.Max(tokens):
			out[i] = taken{lease: newLease(l, key, m, tokens[0]), until: until}
			continue
		case ok:
			// A server behind the others (it lost data): raise a quorum's
			// counter to the token, as Lock does.
			wg2.Go(func() {
				token := slices.Max(tokens)
				if err := l.raise(qctx, l.fenceKey(key), token); err != nil {
					_, _ = m.UnlockContext(quorumContext(ctx, l.cfg.OpTimeout))
					out[i].err = fmt.Errorf("%w: fencing token: %v", lock.ErrUnavailable, err)
					return
				}
				out[i] = taken{lease: newLease(l, key, m, token), until: until}
			})
			continue
		}
		if len(tokens) > 0 {
			// Taken on too few servers: free it where it was.
			wg2.Go(func() { _, _ = m.UnlockContext(quorumContext(ctx, l.cfg.OpTimeout)) })
		}
		switch {
		case len(tokens) >= l.quorum:
			// As redsync's ErrFailed: granted, but too late to be valid.
			out[i].err = fmt.Errorf("%w: the servers answered too late for the lease to be valid", lock.ErrUnavailable)
		case len(l.clients)-len(failed) < l.quorum:
			l.refresh()
			out[i].err = fmt.Errorf("%w: %s", lock.ErrUnavailable, strings.Join(failed, "; "))
		default:
			out[i].err = fmt.Errorf("%w: held by another holder", lock.ErrNotAcquired)
		}
	}
	wg2.Wait()
	return out
}

// answer is one server's answer for one key: its token if the server
// took the lock, 0 if it was taken, or the error.
type answer struct {
	token int64
	err   error
}

// takeOn runs takeScript on one server for every key: one script for all
// of them on a standalone server, one per hash slot on a cluster, sent in
// one pipeline (one round trip per master).
func (l *Locker) takeOn(ctx context.Context, c redis.UniversalClient, keys []string, value string) []answer {
	args := []any{value, l.cfg.TTL.Milliseconds(), int64(fenceTTL / time.Second)}
	out := make([]answer, len(keys))
	l.evalOn(ctx, c, takeScript, keys,
		func(i int) []string { return []string{l.lockKey(keys[i]), l.fenceKey(keys[i])} },
		func([]int) []any { return args },
		func(i int, reply string, err error) {
			if err != nil {
				out[i].err = err
				return
			}
			out[i].token, out[i].err = strconv.ParseInt(reply, 10, 64)
		})
	return out
}

// evalOn runs script on one server for the keys: one script for all of
// them on a standalone server, one per hash slot on a cluster, sent in one
// pipeline (one round trip per master), and the script's text where the
// server does not know it yet. redisKeys are the script's keys for key i,
// args its arguments for the keys at idx; the script returns one reply
// per key, which each gets, or the error of its script.
func (l *Locker) evalOn(ctx context.Context, c redis.UniversalClient, script *redis.Script, keys []string,
	redisKeys func(i int) []string, args func(idx []int) []any, each func(i int, reply string, err error)) {
	groups := [][]int{make([]int, len(keys))}
	if l.cluster != nil {
		groups = bySlot(keys, l.lockKey)
	} else {
		for i := range keys {
			groups[0][i] = i
		}
	}
	run := func(eval func(redis.Pipeliner, []string, []any) *redis.Cmd) []*redis.Cmd {
		cmds := make([]*redis.Cmd, len(groups))
		_, _ = c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for g, idx := range groups {
				var ks []string
				for _, i := range idx {
					ks = append(ks, redisKeys(i)...)
				}
				cmds[g] = eval(p, ks, args(idx))
			}
			return nil
		})
		return cmds
	}
	cmds := run(func(p redis.Pipeliner, ks []string, a []any) *redis.Cmd { return script.EvalSha(ctx, p, ks, a...) })
	if slices.ContainsFunc(cmds, func(c *redis.Cmd) bool { return redis.HasErrorPrefix(c.Err(), "NOSCRIPT") }) {
		// The server does not know the script yet (or restarted): send it.
		cmds = run(func(p redis.Pipeliner, ks []string, a []any) *redis.Cmd { return script.Eval(ctx, p, ks, a...) })
	}
	for g, idx := range groups {
		replies, err := cmds[g].StringSlice()
		if err == nil && len(replies) != len(idx) {
			err = fmt.Errorf("%d replies for %d keys", len(replies), len(idx))
		}
		for j, i := range idx {
			if err != nil {
				each(i, "", err)
			} else {
				each(i, replies[j], nil)
			}
		}
	}
}

// bySlot groups the indexes of keys by the cluster hash slot of their
// Redis keys (a script's keys must share one; a lock and its counter do).
func bySlot(keys []string, redisKey func(string) string) [][]int {
	var groups [][]int
	at := map[int]int{}
	for i, k := range keys {
		s := slot(redisKey(k))
		g, ok := at[s]
		if !ok {
			g = len(groups)
			at[s] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], i)
	}
	return groups
}

// slot is Redis Cluster's hash slot of key: CRC16 (XMODEM) of its hash
// tag (the text between its first "{" and the next "}", if not empty),
// else of key, modulo 16384.
func slot(key string) int {
	if s := strings.IndexByte(key, '{'); s >= 0 {
		if e := strings.IndexByte(key[s+1:], '}'); e > 0 {
			key = key[s+1 : s+1+e]
		}
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc ^= uint16(key[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc % 16384)
}

// randomValue is a lock value no other holder has, as redsync makes one.
func randomValue() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", errors.New("no random value for the lock")
	}
	return base64.StdEncoding.EncodeToString(b), nil
}
