// The default survey widget: one question at a time in a small dialog fixed to a corner of the viewport (never
// in the page's flow, so nothing moves), drawn in a shadow root so the page's CSS cannot reach it except
// through the `--pravis-survey-*` custom properties, which inherit into it. `showSurvey` loads this module on
// demand, so pages that never show a survey do not download it.
//
// Accessibility: a labelled dialog; focus moves to the first control on open and back where it was on close;
// native radio groups and checkboxes inside a fieldset whose legend is the question (arrow keys move through
// a scale or a choice list, Space toggles a checkbox); Enter goes on (Ctrl/Cmd+Enter in the text box, where
// Enter is a new line); Escape or the close button dismisses; a missing required answer is announced
// (role=alert) and marked aria-invalid. Texts come from the survey as text, never as HTML.

import { answerField, nextQuestion, surveysOf } from './surveys.js';

export const LABELS = Object.freeze({
  title: 'Survey',
  close: 'Close survey',
  next: 'Next',
  submit: 'Submit',
  required: 'Please answer this question.',
  thanks: 'Thank you!',
  npsLow: 'Not at all likely',
  npsHigh: 'Extremely likely',
  ratingLow: 'Poor',
  ratingHigh: 'Excellent',
  textHint: 'Press Ctrl+Enter to continue.',
});
const ABORTED = Object.freeze({ outcome: 'aborted' });
/** How long the thank-you note stays before the widget closes itself. */
export const THANKS_MS = 2500;

const CSS = `
:host { all: initial; }
.survey {
  --offset: var(--pravis-survey-offset, 20px);
  position: fixed; z-index: var(--pravis-survey-z-index, 2147483000);
  right: var(--offset); bottom: var(--offset); box-sizing: border-box;
  width: min(var(--pravis-survey-width, 360px), calc(100vw - 2 * var(--offset)));
  max-height: calc(100vh - 2 * var(--offset)); overflow: auto; padding: 16px;
  background: var(--pravis-survey-background, #ffffff); color: var(--pravis-survey-color, #1f2328);
  border: 1px solid var(--pravis-survey-border-color, #818b98); border-radius: var(--pravis-survey-radius, 10px);
  box-shadow: var(--pravis-survey-shadow, 0 8px 24px rgba(0, 0, 0, 0.18));
  font: var(--pravis-survey-font, 15px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif);
}
.survey.bottom-left { right: auto; left: var(--offset); }
.survey.center { right: auto; bottom: auto; left: 50%; top: 50%; transform: translate(-50%, -50%); }
* { box-sizing: border-box; font: inherit; color: inherit; }
h2 { margin: 0 32px 12px 0; font-weight: 700; font-size: 1.05em; }
fieldset { border: 0; margin: 0; padding: 0; min-width: 0; }
legend, .label { display: block; padding: 0; margin: 0 0 10px; font-weight: 600; }
.scale { display: flex; gap: 4px; }
.scale label { flex: 1 1 0; position: relative; }
.scale input { position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; border: 0;
  overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
.scale span { display: block; padding: 6px 0; text-align: center; cursor: pointer;
  border: 1px solid var(--pravis-survey-border-color, #818b98); border-radius: 6px; }
.scale input:checked + span { background: var(--pravis-survey-accent, #0b5cad);
  color: var(--pravis-survey-accent-color, #ffffff); border-color: var(--pravis-survey-accent, #0b5cad); }
.scale input:focus-visible + span, button:focus-visible, textarea:focus-visible, .choice input:focus-visible {
  outline: 2px solid var(--pravis-survey-focus-color, var(--pravis-survey-accent, #0b5cad)); outline-offset: 2px; }
.ends { display: flex; justify-content: space-between; margin-top: 4px; font-size: 0.85em;
  color: var(--pravis-survey-muted-color, #59636e); }
.choice { display: flex; align-items: center; gap: 8px; padding: 4px 0; cursor: pointer; }
.choice input { margin: 0; accent-color: var(--pravis-survey-accent, #0b5cad); }
textarea { display: block; width: 100%; min-height: 5em; padding: 8px; resize: vertical;
  background: transparent; border: 1px solid var(--pravis-survey-border-color, #818b98); border-radius: 6px; }
.hint { margin: 4px 0 0; font-size: 0.85em; color: var(--pravis-survey-muted-color, #59636e); }
.error { margin: 8px 0 0; color: var(--pravis-survey-error-color, #b42318); }
.error:empty { display: none; }
.actions { display: flex; justify-content: flex-end; margin-top: 14px; }
.primary { padding: 8px 16px; cursor: pointer; border: 0; border-radius: 6px;
  background: var(--pravis-survey-accent, #0b5cad); color: var(--pravis-survey-accent-color, #ffffff); }
.close { position: absolute; top: 8px; right: 8px; width: 32px; height: 32px; cursor: pointer;
  background: transparent; border: 0; border-radius: 6px; font-size: 20px; line-height: 1; }
.thanks { margin: 0; }
`;

