// #/jobs: every job, newest first, with filters (status, script, time) kept in the URL,
// live statuses, and a halt button on running jobs.

import { api, query } from '../api.js';
import { duration, emptyState, errorBox, field, h, keepFocus, mount, pageHead, shortId, timeEl, zoneLabel } from '../dom.js';
import { FINAL, STATUSES, haltButton, jobBadge, jobTitle } from '../jobs-common.js';

const toLocalInput = (iso) => {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const local = new Date(d.getTime() - d.getTimezoneOffset() * 60000);
  return local.toISOString().slice(0, 16);
};
const fromLocalInput = (value) => (value ? new Date(value).toISOString() : '');

export default async function jobsPage(ctx) {
  const { main, query: q } = ctx;
  const filters = { status: q.status || '', script: q.script || '', since: q.since || '', until: q.until || '' };

  const scripts = await api.get('/v1/scripts').catch(() => []);
  // A filter on a deleted script still shows (its jobs stay in the history).
  if (filters.script && !scripts.some((s) => s.name.toLowerCase() === filters.script.toLowerCase())) {
    scripts.push({ name: filters.script });
  }
  const status = h('select', { name: 'status' },
    h('option', { value: '' }, 'Any status'),
    STATUSES.map((s) => h('option', { value: s, selected: s === filters.status }, s)));
  const script = h('select', { name: 'script' },
    h('option', { value: '' }, 'Any script'),
    scripts.map((s) => h('option', { value: s.name, selected: s.name.toLowerCase() === filters.script.toLowerCase() }, s.name)));
  const since = h('input', { type: 'datetime-local', name: 'since', value: toLocalInput(filters.since) });
  const until = h('input', { type: 'datetime-local', name: 'until', value: toLocalInput(filters.until) });
  const apply = () => {
    const next = { status: status.value, script: script.value, since: fromLocalInput(since.value), until: fromLocalInput(until.value) };
    ctx.navigate(`#/jobs${query(next)}`, { replace: true });
  };
  [status, script, since, until].forEach((el) => el.addEventListener('change', apply));
  const clearButton = () => h('button', { class: 'btn ghost', type: 'button', onclick: () => ctx.navigate('#/jobs', { replace: true }) }, 'Clear filters');
  const anyFilter = Object.values(filters).some(Boolean);

  const tableBody = h('tbody');
  const listArea = h('div', { class: 'table-wrap' });
  const moreArea = h('div', { class: 'card-body hidden' });
  const message = h('div');
  let jobs = [];
  let nextBefore = null;
  let timer = null;

  const row = (job) => {
    const open = () => ctx.navigate(`#/jobs/${encodeURIComponent(job.id)}`);
    const tr = h('tr', { class: 'clickable', 'data-job-id': job.id, 'data-status': job.status, onclick: open },
      h('td', {}, jobBadge(job)),
      h('td', {}, h('a', { href: `#/jobs/${encodeURIComponent(job.id)}`, onclick: (e) => e.stopPropagation() }, jobTitle(job)),
        job.dryRun ? h('span', { class: 'tag', 'data-testid': 'dry-run-tag' }, 'dry run') : null,
        h('span', { class: 'sub mono' }, shortId(job.id))),
      h('td', { class: 'muted hide-sm' }, job.startedBy || job.origin || '—'),
      h('td', {}, timeEl(job.createdAt)),
      h('td', { class: 'num hide-sm' }, job.startedAt ? duration(job.startedAt, job.finishedAt) : '—'),
      h('td', { class: 'num hide-sm' }, job.exitCode ?? '—'),
      h('td', { class: 'cell-actions' }, FINAL.has(job.status) ? null : haltButton(job, () => refresh())));
    return tr;
  };

  const render = () => {
    if (!jobs.length) {
      mount(listArea, anyFilter
        ? emptyState('No jobs match', 'No job matches these filters. Widen the time range or clear the filters.', clearButton())
        : emptyState('No jobs yet', 'Jobs appear here when a script runs: from the script editor, a schedule, a watcher, `aft start` or the REST API.',
          h('a', { class: 'btn primary', href: '#/scripts' }, 'Go to scripts')));
    } else {
      mount(tableBody, jobs.map(row));
      mount(listArea, h('table', { 'data-testid': 'jobs-table' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Status'), h('th', {}, 'Job'), h('th', { class: 'hide-sm' }, 'Started by'), h('th', {}, 'Queued'),
          h('th', { class: 'num hide-sm' }, 'Duration'), h('th', { class: 'num hide-sm' }, 'Exit'), h('th', {}, h('span', { class: 'sr-only' }, 'Actions')))),
        tableBody));
    }
    moreArea.classList.toggle('hidden', !nextBefore);
  };

  const load = async ({ before, limit } = {}) => api.get(`/v1/jobs${query({ ...filters, before, limit: limit || 50 })}`);

  const refresh = async () => {
    clearTimeout(timer);
    try {
      const page = await load({ limit: Math.max(50, jobs.length) });
      if (!ctx.alive()) return;
      jobs = page.jobs;
      nextBefore = page.nextBefore ?? null;
      mount(message);
      keepFocus(listArea, render);
    } catch (e) {
      if (!ctx.alive()) return;
      mount(message, errorBox(e.message));
    }
    if (ctx.alive()) timer = setTimeout(refresh, document.hidden ? 10000 : 3000);
  };
  ctx.onCleanup(() => clearTimeout(timer));

  const more = h('button', { class: 'btn', type: 'button' }, 'Load older jobs');
  more.addEventListener('click', async () => {
    try {
      const page = await load({ before: nextBefore });
      jobs = jobs.concat(page.jobs);
      nextBefore = page.nextBefore ?? null;
      render();
    } catch (e) {
      mount(message, errorBox(e.message));
    }
  });
  mount(moreArea, more);

  mount(main,
    pageHead('Jobs', { subtitle: 'Every run of every script, newest first. Statuses update live.' }),
    message,
    h('section', { class: 'card' },
      h('div', { class: 'filters', role: 'search', 'aria-label': 'Filter jobs' },
        field('Status', status), field('Script', script), field(`Queued after (${zoneLabel()})`, since), field(`Queued before (${zoneLabel()})`, until),
        anyFilter ? clearButton() : null),
      listArea, moreArea));
  await refresh();
}
