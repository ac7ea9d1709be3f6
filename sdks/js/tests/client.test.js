import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { MemoryStorage, PravisClient } from '../src/index.js';
import { MAX_BEACON_BYTES, MAX_EVENT_BYTES } from '../src/policy.js';
import { STALE_QUEUE_MS } from '../src/queue.js';
import { clock, fakeGateway, fastRetry } from './helpers.js';

const clients = [];
const warn = console.warn;
afterEach(async () => {
  console.warn = warn;
  await Promise.all(clients.splice(0).map((c) => c.shutdown({ timeoutMs: 100 })));
});

function make(gateway, options = {}) {
  const client = new PravisClient({
    apiKey: 'pvw_test',
    host: 'http://gateway.test/',
    fetch: gateway.fetch,
    flushIntervalMs: 60_000,
    ...fastRetry,
    ...options,
  });
  clients.push(client);
  return client;
}

// One turn of the event loop: every promise job already due has run (no guess at how long anything takes).
const turn = () => new Promise((resolve) => setImmediate(resolve));
async function until(condition) {
  while (!condition()) await turn();
}

// The client's sleeps, recorded: retries are checked against the waits asked for, not against a stopwatch.
function recordSleeps(client) {
  const asked = [];
  const sleep = client._sleep.bind(client);
  client._sleep = (ms) => {
    asked.push(ms);
    return sleep(ms);
  };
  return asked;
}

test('sends a batch once flushAt events are queued, with key, sent_at and client-made ids', async () => {
  const gateway = fakeGateway();
  const client = make(gateway, { flushAt: 3 });
  const ids = [client.track('button_click', {}, { button_id: 'a' }), client.track('button_click', {}, { button_id: 'b' })];
  await turn();
  assert.equal(gateway.requests.length, 0);
  assert.equal(client.stats().queued, 2);
  ids.push(client.track('button_click', {}, { button_id: 'c' }));
  await client.flush();
  assert.equal(gateway.requests.length, 1);
  const [request] = gateway.requests;
  assert.equal(request.url, 'http://gateway.test/api/v1/analytics/events');
  assert.equal(request.headers['X-API-Key'], 'pvw_test');
  assert.match(request.batch.sent_at, /^\d{4}-\d\d-\d\dT.*Z$/);
  assert.deepEqual(request.batch.events.map((e) => e.event_id), ids);
  assert.ok(ids.every((id) => /^[0-9a-f-]{36}$/.test(id)));
  assert.equal(new Set(request.batch.events.map((e) => e.session_id)).size, 1);
  assert.equal(client.stats().accepted, 3);
});

test('sends what is queued every flushIntervalMs', async (t) => {
  t.mock.timers.enable({ apis: ['setInterval'] });
  const gateway = fakeGateway();
  const client = make(gateway, { flushAt: 100, flushIntervalMs: 50 });
  client.track('custom_ping');
  t.mock.timers.tick(49);
  await turn();
  assert.equal(gateway.requests.length, 0);
  t.mock.timers.tick(1);
  await until(() => gateway.events.length === 1);
  assert.equal(client.stats().accepted, 1);
});

test('full queue drops new events, counts and reports them', async () => {
  console.warn = () => {};
  const errors = [];
  const client = make(fakeGateway(), { flushAt: 100, maxQueueSize: 5, onError: (e) => errors.push(e) });
  const ids = Array.from({ length: 8 }, (_, n) => client.track('custom_ping', { n }));
  assert.deepEqual(ids.slice(5), [null, null, null]);
  assert.deepEqual(client.stats().droppedByReason, { queue_full: 3 });
  assert.equal(client.stats().dropped, 3);
  assert.deepEqual(errors.map((e) => [e.kind, e.events[0].properties.n]), [['dropped', 5], ['dropped', 6], ['dropped', 7]]);
});

test('an event over 32 KiB is dropped before queueing', () => {
  console.warn = () => {};
  const client = make(fakeGateway());
  assert.equal(client.track('custom_blob', { blob: 'x'.repeat(MAX_EVENT_BYTES) }), null);
  assert.deepEqual(client.stats().droppedByReason, { too_large: 1 });
});

test('503 with Retry-After is retried after the wait, the same events once accepted', async () => {
  const gateway = fakeGateway([{ status: 503, headers: { 'Retry-After': '0.2' } }, { status: 429, headers: { 'Retry-After': '0.1' } }]);
  const client = make(gateway);
  const slept = recordSleeps(client);
  const id = client.track('custom_ping');
  await client.flush();
  // Never sooner than Retry-After, plus at most the policy's 10 % jitter.
  assert.equal(slept.length, 2);
  [200, 100].forEach((asked, i) => assert.ok(slept[i] >= asked && slept[i] <= asked * 1.1, `${slept}`));
  assert.equal(gateway.requests.length, 3);
  assert.ok(gateway.requests.every((r) => r.batch.events[0].event_id === id));
  assert.equal(client.stats().accepted, 1);
  assert.equal(client.stats().queued, 0);
});

