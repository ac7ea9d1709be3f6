// PravisClient: builds events, queues them (persisted), flushes every `flushIntervalMs` or at `flushAt`
// events, retries per the retry matrix, and hands what is left to sendBeacon when the page goes away.

import { deliver } from './delivery.js';
import {
  FLUSH_AT,
  FLUSH_INTERVAL_MS,
  MAX_BATCH_BYTES,
  MAX_BATCH_EVENTS,
  MAX_BEACON_BYTES,
  MAX_EVENT_BYTES,
  MAX_QUEUE_SIZE,
  RetryPolicy,
} from './policy.js';
import { MemoryStorage, PersistentQueue, byteLength } from './queue.js';

export const SDK_NAME = 'pravis-js';
export const SDK_VERSION = '0.1.0';
export const EVENTS_PATH = '/api/v1/analytics/events';
/** A session ends after 30 minutes without events. */
export const SESSION_IDLE_MS = 30 * 60 * 1000;
export const CONSENT_CATEGORIES = Object.freeze(['analytics', 'performance', 'feedback', 'personalization']);
/** Event types whose schema carries `user_agent` (UserEvent); others refuse unknown fields. */
const USER_EVENT_TYPES = new Set([
  'page_view',
  'button_click',
  'feature_use',
  'error',
  'survey_shown',
  'survey_dismissed',
  'survey_answered',
  'feature_request',
  'feature_request_vote',
]);

export function uuid() {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === 'function') return c.randomUUID();
  const b = c.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function defaultStorage() {
  try {
    const storage = globalThis.localStorage;
    if (storage) {
      storage.setItem('pravis:probe', '1');
      storage.removeItem('pravis:probe');
      return { storage, persistent: true };
    }
  } catch {
    // Disabled storage (privacy mode, sandboxed iframe): fall back to memory.
  }
  return { storage: new MemoryStorage(), persistent: false };
}

function defined(object) {
  return Object.fromEntries(Object.entries(object).filter(([, v]) => v !== undefined && v !== null));
}

export class PravisClient {
  constructor(options = {}) {
    const {
      apiKey,
      host = globalThis.location ? globalThis.location.origin : undefined,
      flushAt = FLUSH_AT,
      flushIntervalMs = FLUSH_INTERVAL_MS,
      maxQueueSize = MAX_QUEUE_SIZE,
      maxRetries,
      retryBaseMs,
      retryCapMs,
      gzip = false,
      beacon = true,
      flushOnHide = true,
      namespace = 'pravis',
      sessionIdleMs = SESSION_IDLE_MS,
      appVersion,
      onError,
      now = Date.now,
      random = Math.random,
    } = options;
    if (!apiKey) throw new Error('pravis: apiKey is required');
    if (!host) throw new Error('pravis: host is required outside a browser');
    this.apiKey = apiKey;
    this.host = host.replace(/\/+$/, '');
    this.url = this.host + EVENTS_PATH;
    this.flushAt = Math.max(1, flushAt);
    this.flushIntervalMs = flushIntervalMs;
    this.policy = new RetryPolicy({ maxRetries, baseMs: retryBaseMs, capMs: retryCapMs });
    this.gzip = gzip && typeof CompressionStream !== 'undefined';
    this.sessionIdleMs = sessionIdleMs;
    this.appVersion = appVersion;
    this.onError = onError;
    this.now = now;
    this.random = random;
    this.browser = typeof window !== 'undefined' && typeof document !== 'undefined';
    this.fetch = options.fetch || globalThis.fetch.bind(globalThis);
    const nav = globalThis.navigator;
    this.sendBeacon =
      options.sendBeacon || (beacon && nav && typeof nav.sendBeacon === 'function' ? nav.sendBeacon.bind(nav) : null);
    if (!beacon) this.sendBeacon = null;
    this.flushOnHide = flushOnHide;
    this.keepalive = this.browser; // fetch keepalive: browsers only, bodies under the 64 KiB it allows

    const chosen = options.storage ? { storage: options.storage, persistent: true } : defaultStorage();
    this.storage = chosen.storage;
    this.persistent = chosen.persistent;
    this.prefix = `${namespace}:`;
    this.counts = { accepted: 0, rejected: 0, dropped: 0, beaconed: 0, droppedByReason: {} };
    this._queueFull = false;
    this._storageWarned = false;
    this._sleepers = new Set();
    this._handedOff = new Set(); // ids in a keepalive request: it outlives the page, like a beacon
    this._flushing = null;
    this._again = false;
    this._closed = false;

    this.queue = new PersistentQueue({
      storage: this.storage,
      prefix: this.prefix,
      instanceId: uuid(),
      maxSize: maxQueueSize,
      now,
      onStorageError: (error) => this._storageError(error),
    });
    this.anonymousId = this._get('anon') || this._set('anon', uuid());
    this.userId = this._get('user');
    this.consent = JSON.parse(this._get('consent') || '{}');

    this._timer = setInterval(() => this.flush(), flushIntervalMs);
    if (typeof this._timer.unref === 'function') this._timer.unref();
    this._listen();
    if (this.queue.adopt() > 0) this.flush();
  }

