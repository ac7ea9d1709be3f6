// The bounded event queue, persisted in a Web Storage (localStorage in browsers, memory in Node).
//
// Each page instance writes its queue under its own key, so tabs never overwrite each other. At pagehide
// the instance marks its key orphaned; a later page load adopts orphaned queues, and queues whose owner
// stopped writing long ago (a crashed tab), and sends them. Events stay persisted while in flight and
// leave storage only once settled, so a reload mid-request loses nothing; the warehouse deduplicates on
// event_id if such an event is sent twice.

/** A queue untouched this long belongs to a tab that is gone (or cannot send); another page may adopt it. */
export const STALE_QUEUE_MS = 60_000;

const encoder = new TextEncoder();

export function byteLength(event) {
  return encoder.encode(JSON.stringify(event)).length;
}

/** Web Storage API over a Map: Node's default, and a stand-in for localStorage in tests. */
export class MemoryStorage {
  constructor() {
    this.map = new Map();
  }

  get length() {
    return this.map.size;
  }

  key(index) {
    return [...this.map.keys()][index] ?? null;
  }

  getItem(key) {
    return this.map.has(key) ? this.map.get(key) : null;
  }

  setItem(key, value) {
    this.map.set(key, String(value));
  }

  removeItem(key) {
    this.map.delete(key);
  }
}

export class PersistentQueue {
  constructor({ storage, prefix, instanceId, maxSize, now = Date.now, onStorageError = () => {} }) {
    this.storage = storage;
    this.prefix = `${prefix}q:`;
    this.key = this.prefix + instanceId;
    this.maxSize = maxSize;
    this.now = now;
    this.onStorageError = onStorageError;
    this.pending = [];
    this.inflight = [];
  }

  get length() {
    return this.pending.length;
  }

  get size() {
    return this.pending.length + this.inflight.length;
  }

  /** Take over orphaned and stale queues of other page instances; returns how many events were adopted. */
  adopt() {
    const known = new Set(this.pending.map((e) => e.event_id));
    let adopted = 0;
    for (const key of this.keys()) {
      if (key === this.key) continue;
      let saved;
      try {
        saved = JSON.parse(this.storage.getItem(key));
      } catch {
        saved = null;
      }
      if (saved && !saved.orphan && this.now() - (saved.updatedAt || 0) < STALE_QUEUE_MS) continue;
      this.storage.removeItem(key);
      for (const event of (saved && saved.events) || []) {
        if (event && event.event_id && !known.has(event.event_id) && this.size < this.maxSize) {
          known.add(event.event_id);
          this.pending.push(event);
          adopted += 1;
        }
      }
    }
    if (adopted) this.persist();
    return adopted;
  }

  keys() {
    const keys = [];
    for (let i = 0; i < this.storage.length; i += 1) {
      const key = this.storage.key(i);
      if (key && key.startsWith(this.prefix)) keys.push(key);
    }
    return keys;
  }

  /** Queue one event; false when the queue is full (the caller counts the drop). */
  push(event) {
    if (this.size >= this.maxSize) return false;
    this.pending.push(event);
    this.persist();
    return true;
  }

  /** Move up to `maxEvents` events, at most `maxBytes` of JSON (at least one), in flight. */
  take(maxEvents, maxBytes) {
    const batch = [];
    let bytes = 0;
    while (this.pending.length && batch.length < maxEvents) {
      const size = byteLength(this.pending[0]) + 1;
      if (batch.length && bytes + size > maxBytes) break;
      batch.push(this.pending.shift());
      bytes += size;
    }
    this.inflight.push(...batch);
    return batch;
  }

  /** Forget in-flight events that reached a final state (accepted, rejected, dropped). */
  settle(events) {
    const done = new Set(events.map((e) => e.event_id));
    this.inflight = this.inflight.filter((e) => !done.has(e.event_id));
    this.persist();
  }

  /** Put in-flight events back at the front, to be sent again later. */
  requeue(events) {
    const back = new Set(events.map((e) => e.event_id));
    this.inflight = this.inflight.filter((e) => !back.has(e.event_id));
    this.pending.unshift(...events);
    this.persist();
  }

  /** Everything not yet settled, in order: in flight first. */
  all() {
    return [...this.inflight, ...this.pending];
  }

  /** Remove events wherever they are (e.g. handed to sendBeacon). */
  remove(events) {
    const gone = new Set(events.map((e) => e.event_id));
    this.inflight = this.inflight.filter((e) => !gone.has(e.event_id));
    this.pending = this.pending.filter((e) => !gone.has(e.event_id));
    this.persist();
  }

  /** Remove and return everything (shutdown in memory-only environments). */
  drain() {
    const events = this.all();
    this.pending = [];
    this.inflight = [];
    this.persist();
    return events;
  }

  persist(orphan = false) {
    try {
      const events = this.all();
      if (events.length) {
        this.storage.setItem(this.key, JSON.stringify({ events, updatedAt: this.now(), orphan }));
      } else {
        this.storage.removeItem(this.key);
      }
    } catch (error) {
      this.onStorageError(error);
    }
  }
}