test('network errors are retried; retries exhausted keep the events queued for the next interval', async () => {
  const gateway = fakeGateway(Array(4).fill({ throw: 'Failed to fetch' }));
  const client = make(gateway);
  client.track('custom_ping');
  await client.flush();
  assert.equal(gateway.requests.length, 4);
  assert.equal(client.stats().queued, 1);
  assert.equal(client.stats().dropped, 0);
  await client.flush();
  assert.equal(client.stats().accepted, 1);
  assert.equal(client.stats().queued, 0);
});

test('401 is not retried and is reported as dropped', async () => {
  console.warn = () => {};
  const errors = [];
  const gateway = fakeGateway([{ status: 401, body: { detail: 'unknown or revoked API key' } }]);
  const client = make(gateway, { onError: (e) => errors.push(e) });
  client.track('custom_ping');
  await client.flush();
  assert.equal(gateway.requests.length, 1);
  assert.deepEqual(client.stats().droppedByReason, { http_401: 1 });
  assert.match(errors[0].reason, /HTTP 401: unknown or revoked/);
});

test('a partial answer reports the rejected event and keeps nothing queued', async () => {
  console.warn = () => {};
  const errors = [];
  const gateway = fakeGateway([{ status: 200, body: { status: 'partial', processed: 1, rejected: [{ index: 1, error: 'rating: too big' }] } }]);
  const client = make(gateway, { onError: (e) => errors.push(e) });
  client.feedback({ rating: 5 });
  client.feedback({ rating: 9 });
  await client.flush();
  assert.deepEqual([client.stats().accepted, client.stats().rejected, client.stats().queued], [1, 1, 0]);
  assert.deepEqual([errors[0].kind, errors[0].events[0].rating], ['rejected', 9]);
});

test('gzip bodies carry Content-Encoding', async () => {
  const gateway = fakeGateway();
  const client = make(gateway, { gzip: true });
  client.track('custom_ping');
  await client.flush();
  assert.equal(gateway.requests[0].headers['Content-Encoding'], 'gzip');
  assert.equal(gateway.events.length, 1);
});

test('persistence: a reload adopts the orphaned queue and sends it once', async () => {
  const storage = new MemoryStorage();
  const first = make(fakeGateway(), { storage, flushAt: 100, beacon: false });
  const ids = [first.track('custom_a'), first.track('custom_b')];
  first._beacon(); // pagehide without sendBeacon: the queue is left for the next page
  clearInterval(first._timer);

  const gateway = fakeGateway();
  const second = make(gateway, { storage, flushAt: 100 });
  await second.flush();
  assert.deepEqual(gateway.events.map((e) => e.event_id), ids);
  assert.equal(second.anonymousId, first.anonymousId);

  const third = make(fakeGateway(), { storage });
  assert.equal(third.stats().queued, 0, 'sent events are not adopted again');
});

test('persistence: a live tab keeps its queue, a stale one is adopted', () => {
  const storage = new MemoryStorage();
  const c = clock();
  const live = make(fakeGateway(), { storage, flushAt: 100, now: c.now });
  live.track('custom_a');
  assert.equal(make(fakeGateway(), { storage, now: c.now }).stats().queued, 0);
  c.advance(STALE_QUEUE_MS + 1);
  assert.equal(make(fakeGateway(), { storage, now: c.now }).stats().queued, 1);
});

test('persistence: events in flight stay stored until the gateway answered', async () => {
  const storage = new MemoryStorage();
  let release;
  const gateway = fakeGateway();
  const slowFetch = async (url, init) => {
    await new Promise((resolve) => {
      release = resolve;
    });
    return gateway.fetch(url, init);
  };
  const client = make(gateway, { storage, fetch: slowFetch });
  const id = client.track('custom_a');
  const flushing = client.flush();
  await until(() => release);
  const stored = () => [...storage.map.entries()].filter(([k]) => k.startsWith('pravis:q:'));
  assert.equal(JSON.parse(stored()[0][1]).events[0].event_id, id);
  release();
  await flushing;
  assert.deepEqual(stored(), []);
});