  // ---- public API -------------------------------------------------------------------------------

  /** Queue an event; `fields` are its type's top-level fields. Returns its event_id, or null if not queued. */
  track(eventType, properties = {}, fields = {}) {
    if (this._closed) return null;
    if (this.consent.analytics === false && eventType !== 'consent_change') return null;
    const event = this._build(eventType, properties, fields);
    const size = byteLength(event);
    if (size > MAX_EVENT_BYTES) {
      this._drop([event], 'too_large', `${eventType} event is ${size} bytes; the limit is ${MAX_EVENT_BYTES}`);
      return null;
    }
    if (!this.queue.push(event)) {
      if (!this._queueFull) console.warn(`pravis: event queue full (${this.queue.maxSize}); dropping new events`);
      this._queueFull = true;
      this._drop([event], 'queue_full', 'event queue full', false);
      return null;
    }
    this._queueFull = false;
    if (this.queue.length >= this.flushAt) this.flush();
    return event.event_id;
  }

  /**
   * The visitor logged in as `userId`: sends an `identify` event linking the anonymous id used so far to it
   * (`traits` as its properties); later events carry both ids. Identifying the current user again sends
   * something only with traits. Switching straight to another user logs out first, so the previous user's
   * anonymous id is never linked to the next one. `identify(null)` is `reset()`. Rules: docs/identity.md.
   */
  identify(userId, traits) {
    if (userId == null) {
      this.reset();
      return null;
    }
    const id = String(userId);
    if (id === this.userId && !traits) return null;
    if (this.userId && this.userId !== id) this.reset();
    this.userId = this._set('user', id);
    return this.track('identify', traits);
  }

  /** Log out: a new anonymous id and session, so the next visitor on this device is not linked to this
   * user. Sends nothing. */
  reset() {
    this.userId = null;
    this._remove('user');
    this.anonymousId = this._set('anon', uuid());
    this._remove('session');
  }

  /**
   * `previousId` (an anonymous id or another user id) is the same person as `userId`, the id to keep: sends
   * an `alias` event carrying only those two ids (not this device's anonymous id or session, which would
   * link more than asked). The client's own identity does not change. The gateway refuses to merge two
   * users who each have a history unless forced with the secret key (docs/identity.md).
   */
  alias(previousId, userId) {
    if (!previousId || !userId || String(previousId) === String(userId)) {
      throw new Error('pravis: alias needs a previousId and a different userId');
    }
    return this.track(
      'alias',
      {},
      { user_id: String(userId), previous_id: String(previousId), anonymous_id: undefined, session_id: undefined },
    );
  }

  /** A page_view of the current page (`fields.page_url` etc. outside browsers). */
  page(properties = {}, fields = {}) {
    const doc = this.browser ? document : null;
    return this.track('page_view', properties, {
      page_title: doc && doc.title ? doc.title.slice(0, 1024) : undefined,
      referrer: doc && doc.referrer ? doc.referrer : undefined,
      ...fields,
    });
  }

  /** A 1-5 rating; `interactionId` joins it to the AI request it rates. */
  feedback({ rating, interactionId, comment, context, properties = {} } = {}) {
    return this.track('feedback', properties, { rating, interaction_id: interactionId, comment, context });
  }

  /** Record a consent change; with `analytics: false` no further events are collected. `explicit: true` says the
   * user acted just now (a banner click): the gateway needs it to grant anything after the user's data was deleted. */
  setConsent(consent, { source, explicit } = {}) {
    const names = Object.keys(consent || {});
    if (!names.length || names.some((name) => !CONSENT_CATEGORIES.includes(name))) {
      throw new Error(`pravis: consent categories are ${CONSENT_CATEGORIES.join(', ')}`);
    }
    const clean = Object.fromEntries(names.map((name) => [name, Boolean(consent[name])]));
    this.consent = { ...this.consent, ...clean };
    this._set('consent', JSON.stringify(this.consent));
    return this.track('consent_change', {}, { consent: clean, source, explicit });
  }