let sheet = null;

function style(root, nonce) {
  if (typeof CSSStyleSheet === 'function' && 'adoptedStyleSheets' in root) {
    // A constructed sheet: shared by every widget, and allowed by a CSP without 'unsafe-inline' styles.
    if (!sheet) {
      sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
    }
    root.adoptedStyleSheets = [sheet];
    return;
  }
  const element = document.createElement('style');
  if (nonce) element.nonce = nonce;
  element.textContent = CSS;
  root.append(element);
}

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'text') node.textContent = value;
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  node.append(...children);
  return node;
}

let open = null;

/**
 * Show `survey` (as `getSurveys()` returned it) with the default widget; resolves when it closes with
 * `{outcome: 'answered', answers}`, `{outcome: 'dismissed'}`, `{outcome: 'aborted'}` (`options.signal` took it
 * away) or, when it was not shown at all, `{outcome: 'not_shown', reason}`. Records survey_shown, then
 * survey_answered or survey_dismissed.
 */
export function showSurvey(client, survey, options = {}) {
  const surveys = surveysOf(client);
  let reason = null;
  if (!surveys.allowed()) reason = 'surveys are not allowed (consent withdrawn or client shut down)';
  else if (surveys.remembered(survey.id)) reason = 'answered or dismissed on this device lately';
  else if (typeof document === 'undefined') reason = 'no document to show it in';
  else if (open) reason = `survey ${open.survey.id} is open`;
  if (reason) return Promise.resolve({ outcome: 'not_shown', reason });
  return new Promise((resolve) => {
    open = new Widget(surveys, survey, options, (result) => {
      open = null;
      resolve(result);
    });
  });
}

