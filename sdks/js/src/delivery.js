// Delivery of one batch: post, classify the answer, retry with backoff, split on 413.
// I/O is injected (`post`, `sleep`), so the whole retry matrix is testable without a network.

import { Verdict, classify, parseRetryAfter } from './policy.js';

function reason(reply) {
  if (reply.status == null) return `no answer: ${reply.error || 'network error'}`;
  const body = reply.body && typeof reply.body === 'object' ? reply.body : {};
  return `HTTP ${reply.status}: ${body.error || body.detail || ''}`.trim();
}

function rejectedByIndex(count, body) {
  const out = new Map();
  const list = body && Array.isArray(body.rejected) ? body.rejected : [];
  for (const entry of list) {
    if (entry && Number.isInteger(entry.index) && entry.index >= 0 && entry.index < count) {
      out.set(entry.index, String(entry.error ?? ''));
    }
  }
  return out;
}

/**
 * Send `events` until the gateway accepts them, refuses them for good, or retries run out.
 * `post(events)` resolves to `{status, body, retryAfter, error}` (status null: no answer);
 * `sleep(ms)` resolves to false to abandon waiting (shutdown). Returns
 * `{accepted, rejected: [{event, error}], dropped: [{event, code, reason}], requeue: [event]}`;
 * `requeue` holds events still worth sending later (retries exhausted, or waiting abandoned).
 */
export async function deliver(events, { post, sleep, policy, random = Math.random }) {
  const outcome = { accepted: 0, rejected: [], dropped: [], requeue: [] };
  await deliverInto(events, outcome, { post, sleep, policy, random });
  return outcome;
}

async function deliverInto(events, outcome, io) {
  for (let attempt = 0; ; attempt += 1) {
    const reply = await io.post(events);
    const verdict = classify(reply.status);
    if (verdict === Verdict.ACCEPTED) {
      const rejected = rejectedByIndex(events.length, reply.body);
      outcome.accepted += events.length - rejected.size;
      for (const [index, error] of [...rejected].sort((a, b) => a[0] - b[0])) {
        outcome.rejected.push({ event: events[index], error });
      }
      return;
    }
    if (verdict === Verdict.SPLIT) {
      if (events.length === 1) {
        outcome.dropped.push({ event: events[0], code: 'http_413', reason: reason(reply) });
        return;
      }
      const half = Math.floor(events.length / 2);
      await deliverInto(events.slice(0, half), outcome, io);
      await deliverInto(events.slice(half), outcome, io);
      return;
    }
    if (verdict === Verdict.DROP) {
      const rejected = reply.status === 400 ? rejectedByIndex(events.length, reply.body) : new Map();
      events.forEach((event, index) => {
        if (rejected.has(index)) outcome.rejected.push({ event, error: rejected.get(index) });
        else outcome.dropped.push({ event, code: `http_${reply.status}`, reason: reason(reply) });
      });
      return;
    }
    if (attempt >= io.policy.maxRetries) {
      outcome.requeue.push(...events);
      return;
    }
    const wait = io.policy.delay(attempt, parseRetryAfter(reply.retryAfter), io.random);
    if ((await io.sleep(wait)) === false) {
      outcome.requeue.push(...events);
      return;
    }
  }
}
