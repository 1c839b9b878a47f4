// #/notifications: what the service told (or could not tell) about job outcomes. Dead
// notifications, whose every delivery attempt failed, can be sent again.

import { api, seg } from '../api.js';
import { badge, busy, emptyState, h, icon, mount, pageHead, shortId, timeEl, toast } from '../dom.js';

const STATES = ['dead', 'pending', 'delivered', ''];

export default async function notificationsPage(ctx) {
  const asked = ctx.query?.state ?? 'dead';
  const state = STATES.includes(asked) ? asked : 'dead';
  const list = await api.get(`/v1/notifications${state ? `?state=${seg(state)}` : ''}`);
  if (!ctx.alive()) return;
  const reload = () => ctx.navigate(`#/notifications?state=${state}`, { replace: true });
  const retry = async (button, path) => {
    await busy(button, async () => {
      try {
        const answer = await api.post(path, {});
        toast(answer.retried.length ? `Queued ${answer.retried.length} for delivery again.` : 'Nothing to retry.');
        reload();
      } catch (e) {
        toast(e.message, 'error');
      }
    });
  };
  const filters = h('div', { class: 'actions' }, STATES.map((s) => h('a', {
    class: ['btn', 'small', s === state ? 'primary' : null],
    href: `#/notifications?state=${s}`,
  }, s || 'all')));
  const retryAll = state === 'dead' && list.length
    ? h('button', { class: 'btn primary', type: 'button', 'data-testid': 'retry-all' }, icon('refresh', 'btn-icon'), 'Retry all')
    : null;
  retryAll?.addEventListener('click', () => retry(retryAll, '/v1/notifications/retry'));
  const body = list.length
    ? h('div', { class: 'table-wrap' }, h('table', { 'data-testid': 'notifications-table' },
      h('thead', {}, h('tr', {}, ['State', 'Event', 'Job', 'To', 'Attempts', 'Last error', 'Made', ''].map((t) => h('th', {}, t || h('span', { class: 'sr-only' }, 'Actions'))))),
      h('tbody', {}, list.map((n) => {
        const again = n.state === 'dead' ? h('button', { class: 'btn small', type: 'button' }, 'Retry') : null;
        again?.addEventListener('click', () => retry(again, `/v1/notifications/${seg(n.id)}/retry`));
        return h('tr', { 'data-notification': n.id },
          h('td', {}, badge(n.state === 'dead' ? 'failed' : n.state === 'delivered' ? 'succeeded' : 'queued', n.state)),
          h('td', {}, n.event),
          h('td', {}, h('a', { href: `#/jobs/${encodeURIComponent(n.jobId)}` }, n.scriptName || shortId(n.jobId)), h('span', { class: 'sub mono' }, shortId(n.jobId))),
          h('td', { class: 'mono' }, `${n.channel} ${n.target}`),
          h('td', { class: 'num' }, n.attempts),
          h('td', {}, n.lastError ? h('span', { class: 'sub' }, n.lastError) : h('span', { class: 'muted' }, '—')),
          h('td', { class: 'nowrap' }, timeEl(n.createdAt)),
          h('td', { class: 'cell-actions' }, again));
      }))))
    : emptyState(state === 'dead' ? 'No dead notifications' : 'No notifications',
      'Notifications of job outcomes (set per script with aft script notify, or for every job in the notify-* settings) are listed here; those that could not be delivered wait here until retried.');
  mount(ctx.main,
    pageHead('Notifications', { subtitle: 'Webhooks and mails about how jobs ended.', actions: retryAll }),
    h('section', { class: 'card' }, h('div', { class: 'card-head' }, filters), body));
}
