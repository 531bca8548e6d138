package imapd

import (
	"container/list"
	"sync"
)

// structureKey names one message for the cache. UIDVALIDITY is part of
// it, so a recreated mailbox never serves stale structures.
type structureKey struct {
	user, mailbox string
	uidValidity   uint32
	uid           uint32
}

// structure is what FETCH ENVELOPE, BODY and BODYSTRUCTURE answer, in
// wire syntax. A nil field is not computed yet (ENVELOPE can be made from
// the header alone).
type structure struct {
	envelope, body, bodyStructure []byte
}

// structureCache is a bounded LRU of message structures shared by all
// sessions: messages are immutable once stored, so an entry never needs
// invalidating, only evicting.
type structureCache struct {
	mu    sync.Mutex
	max   int
	ll    *list.List
	items map[structureKey]*list.Element
}

type cacheEntry struct {
	key structureKey
	val structure
}

func newStructureCache(max int) *structureCache {
	return &structureCache{max: max, ll: list.New(), items: make(map[structureKey]*list.Element)}
}

func (c *structureCache) get(k structureKey) (structure, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[k]
	if !ok {
		return structure{}, false
	}
	c.ll.MoveToFront(e)
	return e.Value.(*cacheEntry).val, true
}

// put merges v into the entry for k (fields already known are kept).
func (c *structureCache) put(k structureKey, v structure) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		old := &e.Value.(*cacheEntry).val
		if v.envelope != nil {
			old.envelope = v.envelope
		}
		if v.body != nil {
			old.body = v.body
		}
		if v.bodyStructure != nil {
			old.bodyStructure = v.bodyStructure
		}
		c.ll.MoveToFront(e)
		return
	}
	c.items[k] = c.ll.PushFront(&cacheEntry{key: k, val: v})
	for c.ll.Len() > c.max {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.items, last.Value.(*cacheEntry).key)
	}
}
