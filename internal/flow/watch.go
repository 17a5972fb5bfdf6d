package flow

import (
	"bytes"
	"context"
	"os"
	"time"
)

// skuRetryChecks is after how many checks of the rules file override SKUs
// that were not found are looked up again (10s with the default interval).
const skuRetryChecks = 10

// watch reloads the rules file when its content changes. Reading it every
// CheckInterval (instead of watching for events) works the same for
// editors that replace the file and for mounted config maps that swap a
// symlink. A file that cannot be read or parsed keeps the rules in force.
func (c *Controller) watch() {
	defer close(c.done)
	t := time.NewTicker(c.cfg.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			c.check()
		}
	}
}

// check reloads the rules file if it changed since it was last read, and
// retries unresolved override SKUs now and then.
func (c *Controller) check() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	data, err := os.ReadFile(c.cfg.RulesFile)
	c.mu.RLock()
	same := err == nil && bytes.Equal(data, c.lastData)
	unresolved := len(c.cur.unresolved) > 0 && time.Since(c.skuRetry) >= skuRetryChecks*c.cfg.CheckInterval
	lastErr := c.lastErr
	c.mu.RUnlock()
	switch {
	case err != nil:
		msg := "cannot read the rules file: " + err.Error()
		if msg != lastErr {
			c.refused(msg)
		}
	case !same:
		c.reload(ctx, data)
	case unresolved:
		c.mu.Lock()
		c.skuRetry = time.Now()
		rules := c.cur.rules
		c.mu.Unlock()
		if err := c.apply(ctx, rules, c.cfg.RulesFile); err != nil {
			c.log.Warn("flow rules: retrying override SKUs failed", "err", err)
		}
	}
}

// reload parses and applies a new version of the rules file.
func (c *Controller) reload(ctx context.Context, data []byte) {
	c.mu.Lock()
	c.lastData = data
	c.mu.Unlock()
	rules, err := Parse(data, c.cfg.Operations)
	if err == nil {
		err = c.apply(ctx, rules, c.cfg.RulesFile)
	}
	if err != nil {
		c.refused(err.Error())
		return
	}
	c.mu.Lock()
	c.lastErr, c.errAt = "", time.Time{}
	unresolved := c.cur.unresolved
	c.mu.Unlock()
	c.metrics.reloaded(true)
	c.log.Info("flow rules reloaded", "file", c.cfg.RulesFile, "operations", len(rules.Operations),
		"hotspot", rules.Hotspot != nil, "breakers", len(rules.Breakers), "unresolvedSkus", unresolved)
}

// refused records a rules file that was not put in force.
func (c *Controller) refused(reason string) {
	c.mu.Lock()
	c.lastErr, c.errAt = reason, time.Now()
	c.mu.Unlock()
	c.metrics.reloaded(false)
	c.log.Error("flow rules file refused; the rules in force stay", "file", c.cfg.RulesFile, "reason", reason)
}
