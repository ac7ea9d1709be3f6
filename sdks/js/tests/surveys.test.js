import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { MemoryStorage, PravisClient, nextQuestion, showSurvey, surveysOf } from '../src/index.js';
import { MAX_REMEMBERED_SURVEYS, SURVEY_MEMORY_MS } from '../src/surveys.js';
import { clock, fakeGateway, fastRetry } from './helpers.js';

const clients = [];
const warn = console.warn;
afterEach(async () => {
  console.warn = warn;
  await Promise.all(clients.splice(0).map((c) => c.shutdown({ timeoutMs: 100 })));
});

const SURVEY = {
  id: 'ux-q1',
  version: 3,
  name: 'Quarterly UX',
  questions: [
    { id: 'rating', type: 'rating', text: 'How was it?', scale: 5, branches: [{ equals: 5, next: 'nps' }] },
    { id: 'improve', type: 'open_text', text: 'What should we improve?', required: false },
    { id: 'nps', type: 'nps', text: 'Recommend us?', branches: [{ equals: 0, next: 'end' }] },
    {
      id: 'plan',
      type: 'single_choice',
      text: 'Plan?',
      choices: ['solo', 'team'],
      branches: [{ equals: 'solo', next: 'end' }],
    },
    { id: 'uses', type: 'multiple_choice', text: 'Uses?', choices: ['search', 'voice'] },
  ],
};

/** A gateway whose GET /api/v1/surveys answers `answer` (a status and body, or a thrown error) and whose event
 * endpoint is the scripted fake the client tests use. */
function gatewayWithSurveys(answer = { status: 200, body: { surveys: [SURVEY], ready: true } }) {
  const events = fakeGateway();
  const gets = [];
  const fetch = async (url, init = {}) => {
    if ((init.method || 'GET') !== 'GET') return events.fetch(url, init);
    gets.push({ url: new URL(url), headers: init.headers });
    if (answer.throw) throw new TypeError(answer.throw);
    return new Response(JSON.stringify(answer.body), { status: answer.status });
  };
  return { events, gets, fetch };
}

function make(gateway, options = {}) {
  const client = new PravisClient({
    apiKey: 'pvw_test',
    host: 'http://gateway.test/',
    fetch: gateway.fetch,
    flushAt: 1000,
    flushIntervalMs: 60_000,
    ...fastRetry,
    ...options,
  });
  clients.push(client);
  return client;
}

test('getSurveys asks for the current user and anonymous id with the write key', async () => {
  const gateway = gatewayWithSurveys();
  const client = make(gateway);
  const surveys = surveysOf(client);

  assert.deepEqual(await surveys.get(), [SURVEY]);
  client.identify('u-42');
  await surveys.get();

  const [anonymous, identified] = gateway.gets;
  assert.equal(anonymous.url.origin + anonymous.url.pathname, 'http://gateway.test/api/v1/surveys');
  assert.deepEqual([...anonymous.url.searchParams], [['anonymous_id', client.anonymousId]]);
  assert.deepEqual(
    [...identified.url.searchParams].sort(),
    [['anonymous_id', client.anonymousId], ['user_id', 'u-42']].sort(),
  );
  assert.equal(anonymous.headers['X-API-Key'], 'pvw_test');
});

test('getSurveys answers [] when the gateway cannot, and never throws', async () => {
  console.warn = () => {};
  for (const answer of [
    { throw: 'network down' },
    { status: 503, body: { status: 'error' } },
    { status: 200, body: { surveys: [], ready: false } },
    { status: 200, body: { unexpected: true } },
  ]) {
    const client = make(gatewayWithSurveys(answer));
    assert.deepEqual(await surveysOf(client).get(), [], JSON.stringify(answer));
  }
});

test('a withdrawn feedback or analytics consent: no request, no survey, no survey event', async () => {
  for (const withdrawn of [{ feedback: false }, { analytics: false }]) {
    const gateway = gatewayWithSurveys();
    const client = make(gateway);
    client.setConsent(withdrawn);
    const surveys = surveysOf(client);

    assert.deepEqual(await surveys.get(), []);
    assert.equal(gateway.gets.length, 0);
    const recorded = [surveys.shown(SURVEY), surveys.dismissed(SURVEY), surveys.answered(SURVEY, [])];
    assert.deepEqual(recorded, [null, null, null]);
    assert.deepEqual(await showSurvey(SURVEY, { client }), {
      outcome: 'not_shown',
      reason: 'surveys are not allowed (consent withdrawn or client shut down)',
    });
    await client.flush();
    assert.deepEqual(gateway.events.events.map((e) => e.event_type), ['consent_change']);
  }
});

test('shown, dismissed and answered are queued events of the survey version', async () => {
  const gateway = gatewayWithSurveys();
  const client = make(gateway);
  const surveys = surveysOf(client);
  const answers = [
    { question_id: 'rating', value: 4 },
    { question_id: 'improve', text: 'faster' },
    { question_id: 'plan', choices: ['team'] },
  ];

  const ids = [
    surveys.shown(SURVEY),
    surveys.answered(SURVEY, answers),
    surveys.dismissed({ id: 'other', version: 1 }),
  ];
  await client.flush();

  const sent = gateway.events.events;
  assert.deepEqual(sent.map((e) => e.event_id), ids);
  assert.deepEqual(
    sent.map((e) => [e.event_type, e.survey_id, e.survey_version, e.survey_answers]),
    [
      ['survey_shown', 'ux-q1', 3, undefined],
      ['survey_answered', 'ux-q1', 3, answers],
      ['survey_dismissed', 'other', 1, undefined],
    ],
  );
  assert.ok(sent.every((e) => e.anonymous_id === client.anonymousId && e.session_id));
});

