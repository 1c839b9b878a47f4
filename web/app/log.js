// A job's log, live: the whole log so far, then new lines as server-sent events from
// `GET /v1/jobs/{id}/log?follow=true` until the job ends.

import { fmtTime, h, mount } from './dom.js';
import { seg } from './api.js';

function timeOfDay(at) {
  const d = new Date(at);
  if (Number.isNaN(d.getTime())) return '';
  return d.toLocaleTimeString(undefined, { hour12: false }) + `.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

/** A live log panel for one job; `view.el` goes in the page, `view.close()` stops it. */
export class LogView {
  constructor({ onEnd = () => {}, emptyText = 'No log lines yet.' } = {}) {
    this.onEnd = onEnd;
    this.emptyText = emptyText;
    this.lastLine = 0;
    this.source = null;
    this.query = '';
    this.onFilter = () => {};
    this.el = h('div', { class: 'log', role: 'log', 'aria-live': 'polite', 'aria-label': 'Job log', tabindex: '0', 'data-testid': 'job-log' });
    mount(this.el, h('div', { class: 'log-empty' }, emptyText));
  }

  /** Follow job `jobId` from its first line. */
  follow(jobId) {
    this.close();
    this.jobId = jobId;
    this.lastLine = 0;
    mount(this.el, h('div', { class: 'log-empty' }, 'Waiting for the first line…'));
    const source = new EventSource(`/v1/jobs/${seg(jobId)}/log?follow=true`);
    this.source = source;
    source.addEventListener('line', (e) => {
      try {
        this.add(JSON.parse(e.data));
      } catch { /* a malformed event is skipped, the next one still shows */ }
    });
    source.addEventListener('end', (e) => {
      source.close();
      if (this.source === source) this.source = null;
      let job = null;
      try { job = JSON.parse(e.data); } catch { /* the caller re-reads the job */ }
      if (this.lastLine === 0) mount(this.el, h('div', { class: 'log-empty' }, 'The job wrote no log lines.'));
      this.onEnd(job);
    });
    source.addEventListener('error', () => {
      // EventSource reconnects by itself; lines already shown are skipped by number.
      if (source.readyState === EventSource.CLOSED && this.source === source) {
        this.source = null;
        this.onEnd(null);
      }
    });
  }

  /** Show a whole, finished log (`lines` from `GET /v1/jobs/{id}/log`). */
  showAll(lines) {
    this.close();
    this.lastLine = 0;
    if (!lines.length) {
      mount(this.el, h('div', { class: 'log-empty' }, 'The job wrote no log lines.'));
      return;
    }
    this.el.replaceChildren();
    for (const line of lines) this.add(line);
  }

  add(line) {
    if (line.line <= this.lastLine) return;
    if (this.lastLine === 0) this.el.replaceChildren();
    this.lastLine = line.line;
    const atBottom = this.el.scrollHeight - this.el.scrollTop - this.el.clientHeight < 40;
    const level = String(line.level || 'info').toLowerCase();
    this.el.appendChild(h('div', { class: ['log-line', level], 'data-line': line.line },
      h('span', { class: 'ln' }, line.line),
      h('time', { class: 'ts', datetime: line.at, title: fmtTime(line.at) }, timeOfDay(line.at)),
      h('span', { class: 'lv' }, level),
      h('span', { class: 'msg' }, line.message)));
    if (this.query) this.applyFilter();
    if (atBottom) this.el.scrollTop = this.el.scrollHeight;
  }

  /** Show only the lines whose text holds `query` (any case); '' shows every line. */
  filter(query) {
    this.query = query.trim().toLowerCase();
    this.applyFilter();
  }

  applyFilter() {
    const lines = [...this.el.querySelectorAll('.log-line')];
    let shown = 0;
    for (const el of lines) {
      const match = !this.query || el.textContent.toLowerCase().includes(this.query);
      el.hidden = !match;
      if (match) shown += 1;
    }
    this.onFilter({ shown, total: lines.length, query: this.query });
  }

  /** Whether it is following a live log now. */
  get live() {
    return Boolean(this.source);
  }

  /** Stop following. */
  close() {
    if (this.source) {
      this.source.close();
      this.source = null;
    }
  }
}
