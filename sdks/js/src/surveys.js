// Surveys without a user interface: `get()` asks the gateway which surveys this user should see now
// (GET /api/v1/surveys), and `shown` / `dismissed` / `answered` record survey_shown / survey_dismissed /
// survey_answered through the client's queue, for apps that draw their own survey. The default widget
// (survey-widget.js) is built on the same calls. Contract: pravis_schemas.surveys and docs/surveys.md.
//
// The gateway decides who sees what (targeting, sampling, caps). This device also remembers, for a while, the
// surveys answered or dismissed on it, because the gateway learns of those events only once they are
// delivered: a reload before that (a queued event, an offline phone) must not show the survey again.

export const SURVEYS_PATH = '/api/v1/surveys';
/** Branch target that ends a survey (pravis_schemas.surveys.END). */
export const END = 'end';
/** How long this device remembers an answered or dismissed survey: far longer than the gateway needs to learn
 * of it (the loader's delay plus its reload, seconds to minutes), far shorter than the shortest recurrence
 * (monthly), after which a new wave may ask again. */
export const SURVEY_MEMORY_MS = 24 * 60 * 60 * 1000;
/** Remembered surveys kept on one device, newest first: the memory cannot grow with use. */
export const MAX_REMEMBERED_SURVEYS = 50;
const MEMORY_KEY = 'surveys';

const ANSWER_FIELD = {
  rating: 'value',
  nps: 'value',
  single_choice: 'choices',
  multiple_choice: 'choices',
  open_text: 'text',
};

/** The field of an answer that a question of this type takes: `value`, `choices` or `text`. */
export function answerField(question) {
  return ANSWER_FIELD[question.type];
}

/** The value a branch compares with: the number of a rating/NPS answer, the choice of a single choice. */
function branchValue(answer) {
  if (!answer) return undefined;
  if (answer.value !== undefined && answer.value !== null) return answer.value;
  return answer.choices && answer.choices.length === 1 ? answer.choices[0] : undefined;
}

/**
 * Index of the question after `survey.questions[index]` given its `answer` (undefined when skipped), or -1
 * when the survey ends: the first branch whose `equals` is the answer names the next question (or `end`);
 * without one, the next question in order.
 */
export function nextQuestion(survey, index, answer) {
  const questions = survey.questions;
  const given = branchValue(answer);
  const branch = given === undefined ? undefined : (questions[index].branches || []).find((b) => b.equals === given);
  if (!branch) return index + 1 < questions.length ? index + 1 : -1;
  if (branch.next === END) return -1;
  return questions.findIndex((q) => q.id === branch.next);
}

function fields(survey) {
  return { survey_id: survey.id, survey_version: survey.version };
}

/** The survey calls of one client; `surveysOf(client)` gives each client one. */
export class Surveys {
  constructor(client) {
    this.client = client;
  }

  /** Surveys may be shown: the client is open and neither `feedback` (the category of survey events) nor
   * `analytics` (without which the client records nothing, so answers would be lost) was withdrawn. */
  allowed() {
    const { consent } = this.client;
    return !this.client._closed && consent.feedback !== false && consent.analytics !== false;
  }

  /** The surveys this user should see now, with their questions; [] when surveys are not allowed, the
   * gateway cannot answer (never an exception: a page must not fail over a survey), or this device answered
   * or dismissed them lately. */
  async get() {
    if (!this.allowed()) return [];
    const { client } = this;
    const params = new URLSearchParams();
    if (client.userId) params.set('user_id', client.userId);
    params.set('anonymous_id', client.anonymousId);
    let body;
    try {
      const response = await client.fetch(`${client.host}${SURVEYS_PATH}?${params}`, {
        headers: { 'X-API-Key': client.apiKey },
      });
      if (!response.ok) throw new Error(`the gateway answered ${response.status}`);
      body = await response.json();
    } catch (error) {
      console.warn(`pravis: no surveys: ${error && error.message ? error.message : error}`);
      return [];
    }
    if (!this.allowed() || !Array.isArray(body.surveys)) return [];
    return body.surveys.filter((survey) => !this.remembered(survey.id));
  }

  /** Record that `survey` (as `get()` returned it) is on screen: the gateway caps on it. */
  shown(survey) {
    if (!this.allowed()) return null;
    return this.client.track('survey_shown', {}, fields(survey));
  }

  /** Record that the user closed `survey` without answering; it is not shown again on this device. */
  dismissed(survey) {
    if (!this.allowed()) return null;
    const id = this.client.track('survey_dismissed', {}, fields(survey));
    if (id) this._remember(survey.id);
    return id;
  }

  /** Submit `answers`, `[{question_id, value | choices | text}]`, as one survey_answered event; null when not
   * queued, or when this device already answered the survey lately (one event per submitted survey). The
   * gateway refuses answers that do not fit the questions (reported to `onError` as `rejected`). */
  answered(survey, answers) {
    if (!this.allowed() || this.remembered(survey.id, 'answered')) return null;
    const id = this.client.track('survey_answered', {}, { ...fields(survey), survey_answers: answers });
    if (id) this._remember(survey.id, 'answered');
    return id;
  }

  /** Whether this device answered (or, without `kind`, answered or dismissed) `surveyId` lately, as the
   * current user or anonymous id. */
  remembered(surveyId, kind) {
    const ids = this._ids();
    return this._memory().some(
      (entry) => entry.survey === surveyId && ids.includes(entry.id) && (!kind || entry.kind === kind),
    );
  }

  _ids() {
    return [this.client.userId, this.client.anonymousId].filter(Boolean);
  }

  /** Entries younger than SURVEY_MEMORY_MS, newest first; unreadable memory counts as empty. */
  _memory() {
    const now = this.client.now();
    let entries;
    try {
      entries = JSON.parse(this.client._get(MEMORY_KEY) || '[]');
    } catch {
      entries = [];
    }
    if (!Array.isArray(entries)) return [];
    return entries.filter((entry) => entry && now - entry.at < SURVEY_MEMORY_MS && now >= entry.at);
  }

  _remember(surveyId, kind = 'dismissed') {
    const at = this.client.now();
    const fresh = this._ids().map((id) => ({ id, survey: surveyId, kind, at }));
    const entries = [...fresh, ...this._memory()].slice(0, MAX_REMEMBERED_SURVEYS);
    this.client._set(MEMORY_KEY, JSON.stringify(entries));
  }
}

const byClient = new WeakMap();

export function surveysOf(client) {
  let surveys = byClient.get(client);
  if (!surveys) {
    surveys = new Surveys(client);
    byClient.set(client, surveys);
  }
  return surveys;
}
