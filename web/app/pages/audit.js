// #/audit: the audit trail — who changed what, from where, with the state before and after;
// filters by actor, kind and action, and a check of the hash chain.

import { api, query } from '../api.js';
import { busy, emptyState, errorBox, field, h, icon, mount, pageHead, timeEl } from '../dom.js';

const KINDS = ['', 'script', 'secret', 'vfs', 'apikey', 'schedule', 'watcher', 'setting', 'admin', 'session', 'job', 'audit'];
const PAGE = 100;

export default async function auditPage(ctx) {
  const q = ctx.query || {};
  const filters = { actor: q.actor || '', kind: KINDS.includes(q.kind) ? q.kind : '', action: q.action || '' };
  const asked = Object.fromEntries(Object.entries(filters).filter(([, v]) => v));
  const records = await api.get(`/v1/audit${query({ ...asked, limit: PAGE })}`);
  if (!ctx.alive()) return;

  const actor = h('input', { type: 'search', name: 'actor', value: filters.actor, placeholder: 'anyone' });
  const kind = h('select', { name: 'kind' }, KINDS.map((k) => h('option', { value: k, selected: k === filters.kind }, k || 'all')));
  const action = h('input', { type: 'search', name: 'action', value: filters.action, placeholder: 'e.g. session.failed' });
  const form = h('form', { class: 'filters', 'data-testid': 'audit-filters' },
    field('Actor', actor), field('Kind', kind), field('Action starts with', action),
    h('button', { class: 'btn small', type: 'submit' }, 'Filter'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const next = { actor: actor.value.trim(), kind: kind.value, action: action.value.trim() };
    const qs = new URLSearchParams(Object.entries(next).filter(([, v]) => v)).toString();
    ctx.navigate(`#/audit${qs ? `?${qs}` : ''}`);
  });

  const outcome = h('div', { 'data-testid': 'audit-verify-result' });
  const verify = h('button', { class: 'btn', type: 'button', 'data-testid': 'audit-verify' }, icon('check', 'btn-icon'), 'Verify chain');
  verify.addEventListener('click', () => busy(verify, async () => {
    try {
      const v = await api.get('/v1/audit/verify');
      mount(outcome, v.valid
        ? h('div', { class: 'alert info', role: 'status' }, `Intact: ${v.records} records, newest ${v.headSeq} (${v.headHash.slice(0, 16)}…).`)
        : errorBox(v.problems.map((p) => p.problem).join(' · ')));
    } catch (e) {
      mount(outcome, errorBox(e.message));
    }
  }));

  const change = (r) => {
    if (!r.before && !r.after) return h('span', { class: 'muted' }, '—');
    const show = (label, value) => (value ? h('div', {}, h('span', { class: 'sub' }, label), h('pre', { class: 'mono small' }, JSON.stringify(value, null, 2))) : null);
    return h('details', {}, h('summary', {}, r.before && r.after ? 'before / after' : r.after ? 'after' : 'before'),
      show('before', r.before), show('after', r.after));
  };
  const body = records.length
    ? h('div', { class: 'table-wrap' }, h('table', { 'data-testid': 'audit-table' },
      h('thead', {}, h('tr', {}, ['#', 'When', 'Who', 'From', 'Action', 'Target', 'Change'].map((t) => h('th', {}, t)))),
      h('tbody', {}, records.map((r) => h('tr', { 'data-audit': r.seq },
        h('td', { class: 'num' }, r.seq),
        h('td', { class: 'nowrap' }, timeEl(r.at)),
        h('td', {}, r.actor, h('span', { class: 'sub' }, r.actorKind)),
        h('td', { class: 'mono' }, r.address),
        h('td', { class: 'mono' }, r.action),
        h('td', {}, r.target || h('span', { class: 'muted' }, '—')),
        h('td', {}, change(r)))))))
    : emptyState('No records', 'Every change made through the web UI, the API or the CLI is recorded here.');
  mount(ctx.main,
    pageHead('Audit trail', { subtitle: `Who changed what, newest first (the last ${PAGE}); export it all with aft audit export.`, actions: verify }),
    outcome,
    h('section', { class: 'card' }, h('div', { class: 'card-head' }, form), body));
}
