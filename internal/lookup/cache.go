package lookup

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// Cache wraps a table with a small result cache: at most size keys,
// each kept for ttl, least recently used dropped first. Absent keys are
// cached too (a miss costs a query as much as a hit); errors are not, so
// a back end that comes back is used at once. It suits LDAP and SQL
// tables, which Postfix queries on every lookup; file tables are in
// memory already.
type Cache struct {
	inner Table
	ttl   time.Duration
	size  int
	now   func() time.Time

	mu    sync.Mutex
	lru   *list.List // of *cacheEntry, front = most recent
	byKey map[string]*list.Element
}

type cacheEntry struct {
	key     string
	values  []string
	expires time.Time
}

// NewCache returns t behind a cache of size keys kept ttl each. A size
// or ttl of zero or less gives t itself.
func NewCache(t Table, ttl time.Duration, size int) Table {
	if ttl <= 0 || size <= 0 {
		return t
	}
	return &Cache{inner: t, ttl: ttl, size: size, now: time.Now, lru: list.New(), byKey: make(map[string]*list.Element)}
}

func (c *Cache) Lookup(ctx context.Context, key string) ([]string, error) {
	now := c.now()
	c.mu.Lock()
	if el, ok := c.byKey[key]; ok {
		e := el.Value.(*cacheEntry)
		if now.Before(e.expires) {
			c.lru.MoveToFront(el)
			v := e.values
			c.mu.Unlock()
			return append([]string(nil), v...), nil
		}
		c.lru.Remove(el)
		delete(c.byKey, key)
	}
	c.mu.Unlock()

	v, err := c.inner.Lookup(ctx, key)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[key]; ok {
		c.lru.Remove(el)
		delete(c.byKey, key)
	}
	c.byKey[key] = c.lru.PushFront(&cacheEntry{key: key, values: v, expires: now.Add(c.ttl)})
	for c.lru.Len() > c.size {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.byKey, old.Value.(*cacheEntry).key)
	}
	return append([]string(nil), v...), nil
}

// Len is the number of cached keys.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// Close closes the inner table.
func (c *Cache) Close() error { return c.inner.Close() }
