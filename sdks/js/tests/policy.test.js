import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deliver } from '../src/delivery.js';
import { MAX_RETRY_AFTER_MS, RetryPolicy, Verdict, classify, parseRetryAfter } from '../src/policy.js';

const EVENTS = [0, 1, 2, 3].map((i) => ({ event_id: `e${i}` }));
const POLICY = new RetryPolicy({ maxRetries: 3 });

async function run(replies, { giveUpAfter = null } = {}) {
  const sends = [];
  const sleeps = [];
  const queue = [...replies];
  const outcome = await deliver(EVENTS, {
    post: async (events) => {
      sends.push(events.map((e) => e.event_id));
      return queue.shift() || { status: 200, body: { status: 'ok' } };
    },
    sleep: async (ms) => {
      sleeps.push(ms);
      return giveUpAfter === null || sleeps.length <= giveUpAfter;
    },
    policy: POLICY,
    random: () => 0.5,
  });
  return { outcome, sends, sleeps };
}

// status, verdict, requests made when the first answer has that status (and the next one is 200)
const MATRIX = [
  [200, Verdict.ACCEPTED, 1],
  [204, Verdict.ACCEPTED, 1],
  [null, Verdict.RETRY, 2],
  [408, Verdict.RETRY, 2],
  [429, Verdict.RETRY, 2],
  [500, Verdict.RETRY, 2],
  [502, Verdict.RETRY, 2],
  [503, Verdict.RETRY, 2],
  [504, Verdict.RETRY, 2],
  [301, Verdict.DROP, 1],
  [400, Verdict.DROP, 1],
  [401, Verdict.DROP, 1],
  [403, Verdict.DROP, 1],
  [404, Verdict.DROP, 1],
  [415, Verdict.DROP, 1],
  [422, Verdict.DROP, 1],
  [413, Verdict.SPLIT, 3],
];

for (const [status, verdict, requests] of MATRIX) {
  test(`retry matrix: ${status} → ${verdict}`, async () => {
    assert.equal(classify(status), verdict);
    const { outcome, sends, sleeps } = await run([{ status, body: {}, error: 'refused' }]);
    assert.equal(sends.length, requests);
    assert.equal(sleeps.length, verdict === Verdict.RETRY ? 1 : 0);
    if (verdict === Verdict.DROP) {
      assert.equal(outcome.accepted, 0);
      assert.deepEqual(outcome.dropped.map((d) => d.code), Array(4).fill(`http_${status}`));
    } else {
      assert.equal(outcome.accepted, 4);
      assert.deepEqual(outcome.dropped, []);
    }
  });
}

test('retries resend the same events, then hand them back for later', async () => {
  const { outcome, sends, sleeps } = await run(Array(10).fill({ status: 503, body: {} }));
  assert.equal(sends.length, 4);
  assert.ok(sends.every((ids) => ids.join() === 'e0,e1,e2,e3'));
  assert.equal(sleeps.length, 3);
  assert.deepEqual(outcome.requeue, EVENTS);
  assert.deepEqual(outcome.dropped, []);
});

test('abandoning a wait hands the batch back', async () => {
  const { outcome, sends } = await run(Array(10).fill({ status: 503, body: {} }), { giveUpAfter: 0 });
  assert.equal(sends.length, 1);
  assert.equal(outcome.requeue.length, 4);
});

test('Retry-After is a floor for the wait, with at most 10 % jitter', async () => {
  const { sleeps } = await run([
    { status: 429, body: {}, retryAfter: '7' },
    { status: 503, body: {}, retryAfter: '2' },
  ]);
  assert.ok(sleeps[0] >= 7000 && sleeps[0] <= 7700, String(sleeps[0]));
  assert.ok(sleeps[1] >= 2000 && sleeps[1] <= 2200, String(sleeps[1]));
});

test('partial answer: rejected events are reported, not retried', async () => {
  const body = { status: 'partial', processed: 2, rejected: [{ index: 1, error: 'rating: bad' }, { index: 3, error: 'x' }] };
  const { outcome, sends } = await run([{ status: 200, body }]);
  assert.equal(sends.length, 1);
  assert.equal(outcome.accepted, 2);
  assert.deepEqual(outcome.rejected, [
    { event: EVENTS[1], error: 'rating: bad' },
    { event: EVENTS[3], error: 'x' },
  ]);
});

test('413 splits until the halves fit; a lone oversize event is dropped', async () => {
  const { outcome, sends } = await run([
    { status: 413, body: {} },
    { status: 413, body: {} },
    { status: 200, body: {} },
    { status: 413, body: {} },
    { status: 200, body: {} },
  ]);
  assert.deepEqual(sends, [['e0', 'e1', 'e2', 'e3'], ['e0', 'e1'], ['e0'], ['e1'], ['e2', 'e3']]);
  assert.equal(outcome.accepted, 3);
  assert.deepEqual(outcome.dropped.map((d) => [d.event.event_id, d.code]), [['e1', 'http_413']]);
});

test('parseRetryAfter reads seconds and HTTP dates, clamps, ignores garbage', () => {
  const now = Date.parse('2026-01-01T12:00:00Z');
  assert.equal(parseRetryAfter(null), null);
  assert.equal(parseRetryAfter(''), null);
  assert.equal(parseRetryAfter('5'), 5000);
  assert.equal(parseRetryAfter(' 1.5 '), 1500);
  assert.equal(parseRetryAfter('-3'), 0);
  assert.equal(parseRetryAfter('86400'), MAX_RETRY_AFTER_MS);
  assert.equal(parseRetryAfter('soon'), null);
  assert.equal(parseRetryAfter('Thu, 01 Jan 2026 12:00:30 GMT', now), 30000);
});

test('backoff grows exponentially, is capped and jittered', () => {
  const policy = new RetryPolicy({ baseMs: 1000, capMs: 30000 });
  for (let attempt = 0; attempt < 10; attempt += 1) {
    const step = Math.min(30000, 1000 * 2 ** attempt);
    const delays = Array.from({ length: 200 }, () => policy.backoff(attempt));
    assert.ok(delays.every((d) => d >= step / 2 && d <= step));
    assert.ok(Math.max(...delays) - Math.min(...delays) > step / 4);
  }
});
