// Types of @pravis/sdk (src/index.js).

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type Properties = Record<string, JsonValue>;
export type ConsentCategory = 'analytics' | 'performance' | 'feedback' | 'personalization';
export type Consent = Partial<Record<ConsentCategory, boolean>>;

/** Web Storage API subset the queue persists to (localStorage by default in browsers). */
export interface StorageLike {
  readonly length: number;
  key(index: number): string | null;
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export interface DeliveryError {
  /** "rejected": the gateway refused the events as invalid; "dropped": the SDK gave up on them. */
  kind: 'rejected' | 'dropped';
  reason: string;
  events: PravisEvent[];
}

export interface Options {
  apiKey: string;
  /** Gateway origin, e.g. "https://analytics.example"; defaults to the page's origin in browsers. */
  host?: string;
  /** Send when this many events are queued (default 10). */
  flushAt?: number;
  /** Send whatever is queued this often (default 10 000 ms). */
  flushIntervalMs?: number;
  /** Events kept while the gateway is unreachable (default 1000); beyond it new events are dropped and counted. */
  maxQueueSize?: number;
  /** Retries of one batch before it goes back to the queue until the next interval (default 8). */
  maxRetries?: number;
  retryBaseMs?: number;
  retryCapMs?: number;
  /** gzip request bodies (Content-Encoding: gzip) where CompressionStream exists (default false). */
  gzip?: boolean;
  /** Hand unsent events to navigator.sendBeacon on pagehide (default true). */
  beacon?: boolean;
  /** Flush (keepalive fetch) when the page becomes hidden, the last event mobile browsers reliably fire
   * (default true). */
  flushOnHide?: boolean;
  /** Storage key prefix, for several independent clients on one origin (default "pravis"). */
  namespace?: string;
  sessionIdleMs?: number;
  appVersion?: string;
  onError?: (error: DeliveryError) => void;
  storage?: StorageLike;
  fetch?: typeof fetch;
  sendBeacon?: (url: string, data: Blob) => boolean;
  now?: () => number;
  random?: () => number;
}

export interface PravisEvent {
  event_id: string;
  event_type: string;
  timestamp: string;
  user_id?: string;
  anonymous_id?: string;
  session_id?: string;
  properties: Properties;
  [field: string]: JsonValue | undefined;
}

/** Top-level fields of an event type, e.g. {interaction_id, request_duration_ms, success} for AI events. */
export type Fields = Record<string, JsonValue | undefined>;

export interface FeedbackInput {
  rating: 1 | 2 | 3 | 4 | 5;
  interactionId?: string;
  comment?: string;
  context?: string;
  properties?: Properties;
}

export interface Stats {
  queued: number;
  accepted: number;
  rejected: number;
  dropped: number;
  beaconed: number;
  droppedByReason: Record<string, number>;
}

export class PravisClient {
  constructor(options: Options);
  readonly anonymousId: string;
  readonly userId: string | null;
  /** Queue an event; returns its event_id, or null when it was not queued (consent, full queue, too large). */
  track(eventType: string, properties?: Properties, fields?: Fields): string | null;
  /** Login: sends `identify` (the anonymous id so far → `userId`, `traits` as properties); null when nothing
   * was sent (same user without traits, no analytics consent). `identify(null)` is `reset()`. */
  identify(userId: string | null, traits?: Properties): string | null;
  /** Logout: a new anonymous id and session; sends nothing. */
  reset(): void;
  /** Sends `alias`: `previousId` is the same person as `userId` (the id to keep). Throws if either is empty
   * or they are equal. */
  alias(previousId: string, userId: string): string | null;
  page(properties?: Properties, fields?: Fields): string | null;
  feedback(input: FeedbackInput): string | null;
  setConsent(consent: Consent, options?: { source?: string; explicit?: boolean }): string | null;
  flush(): Promise<void>;
  shutdown(options?: { timeoutMs?: number }): Promise<void>;
  stats(): Stats;
}

export class MemoryStorage implements StorageLike {
  readonly length: number;
  key(index: number): string | null;
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export type Verdict = 'accepted' | 'retry' | 'split' | 'drop';
export const Verdict: { ACCEPTED: 'accepted'; RETRY: 'retry'; SPLIT: 'split'; DROP: 'drop' };
export function classify(status: number | null | undefined): Verdict;
/** Milliseconds from a Retry-After header (seconds or HTTP-date), clamped; null if absent/unreadable. */
export function parseRetryAfter(value: string | null | undefined, now?: number): number | null;

export class RetryPolicy {
  constructor(options?: { maxRetries?: number; baseMs?: number; capMs?: number });
  readonly maxRetries: number;
  backoff(attempt: number, random?: () => number): number;
  delay(attempt: number, retryAfterMs: number | null, random?: () => number): number;
}

export const SDK_NAME: string;
export const SDK_VERSION: string;
export const SESSION_IDLE_MS: number;
export const CONSENT_CATEGORIES: readonly ConsentCategory[];

export function createClient(options: Options): PravisClient;
export function init(options: Options): PravisClient;
export function track(eventType: string, properties?: Properties, fields?: Fields): string | null;
export function identify(userId: string | null, traits?: Properties): string | null;
export function reset(): void;
export function alias(previousId: string, userId: string): string | null;
export function page(properties?: Properties, fields?: Fields): string | null;
export function feedback(input: FeedbackInput): string | null;
export function setConsent(consent: Consent, options?: { source?: string; explicit?: boolean }): string | null;
export function flush(): Promise<void>;
export function stats(): Stats;
export function shutdown(options?: { timeoutMs?: number }): Promise<void>;

/** An experiment definition as `GET /api/v1/features` returns it. */
export interface ExperimentDefinition {
  key: string;
  status: 'draft' | 'running' | 'stopped';
  variants: { key: string; weight: number }[];
  coverage?: number;
  seed?: string;
  version?: number;
}

export interface FeatureVariant {
  experiment: string;
  variant: string;
  variation_id: number;
  in_experiment: boolean;
  reason: 'assigned' | 'outside_coverage' | 'not_running';
}

/** Assign locally with the server's hash (GrowthBook v2 FNV-1a); with a client, the exposure is tracked. */
export function getFeatureVariant(
  experiment: ExperimentDefinition,
  userId: string,
  options?: { client?: PravisClient },
): FeatureVariant;

/** A survey as `GET /api/v1/surveys` answers it (pravis_schemas.surveys). */
export interface Survey {
  id: string;
  version: number;
  name?: string | null;
  questions: SurveyQuestion[];
}

export interface SurveyQuestion {
  id: string;
  type: 'rating' | 'nps' | 'single_choice' | 'multiple_choice' | 'open_text';
  text: string;
  /** Rating questions: answers 1..scale. */
  scale?: 5 | 10 | null;
  /** Choice questions: the choice keys. */
  choices?: string[];
  required?: boolean;
  /** After this question go to `next` (a later question id, or "end") when the answer equals `equals`. */
  branches?: { equals: number | string; next: string }[];
}

/** One question's answer: `value` for rating/NPS, `choices` for choice questions, `text` for open text. */
export interface SurveyAnswer {
  question_id: string;
  value?: number;
  choices?: string[];
  text?: string;
}

export interface SurveyOptions {
  /** The client to record with (default: the one `init` made). */
  client?: PravisClient;
  /** Corner or centre of the viewport (default "bottom-right"). */
  position?: 'bottom-right' | 'bottom-left' | 'center';
  /** Element the widget is appended to (default document.body); it is fixed to the viewport either way. */
  container?: Element;
  /** Texts of the widget, e.g. for another language. */
  labels?: Partial<Record<
    'title' | 'close' | 'next' | 'submit' | 'required' | 'thanks' | 'npsLow' | 'npsHigh' | 'ratingLow' | 'ratingHigh' | 'textHint',
    string
  >>;
  /** Display texts of choice keys, e.g. {team: "Team plan"} (default: the key). */
  choiceLabels?: Record<string, string>;
  /** How long the thank-you note stays (default 2500 ms; 0 closes at once). */
  thanksMs?: number;
  /** Nonce for the widget's <style> where constructed stylesheets are unsupported and a CSP asks for one. */
  nonce?: string;
  /** Aborting removes the widget without recording a dismissal (e.g. on a route change). */
  signal?: AbortSignal;
}

export type SurveyOutcome =
  | { outcome: 'answered'; answers: SurveyAnswer[] }
  | { outcome: 'dismissed' }
  | { outcome: 'aborted' }
  | { outcome: 'not_shown'; reason: string };

export interface Surveys {
  /** The surveys this user should see now; [] when surveys are not allowed, the gateway cannot answer, or this
   * device answered or dismissed them lately. Never rejects. */
  get(): Promise<Survey[]>;
  /** False when the feedback or analytics consent was withdrawn or the client was shut down. */
  allowed(): boolean;
  shown(survey: Survey): string | null;
  dismissed(survey: Survey): string | null;
  answered(survey: Survey, answers: SurveyAnswer[]): string | null;
  remembered(surveyId: string, kind?: 'answered' | 'dismissed'): boolean;
}

/** How long a device remembers a survey answered or dismissed on it (one day). */
export const SURVEY_MEMORY_MS: number;
/** The survey calls of a client (for clients made with `createClient`). */
export function surveysOf(client: PravisClient): Surveys;
export function getSurveys(): Promise<Survey[]>;
/** Show `survey` with the default widget (loaded on demand); resolves when it closes. */
export function showSurvey(survey: Survey, options?: SurveyOptions): Promise<SurveyOutcome>;
/** Headless: record what an app's own survey UI did, through the client `init` made. */
export const surveys: {
  shown(survey: Survey): string | null;
  dismissed(survey: Survey): string | null;
  answered(survey: Survey, answers: SurveyAnswer[]): string | null;
};
/** Index of the question after `survey.questions[index]` given its answer (undefined when skipped); -1 ends. */
export function nextQuestion(survey: Survey, index: number, answer?: SurveyAnswer): number;