class Widget {
  constructor(surveys, survey, options, done) {
    this.surveys = surveys;
    this.survey = survey;
    this.labels = { ...LABELS, ...(options.labels || {}) };
    this.choiceLabels = options.choiceLabels || {};
    this.thanksMs = options.thanksMs ?? THANKS_MS;
    this.done = done;
    this.index = 0;
    this.answers = [];
    this.finished = false;
    this.previousFocus = document.activeElement;

    this.host = el('div', { 'data-pravis-survey': survey.id });
    const root = this.host.attachShadow({ mode: 'open' });
    style(root, options.nonce);
    this.title = el('h2', { id: 'title', text: survey.name || this.labels.title });
    this.body = el('div');
    this.error = el('p', { class: 'error', id: 'error', role: 'alert' });
    this.button = el('button', { type: 'submit', class: 'primary' });
    this.form = el('form', { novalidate: true }, this.body, this.error, el('div', { class: 'actions' }, this.button));
    const close = el('button', { type: 'button', class: 'close', 'aria-label': this.labels.close, text: '×' });
    const position = ['bottom-left', 'center'].includes(options.position) ? options.position : 'bottom-right';
    this.dialog = el('div', { class: `survey ${position}`, role: 'dialog', 'aria-labelledby': 'title' });
    this.dialog.append(this.title, close, this.form);
    root.append(this.dialog);

    close.addEventListener('click', () => this.close());
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.next();
    });
    this.dialog.addEventListener('keydown', (event) => this.key(event));
    this.body.addEventListener('input', () => this.clearError()); // answered now: the reason no longer holds
    // The app took it away (a route change): neither answered nor dismissed by the user, so nothing recorded.
    const abort = () => this.remove(this.outcome || ABORTED);
    if (options.signal) options.signal.addEventListener('abort', abort, { once: true });

    (options.container || document.body).append(this.host);
    this.surveys.shown(survey);
    this.render();
  }

  key(event) {
    if (event.key === 'Escape') {
      event.preventDefault();
      this.close();
    } else if (event.key === 'Enter' && !this.finished) {
      const tag = event.target.tagName;
      if (tag === 'INPUT' || (tag === 'TEXTAREA' && (event.ctrlKey || event.metaKey))) {
        event.preventDefault();
        this.next();
      }
    }
  }

  get question() {
    return this.survey.questions[this.index];
  }

  render() {
    const question = this.question;
    const last = this.index === this.survey.questions.length - 1;
    this.clearError();
    this.button.textContent = last ? this.labels.submit : this.labels.next;
    this.body.replaceChildren(this.field(question));
    this.firstControl().focus({ preventScroll: true });
  }

  clearError() {
    this.error.textContent = '';
    for (const invalid of this.body.querySelectorAll('[aria-invalid]')) invalid.removeAttribute('aria-invalid');
  }

  field(question) {
    const name = `q-${this.index}`;
    if (question.type === 'open_text') {
      return el(
        'div',
        {},
        el('label', { class: 'label', for: name, text: question.text }),
        el('textarea', { id: name, maxlength: 5000, 'aria-describedby': 'hint error' }),
        el('p', { class: 'hint', id: 'hint', text: this.labels.textHint }),
      );
    }
    const fieldset = el('fieldset', { 'aria-describedby': 'error' }, el('legend', { text: question.text }));
    if (question.type === 'rating' || question.type === 'nps') {
      const { labels } = this;
      const [low, high, lowText, highText] =
        question.type === 'nps'
          ? [0, 10, labels.npsLow, labels.npsHigh]
          : [1, question.scale, labels.ratingLow, labels.ratingHigh];
      const scale = el('div', { class: 'scale' });
      for (let value = low; value <= high; value++) {
        scale.append(el('label', {}, el('input', { type: 'radio', name, value }), el('span', { text: value })));
      }
      const ends = el(
        'div',
        { class: 'ends', id: 'ends' },
        el('span', { text: `${low}: ${lowText}` }),
        el('span', { text: `${high}: ${highText}` }),
      );
      fieldset.setAttribute('aria-describedby', 'ends error');
      fieldset.append(scale, ends);
      return fieldset;
    }
    const type = question.type === 'single_choice' ? 'radio' : 'checkbox';
    for (const choice of question.choices) {
      const label = this.choiceLabels[choice] ?? choice;
      fieldset.append(el('label', { class: 'choice' }, el('input', { type, name, value: choice }), label));
    }
    return fieldset;
  }

  firstControl() {
    return this.body.querySelector('input, textarea');
  }

  /** The answer the controls hold now, in the event's shape, or undefined when none was given. */
  answer() {
    const question = this.question;
    const field = answerField(question);
    if (field === 'text') {
      const text = this.body.querySelector('textarea').value.trim();
      return text ? { question_id: question.id, text } : undefined;
    }
    const checked = [...this.body.querySelectorAll('input:checked')].map((input) => input.value);
    if (!checked.length) return undefined;
    if (field === 'value') return { question_id: question.id, value: Number(checked[0]) };
    return { question_id: question.id, choices: checked };
  }

  next() {
    if (this.finished) return;
    const question = this.question;
    const answer = this.answer();
    const group = this.body.firstElementChild;
    if (!answer && question.required !== false) {
      this.error.textContent = this.labels.required;
      (group.querySelector('textarea') || group).setAttribute('aria-invalid', 'true');
      this.firstControl().focus({ preventScroll: true });
      return;
    }
    if (answer) this.answers.push(answer);
    const following = nextQuestion(this.survey, this.index, answer);
    if (following >= 0) {
      this.index = following;
      this.render();
      return;
    }
    this.finish();
  }

  finish() {
    this.finished = true;
    if (this.answers.length) {
      this.surveys.answered(this.survey, this.answers);
      this.outcome = { outcome: 'answered', answers: this.answers };
    } else {
      this.surveys.dismissed(this.survey); // every question optional and skipped: nothing to submit
      this.outcome = { outcome: 'dismissed' };
    }
    const thanks = el('p', { class: 'thanks', role: 'status', tabindex: '-1', text: this.labels.thanks });
    this.form.replaceWith(thanks);
    thanks.focus({ preventScroll: true });
    if (this.thanksMs > 0) this.timer = setTimeout(() => this.remove(this.outcome), this.thanksMs);
    else this.remove(this.outcome);
  }

  /** The user closed it: a dismissal unless the answers were already submitted. */
  close() {
    if (this.finished) {
      this.remove(this.outcome);
      return;
    }
    this.finished = true;
    this.surveys.dismissed(this.survey);
    this.remove({ outcome: 'dismissed' });
  }

  remove(outcome) {
    if (!this.host.isConnected) return;
    clearTimeout(this.timer);
    const hadFocus = this.host.contains(document.activeElement);
    this.host.remove();
    const previous = this.previousFocus;
    if (hadFocus && previous && previous.isConnected && typeof previous.focus === 'function') {
      previous.focus({ preventScroll: true });
    }
    this.done(outcome);
  }
}