  /** Send everything queued; resolves when the gateway answered (or retries were used up). */
  flush() {
    if (this._flushing) {
      this._again = true;
      return this._flushing;
    }
    this._flushing = (async () => {
      try {
        do {
          this._again = false;
          await this._drain();
        } while (this._again && !this._stalled);
      } finally {
        this._flushing = null;
      }
    })();
    return this._flushing;
  }

  /** Stop timers and listeners and send what is left within `timeoutMs`. Unsent events stay persisted in
   * localStorage for the next page load; in memory they are reported as dropped. */
  async shutdown({ timeoutMs = 10_000 } = {}) {
    if (this._closed) return;
    clearInterval(this._timer);
    this._unlisten();
    let timer;
    const deadline = new Promise((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([this.flush(), deadline]);
    clearTimeout(timer);
    this._closed = true;
    for (const wake of this._sleepers) wake(false);
    if (this._flushing) await this._flushing;
    if (this.persistent) {
      this.queue.persist(true);
    } else {
      const left = this.queue.drain();
      if (left.length) this._drop(left, 'shutdown', 'client shut down before these events could be sent');
    }
  }

  /** Counters of every event: queued now, accepted, rejected by the gateway, dropped by the SDK, beaconed. */
  stats() {
    return { queued: this.queue.size, ...this.counts, droppedByReason: { ...this.counts.droppedByReason } };
  }

  // ---- events -----------------------------------------------------------------------------------

  _build(eventType, properties, fields) {
    const browserFields = this.browser
      ? {
          page_url: location.href.slice(0, 2048),
          locale: navigator.language ? navigator.language.slice(0, 35) : undefined,
          user_agent: USER_EVENT_TYPES.has(eventType) ? navigator.userAgent.slice(0, 1024) : undefined,
        }
      : {};
    return defined({
      event_id: uuid(),
      event_type: eventType,
      timestamp: new Date(this.now()).toISOString(),
      user_id: this.userId || undefined,
      anonymous_id: this.anonymousId,
      session_id: this._session(),
      properties: { ...properties },
      sdk_name: SDK_NAME,
      sdk_version: SDK_VERSION,
      app_version: this.appVersion,
      ...browserFields,
      ...fields,
    });
  }

  _session() {
    const now = this.now();
    let session = null;
    try {
      session = JSON.parse(this._get('session') || 'null');
    } catch {
      session = null;
    }
    if (!session || !session.id || now - session.last > this.sessionIdleMs) session = { id: uuid() };
    session.last = now;
    this._set('session', JSON.stringify(session));
    return session.id;
  }

  // ---- delivery ---------------------------------------------------------------------------------

  async _drain() {
    this._stalled = false;
    while (this.queue.length && !this._closed) {
      const batch = this.queue.take(MAX_BATCH_EVENTS, MAX_BATCH_BYTES);
      const outcome = await deliver(batch, {
        post: (events) => this._post(events),
        sleep: (ms) => this._sleep(ms),
        policy: this.policy,
        random: this.random,
      });
      this._settle(batch, outcome);
      if (outcome.requeue.length) {
        this._stalled = true; // gateway unreachable: try again at the next interval
        return;
      }
    }
  }

  _settle(batch, outcome) {
    const back = new Set(outcome.requeue.map((e) => e.event_id));
    this.queue.settle(batch.filter((e) => !back.has(e.event_id)));
    if (outcome.requeue.length) this.queue.requeue(outcome.requeue);
    this.counts.accepted += outcome.accepted;
    for (const { event, error } of outcome.rejected) {
      this.counts.rejected += 1;
      console.warn(`pravis: gateway rejected an event: ${error}`);
      this._report('rejected', error, [event]);
    }
    const byReason = new Map();
    for (const { event, code, reason } of outcome.dropped) {
      const entry = byReason.get(reason) || { code, events: [] };
      entry.events.push(event);
      byReason.set(reason, entry);
    }
    for (const [reason, { code, events }] of byReason) this._drop(events, code, reason);
  }

  async _body(events) {
    const text = JSON.stringify({ events, sent_at: new Date(this.now()).toISOString() });
    if (!this.gzip) return { body: text, size: text.length, headers: {} };
    const stream = new Blob([text]).stream().pipeThrough(new CompressionStream('gzip'));
    const body = new Uint8Array(await new Response(stream).arrayBuffer());
    return { body, size: body.byteLength, headers: { 'Content-Encoding': 'gzip' } };
  }

  async _post(events) {
    try {
      const { body, size, headers } = await this._body(events);
      const keepalive = this.keepalive && size < MAX_BEACON_BYTES;
      if (keepalive) this._handedOff = new Set(events.map((e) => e.event_id));
      const response = await this.fetch(this.url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-API-Key': this.apiKey, ...headers },
        body,
        keepalive,
      }).finally(() => {
        this._handedOff = new Set();
      });
      let parsed = null;
      try {
        parsed = await response.json();
      } catch {
        parsed = null;
      }
      return { status: response.status, body: parsed, retryAfter: response.headers.get('Retry-After') };
    } catch (error) {
      return { status: null, body: null, error: String(error && error.message ? error.message : error) };
    }
  }

  _sleep(ms) {
    if (this._closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const wake = (value) => {
        clearTimeout(timer);
        this._sleepers.delete(wake);
        resolve(value);
      };
      const timer = setTimeout(() => wake(true), ms);
      this._sleepers.add(wake);
    });
  }

