// Delivery limits and the retry matrix: which gateway answers are retried, and how long to wait.
// Pure functions. The Python SDK (sdks/python/src/pravis_sdk/policy.py) implements the same matrix and
// numbers; change both together.

/** The gateway rejects an event whose JSON is larger; the SDK drops (and reports) it before queueing. */
export const MAX_EVENT_BYTES = 32 * 1024;
/** Events per request when a backlog drains; the gateway accepts 500. */
export const MAX_BATCH_EVENTS = 100;
/** Body bytes per request: half the gateway's 1 MiB, so the envelope never pushes a batch over. */
export const MAX_BATCH_BYTES = 512 * 1024;
/** sendBeacon refuses payloads once the page has 64 KiB in flight; stay under it per beacon. */
export const MAX_BEACON_BYTES = 60 * 1024;
/** Events kept (and persisted) while the gateway is unreachable; beyond it new events are dropped and counted. */
export const MAX_QUEUE_SIZE = 1000;

/** Product guide: a queue flushed every 10 s or at 10 events. */
export const FLUSH_AT = 10;
export const FLUSH_INTERVAL_MS = 10_000;

/** Exponential backoff 1, 2, 4, ... 30 s with jitter: eight retries span about three minutes. */
export const MAX_RETRIES = 8;
export const BACKOFF_BASE_MS = 1000;
export const BACKOFF_CAP_MS = 30_000;
/** A larger Retry-After is clamped, so a misconfigured proxy cannot park a client for hours. */
export const MAX_RETRY_AFTER_MS = 300_000;
/** Up to 10 % added to Retry-After, so clients told the same delay do not come back in lockstep. */
export const RETRY_AFTER_JITTER = 0.1;

export const Verdict = Object.freeze({
  ACCEPTED: 'accepted', // 2xx; a `partial` answer lists the events the gateway refused
  RETRY: 'retry', // 408, 429, 5xx or no answer at all: send the same events again later
  SPLIT: 'split', // 413: send the batch in halves; a single event that is too large is dropped
  DROP: 'drop', // any other status: the request itself is wrong, retrying cannot help
});

/** The retry matrix; `status` null/undefined means no answer (network error, timeout). */
export function classify(status) {
  if (status == null || status === 408 || status === 429 || (status >= 500 && status <= 599)) {
    return Verdict.RETRY;
  }
  if (status >= 200 && status <= 299) return Verdict.ACCEPTED;
  if (status === 413) return Verdict.SPLIT;
  return Verdict.DROP;
}

/**
 * Milliseconds to wait from a Retry-After header (delta-seconds or HTTP-date), clamped to
 * MAX_RETRY_AFTER_MS; null when absent or unreadable.
 */
export function parseRetryAfter(value, now = Date.now()) {
  if (value == null) return null;
  const text = String(value).trim();
  if (text === '') return null;
  let ms;
  if (/^-?\d+(\.\d+)?$/.test(text)) {
    ms = Number(text) * 1000;
  } else {
    const when = Date.parse(text);
    if (Number.isNaN(when)) return null;
    ms = when - now;
  }
  return Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS);
}

export class RetryPolicy {
  constructor({ maxRetries = MAX_RETRIES, baseMs = BACKOFF_BASE_MS, capMs = BACKOFF_CAP_MS } = {}) {
    this.maxRetries = maxRetries;
    this.baseMs = baseMs;
    this.capMs = capMs;
  }

  /** Delay before retry number `attempt` (0-based): exponential, capped, between half and all of the step. */
  backoff(attempt, random = Math.random) {
    const step = Math.min(this.capMs, this.baseMs * 2 ** attempt);
    return step / 2 + (random() * step) / 2;
  }

  /** Wait before the next try: never sooner than the server's Retry-After, plus a little jitter. */
  delay(attempt, retryAfterMs, random = Math.random) {
    const backoff = this.backoff(attempt, random);
    if (retryAfterMs == null) return backoff;
    return Math.max(retryAfterMs, backoff) + random() * RETRY_AFTER_JITTER * retryAfterMs;
  }
}