test('one survey_answered per survey: a second submission is refused', async () => {
  const gateway = gatewayWithSurveys();
  const surveys = surveysOf(make(gateway));
  assert.ok(surveys.answered(SURVEY, [{ question_id: 'nps', value: 9 }]));
  assert.equal(surveys.answered(SURVEY, [{ question_id: 'nps', value: 3 }]), null);
});

test('answered or dismissed surveys are remembered across a reload, for this person only, for a day', async () => {
  const storage = new MemoryStorage();
  const time = clock();
  const other = { ...SURVEY, id: 'other' };
  const both = gatewayWithSurveys({ status: 200, body: { surveys: [SURVEY, other], ready: true } });

  const first = make(both, { storage, now: time.now });
  first.identify('u-1');
  surveysOf(first).answered(SURVEY, [{ question_id: 'nps', value: 9 }]);
  await first.shutdown({ timeoutMs: 100 });

  const reloaded = make(both, { storage, now: time.now }); // same device, the page reloaded
  assert.deepEqual((await surveysOf(reloaded).get()).map((s) => s.id), ['other']);
  surveysOf(reloaded).dismissed(other);
  assert.deepEqual(await surveysOf(reloaded).get(), []);

  reloaded.identify('u-2'); // another person on the same device has answered nothing
  assert.deepEqual((await surveysOf(reloaded).get()).map((s) => s.id), ['ux-q1', 'other']);

  reloaded.identify('u-1');
  time.advance(SURVEY_MEMORY_MS - 1);
  assert.deepEqual(await surveysOf(reloaded).get(), []);
  time.advance(1); // by now the gateway knows (and decides whether a new wave asks again)
  assert.deepEqual((await surveysOf(reloaded).get()).map((s) => s.id), ['ux-q1', 'other']);
});

test('the memory is bounded: only the newest surveys are kept', () => {
  const storage = new MemoryStorage();
  const time = clock();
  const client = make(gatewayWithSurveys(), { storage, now: time.now });
  const surveys = surveysOf(client);
  const count = MAX_REMEMBERED_SURVEYS + 5;
  for (let i = 0; i < count; i++) {
    surveys.dismissed({ id: `s-${i}`, version: 1 });
    time.advance(1);
  }
  const kept = JSON.parse(storage.getItem('pravis:surveys'));
  assert.equal(kept.length, MAX_REMEMBERED_SURVEYS);
  assert.ok(surveys.remembered(`s-${count - 1}`) && !surveys.remembered('s-4') && surveys.remembered('s-5'));
});

// The branching rule of pravis_schemas.surveys, written out independently: after a question, the first
// branch equal to its answer decides (a question id or "end"); otherwise the next question in order.
function modelPath(survey, answersById) {
  const path = [];
  let i = 0;
  while (i < survey.questions.length) {
    const q = survey.questions[i];
    path.push(q.id);
    const a = answersById[q.id];
    const given = a === undefined ? undefined : typeof a === 'object' ? (a.length === 1 ? a[0] : undefined) : a;
    const hit = (q.branches || []).find((b) => b.equals === given);
    if (hit && hit.next === 'end') break;
    i = hit ? survey.questions.findIndex((x) => x.id === hit.next) : i + 1;
  }
  return path;
}

function walk(survey, answersById) {
  const path = [];
  for (let i = 0; i >= 0; ) {
    const q = survey.questions[i];
    path.push(q.id);
    const a = answersById[q.id];
    const field = Array.isArray(a) ? 'choices' : typeof a === 'string' ? 'text' : 'value';
    i = nextQuestion(survey, i, a === undefined ? undefined : { question_id: q.id, [field]: a });
  }
  return path;
}

test('branching: the next question depends on the answer, as the contract defines', () => {
  const cases = [
    [
      { rating: 4, improve: 'x', nps: 8, plan: ['team'], uses: ['search'] },
      ['rating', 'improve', 'nps', 'plan', 'uses'],
    ],
    [{ rating: 5, nps: 8, plan: ['team'], uses: ['voice'] }, ['rating', 'nps', 'plan', 'uses']],
    [{ rating: 3, nps: 0 }, ['rating', 'improve', 'nps']],
    [{ rating: 5, nps: 10, plan: ['solo'] }, ['rating', 'nps', 'plan']],
    [{ rating: 2, nps: 7, plan: ['team'], uses: ['search', 'voice'] }, ['rating', 'improve', 'nps', 'plan', 'uses']],
  ];
  for (const [answers, expected] of cases) {
    assert.deepEqual(modelPath(SURVEY, answers), expected, JSON.stringify(answers));
    assert.deepEqual(walk(SURVEY, answers), expected, JSON.stringify(answers));
  }
});

test('showSurvey outside a browser shows nothing and records nothing', async () => {
  const gateway = gatewayWithSurveys();
  const client = make(gateway);
  assert.deepEqual(await showSurvey(SURVEY, { client }), { outcome: 'not_shown', reason: 'no document to show it in' });
  assert.equal(client.stats().queued, 0);
});