test('beacon path: text/plain, key in the query string, chunks under 64 KiB, sent events leave storage', async () => {
  const storage = new MemoryStorage();
  const beacons = [];
  const sendBeacon = (url, blob) => {
    beacons.push({ url, blob });
    return beacons.length !== 2; // the browser refuses the second chunk
  };
  const client = make(fakeGateway(), { storage, flushAt: 1000, sendBeacon, apiKey: 'pvw key/1' });
  const ids = Array.from({ length: 30 }, () => client.track('custom_big', { pad: 'x'.repeat(5000) }));

  client._beacon();

  assert.ok(beacons.length >= 3);
  for (const { url, blob } of beacons) {
    assert.equal(url, 'http://gateway.test/api/v1/analytics/events?api_key=pvw%20key%2F1');
    assert.equal(blob.type, 'text/plain');
    assert.ok(blob.size <= MAX_BEACON_BYTES);
  }
  const bodies = await Promise.all(beacons.map(async (b) => JSON.parse(await b.blob.text())));
  assert.deepEqual(bodies.flatMap((b) => b.events.map((e) => e.event_id)), ids);
  assert.ok(bodies.every((b) => typeof b.sent_at === 'string'));
  const refused = bodies[1].events.map((e) => e.event_id);
  const left = JSON.parse(storage.getItem(client.queue.key));
  assert.equal(left.orphan, true);
  assert.deepEqual(left.events.map((e) => e.event_id), refused);
  assert.equal(client.stats().beaconed, 30 - refused.length);
});

test('session rotates after 30 minutes idle, not while active', () => {
  const c = clock();
  const gateway = fakeGateway();
  const client = make(gateway, { now: c.now, flushAt: 100 });
  client.track('custom_a');
  const first = client.queue.all()[0].session_id;
  c.advance(29 * 60_000);
  client.track('custom_b');
  c.advance(29 * 60_000);
  client.track('custom_c');
  c.advance(31 * 60_000);
  client.track('custom_d');
  const sessions = client.queue.all().map((e) => e.session_id);
  assert.deepEqual(sessions.slice(0, 3), [first, first, first]);
  assert.notEqual(sessions[3], first);
});

test('identify sends the link from the anonymous id so far; later events carry both ids, same session', () => {
  const client = make(fakeGateway(), { flushAt: 100 });
  const anon = client.anonymousId;
  client.track('custom_a');
  const id = client.identify('u-42', { plan: 'pro' });
  client.track('custom_b');
  const [before, login, after] = client.queue.all();
  assert.equal(login.event_id, id);
  assert.deepEqual(
    [login.event_type, login.user_id, login.anonymous_id, login.properties],
    ['identify', 'u-42', anon, { plan: 'pro' }],
  );
  assert.equal(before.user_id, undefined);
  assert.deepEqual([after.user_id, after.anonymous_id], ['u-42', anon]);
  assert.deepEqual([login.session_id, after.session_id], [before.session_id, before.session_id]);
});

test('identify of the current user sends again only with traits', () => {
  const client = make(fakeGateway(), { flushAt: 100 });
  client.identify('u-42');
  assert.equal(client.identify('u-42'), null);
  assert.ok(client.identify('u-42', { plan: 'team' }));
  assert.deepEqual(client.queue.all().map((e) => [e.event_type, e.properties]), [['identify', {}], ['identify', { plan: 'team' }]]);
});

test('identify(null) and reset() log out: new anonymous id and session, nothing sent', () => {
  const client = make(fakeGateway(), { flushAt: 100 });
  const anons = [client.anonymousId];
  client.identify('u-42');
  client.track('custom_a');
  assert.equal(client.identify(null), null);
  anons.push(client.anonymousId);
  client.track('custom_b');
  client.identify('u-43');
  client.reset();
  anons.push(client.anonymousId);
  client.track('custom_c');
  const events = client.queue.all();
  assert.deepEqual(events.map((e) => e.event_type), ['identify', 'custom_a', 'custom_b', 'identify', 'custom_c']);
  assert.equal(new Set(anons).size, 3);
  assert.deepEqual(events.map((e) => [e.user_id, e.anonymous_id]), [
    ['u-42', anons[0]],
    ['u-42', anons[0]],
    [undefined, anons[1]],
    ['u-43', anons[1]],
    [undefined, anons[2]],
  ]);
  assert.equal(new Set([events[1].session_id, events[2].session_id, events[4].session_id]).size, 3);
  assert.equal(client.storage.getItem('pravis:user'), null);
  assert.equal(client.storage.getItem('pravis:anon'), anons[2]);
});

test('identify of another user while logged in logs out first: the old anonymous id is not linked to them', () => {
  const client = make(fakeGateway(), { flushAt: 100 });
  const first = client.anonymousId;
  client.identify('u-42');
  client.identify('u-43');
  const [, second] = client.queue.all();
  assert.deepEqual([second.event_type, second.user_id], ['identify', 'u-43']);
  assert.equal(second.anonymous_id, client.anonymousId);
  assert.notEqual(second.anonymous_id, first);
});

