// Pravis analytics for browsers and Node: `init({apiKey, host})`, then `track`, `page`, `identify`, `alias`, ...
// The functions act on the client `init` created; `createClient` makes independent ones.

import { PravisClient } from './client.js';
import { surveysOf } from './surveys.js';

export { PravisClient, SDK_NAME, SDK_VERSION, SESSION_IDLE_MS, CONSENT_CATEGORIES } from './client.js';
export { RetryPolicy, Verdict, classify, parseRetryAfter } from './policy.js';
export { MemoryStorage } from './queue.js';
export { getFeatureVariant } from './experiments.js';
export { nextQuestion, surveysOf, SURVEY_MEMORY_MS } from './surveys.js';

let current = null;

function client() {
  if (!current) throw new Error('pravis: call init({apiKey, host}) first');
  return current;
}

export function createClient(options) {
  return new PravisClient(options);
}

export function init(options) {
  if (current) current.shutdown();
  current = new PravisClient(options);
  return current;
}

export const track = (eventType, properties, fields) => client().track(eventType, properties, fields);
export const identify = (userId, traits) => client().identify(userId, traits);
export const reset = () => client().reset();
export const alias = (previousId, userId) => client().alias(previousId, userId);
export const page = (properties, fields) => client().page(properties, fields);
export const feedback = (options) => client().feedback(options);
export const setConsent = (consent, options) => client().setConsent(consent, options);
export const flush = () => client().flush();
export const stats = () => client().stats();

/** The surveys the current user should see now (at most one, with its questions); [] when none or unknown. */
export const getSurveys = () => surveysOf(client()).get();
/** Headless surveys, for apps that draw their own: record a survey shown, dismissed or answered. (A plain
 * object, not frozen: bundlers drop an unused literal, not a call.) */
export const surveys = {
  shown: (survey) => surveysOf(client()).shown(survey),
  dismissed: (survey) => surveysOf(client()).dismissed(survey),
  answered: (survey, answers) => surveysOf(client()).answered(survey, answers),
};

/** Show `survey` in the default widget, loaded on demand (the core stays small without it); resolves when it
 * closes. `client` picks another client than the one `init` made. */
export async function showSurvey(survey, { client: chosen, ...options } = {}) {
  const target = chosen || client();
  const widget = await import('./survey-widget.js');
  return widget.showSurvey(target, survey, options);
}

export async function shutdown(options) {
  if (!current) return;
  const closing = current;
  current = null;
  await closing.shutdown(options);
}