  /**
   * Page going away. Events in a keepalive request already belong to the browser (it completes that
   * request after the page is gone, as it does a beacon), so they leave storage; every other unsettled
   * event goes to sendBeacon. Whatever the beacon refuses stays stored, orphaned, for the next page load.
   */
  _beacon() {
    const handed = this.queue.all().filter((e) => this._handedOff.has(e.event_id));
    if (handed.length) this.queue.remove(handed);
    if (!this.sendBeacon) {
      this.queue.persist(true);
      return;
    }
    const url = `${this.url}?api_key=${encodeURIComponent(this.apiKey)}`;
    let chunk = [];
    let bytes = 0;
    const send = () => {
      if (!chunk.length) return;
      const body = JSON.stringify({ events: chunk, sent_at: new Date(this.now()).toISOString() });
      let ok = false;
      try {
        ok = this.sendBeacon(url, new Blob([body], { type: 'text/plain' }));
      } catch {
        ok = false;
      }
      if (ok) {
        this.counts.beaconed += chunk.length;
        this.queue.remove(chunk);
      }
      chunk = [];
      bytes = 0;
    };
    for (const event of this.queue.all()) {
      const size = byteLength(event) + 1;
      if (chunk.length && bytes + size > MAX_BEACON_BYTES - 200) send();
      chunk.push(event);
      bytes += size;
    }
    send();
    this.queue.persist(true);
  }

  // ---- browser lifecycle ------------------------------------------------------------------------

  _listen() {
    if (!this.browser) return;
    this._onPageHide = () => this._beacon();
    this._onPageShow = (e) => {
      if (e.persisted) this.queue.persist(false); // restored from the back/forward cache: ours again
    };
    this._onVisibility = () => {
      if (this.flushOnHide && document.visibilityState === 'hidden') this.flush();
    };
    window.addEventListener('pagehide', this._onPageHide);
    window.addEventListener('pageshow', this._onPageShow);
    document.addEventListener('visibilitychange', this._onVisibility);
  }

  _unlisten() {
    if (!this.browser) return;
    window.removeEventListener('pagehide', this._onPageHide);
    window.removeEventListener('pageshow', this._onPageShow);
    document.removeEventListener('visibilitychange', this._onVisibility);
  }

  // ---- reporting and storage --------------------------------------------------------------------

  _drop(events, code, reason, warn = true) {
    this.counts.dropped += events.length;
    this.counts.droppedByReason[code] = (this.counts.droppedByReason[code] || 0) + events.length;
    if (warn) console.warn(`pravis: ${events.length} events dropped: ${reason}`);
    this._report('dropped', reason, events);
  }

  _report(kind, reason, events) {
    if (!this.onError) return;
    try {
      this.onError({ kind, reason, events });
    } catch (error) {
      console.error('pravis: onError callback failed', error);
    }
  }

  _storageError(error) {
    if (this._storageWarned) return;
    this._storageWarned = true;
    console.warn(`pravis: could not persist the event queue (${error && error.name}); keeping it in memory`);
  }

  _get(name) {
    try {
      return this.storage.getItem(this.prefix + name);
    } catch {
      return null;
    }
  }

  _set(name, value) {
    try {
      this.storage.setItem(this.prefix + name, value);
    } catch (error) {
      this._storageError(error);
    }
    return value;
  }

  _remove(name) {
    try {
      this.storage.removeItem(this.prefix + name);
    } catch {
      // nothing stored, nothing to remove
    }
  }
}