test('the identity survives a reload; identify after it sends nothing new', () => {
  const storage = new MemoryStorage();
  const first = make(fakeGateway(), { storage, flushAt: 100 });
  first.identify('u-42');
  const second = make(fakeGateway(), { storage, flushAt: 100 });
  assert.deepEqual([second.userId, second.anonymousId], ['u-42', first.anonymousId]);
  assert.equal(second.identify('u-42'), null);
});

test('alias sends only the two ids it links and leaves the client identity alone', () => {
  const client = make(fakeGateway(), { flushAt: 100 });
  client.identify('u-42');
  const id = client.alias('u-old', 'u-42');
  const alias = client.queue.all()[1];
  assert.equal(alias.event_id, id);
  assert.deepEqual([alias.event_type, alias.user_id, alias.previous_id], ['alias', 'u-42', 'u-old']);
  assert.equal('anonymous_id' in alias, false);
  assert.equal('session_id' in alias, false);
  assert.equal(client.userId, 'u-42');
  for (const [previous, user] of [['u-1', 'u-1'], ['', 'u-1'], ['u-1', null]]) {
    assert.throws(() => client.alias(previous, user), /alias needs/);
  }
});

test('identify and alias respect analytics consent; the login still applies to later events', () => {
  const client = make(fakeGateway(), { flushAt: 100 });
  client.setConsent({ analytics: false });
  assert.equal(client.identify('u-42'), null);
  assert.equal(client.alias('anon-1', 'u-42'), null);
  assert.equal(client.userId, 'u-42');
  client.setConsent({ analytics: true });
  client.track('custom_a');
  assert.deepEqual(client.queue.all().map((e) => [e.event_type, e.user_id]), [
    ['consent_change', undefined],
    ['consent_change', 'u-42'],
    ['custom_a', 'u-42'],
  ]);
});

test('identify and alias are queued, batched and retried like any event', async () => {
  const gateway = fakeGateway([{ status: 503, headers: { 'Retry-After': '0' } }]);
  const client = make(gateway, { flushAt: 3 });
  const ids = [client.track('custom_a'), client.identify('u-42'), client.alias('anon-old', 'u-42')];
  await client.flush();
  assert.equal(gateway.requests.length, 2);
  assert.ok(gateway.requests.every((r) => r.batch.events.map((e) => e.event_id).join() === ids.join()));
  assert.equal(client.stats().accepted, 3);
});

test('consent: the change is recorded; analytics=false stops collection', () => {
  const client = make(fakeGateway(), { flushAt: 100 });
  assert.throws(() => client.setConsent({ marketing: true }));
  const id = client.setConsent({ analytics: false, performance: true }, { source: 'banner' });
  assert.ok(id);
  assert.equal(client.track('custom_a'), null);
  const [event] = client.queue.all();
  assert.deepEqual([event.event_type, event.consent, event.source], ['consent_change', { analytics: false, performance: true }, 'banner']);
  assert.equal('explicit' in JSON.parse(JSON.stringify(event)), false);
  client.setConsent({ analytics: true }, { explicit: true });
  assert.equal(client.queue.all()[1].explicit, true);
});

test('shutdown in memory sends what is left and reports what it could not', async () => {
  console.warn = () => {};
  const gateway = fakeGateway(Array(20).fill({ status: 503, headers: { 'Retry-After': '30' } }));
  const client = make(gateway, { flushAt: 100 });
  client.track('custom_a');
  // Retry-After is 30 s: resolving at all (the test runner's timeout bounds a hang) shows the wait was cut short.
  await client.shutdown({ timeoutMs: 200 });
  assert.equal(gateway.requests.length, 1);
  assert.deepEqual(client.stats().droppedByReason, { shutdown: 1 });
  assert.equal(client.track('custom_b'), null);
});

test('pagehide during a keepalive request: those events belong to the browser, the rest go to the beacon', async () => {
  const storage = new MemoryStorage();
  const beacons = [];
  let release;
  const gateway = fakeGateway();
  const slowFetch = async (url, init) => {
    assert.equal(init.keepalive, true);
    await new Promise((resolve) => {
      release = resolve;
    });
    return gateway.fetch(url, init);
  };
  const sendBeacon = (url, blob) => beacons.push(blob) > 0;
  const client = make(gateway, { storage, fetch: slowFetch, sendBeacon, flushAt: 100 });
  client.keepalive = true; // as in a browser
  const inFlight = [client.track('custom_a'), client.track('custom_b')];
  const flushing = client.flush();
  await until(() => release);
  const later = client.track('custom_c');

  client._beacon();

  const beaconed = JSON.parse(await beacons[0].text()).events.map((e) => e.event_id);
  assert.deepEqual(beaconed, [later]);
  assert.equal(storage.getItem(client.queue.key), null);
  release();
  await flushing;
  assert.deepEqual(gateway.events.map((e) => e.event_id), inFlight);
});
