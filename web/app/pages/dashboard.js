// #/: what needs attention — running, queued and failed jobs, recent failures, what runs
// now, and the next schedule fires. Refreshes itself.

import { api, ApiError, query } from '../api.js';
import { brokenList, brokenUsers } from '../broken.js';
import { duration, emptyState, errorBox, h, keepFocus, mount, pageHead, shortId, timeEl } from '../dom.js';
import { haltButton, jobBadge, jobTitle } from '../jobs-common.js';
import { fireTime, nextFireOf, scriptOf, withNextFires } from './schedules.js';

const DAY_MS = 24 * 3600 * 1000;

export default async function dashboardPage(ctx) {
  const { main } = ctx;
  const statsArea = h('div', { class: 'stats' });
  const runningArea = h('div');
  const failuresArea = h('div');
  const schedulesArea = h('div');
  const brokenArea = h('div', { 'data-testid': 'broken-area' });
  const recentArea = h('div');
  const message = h('div');
  let timer = null;
  ctx.onCleanup(() => clearTimeout(timer));

  const count = async (params) => {
    const page = await api.get(`/v1/jobs${query({ ...params, limit: 1000 })}`);
    return { n: page.jobs.length, more: Boolean(page.nextBefore), jobs: page.jobs };
  };
  const stat = (label, value, hint, href, dotClass) => h('a', { class: 'card stat', href, 'data-stat': label.toLowerCase() },
    h('div', { class: 'label' }, h('span', { class: ['dot', dotClass] }), label),
    h('div', { class: 'value' }, value),
    h('div', { class: 'hint' }, hint));
  const jobRow = (job, withHalt) => h('tr', { class: 'clickable', onclick: () => ctx.navigate(`#/jobs/${encodeURIComponent(job.id)}`) },
    h('td', {}, jobBadge(job)),
    h('td', {}, h('a', { href: `#/jobs/${encodeURIComponent(job.id)}`, onclick: (e) => e.stopPropagation() }, jobTitle(job)),
      h('span', { class: ['sub', job.error && 'clamp-2'], title: job.error || null }, job.error || shortId(job.id))),
    h('td', { class: 'nowrap' }, withHalt ? duration(job.startedAt, null) : timeEl(job.finishedAt || job.createdAt)),
    withHalt ? h('td', { class: 'cell-actions' }, haltButton(job, () => refresh())) : null);
  const jobTable = (jobs, withHalt) => h('div', { class: 'table-wrap' }, h('table', {}, h('tbody', {}, jobs.map((j) => jobRow(j, withHalt)))));

  const loadSchedules = async () => {
    try {
      const schedules = await withNextFires(await api.get('/v1/schedules'), 1);
      if (!ctx.alive()) return;
      const upcoming = schedules
        .map((s) => ({ s, at: nextFireOf(s) }))
        .filter((x) => x.at)
        .sort((a, b) => new Date(a.at) - new Date(b.at))
        .slice(0, 6);
      if (!upcoming.length) {
        mount(schedulesArea, emptyState('Nothing scheduled', 'Schedules start scripts on a clock (cron, with a time zone).',
          h('a', { class: 'btn', href: '#/schedules' }, 'Add a schedule')));
        return;
      }
      keepFocus(schedulesArea, () => mount(schedulesArea, h('div', { class: 'table-wrap' }, h('table', {}, h('tbody', {}, upcoming.map(({ s, at }) => h('tr', {},
        h('td', {}, h('a', { href: '#/schedules' }, s.name), h('span', { class: 'sub mono' }, s.cron || '')),
        h('td', {}, scriptOf(s)),
        h('td', { class: 'nowrap' }, timeEl(at), h('span', { class: 'sub' }, fireTime(at, s.timeZone))))))))));
    } catch (e) {
      mount(schedulesArea, h('div', { class: 'card-body' }, e instanceof ApiError && e.status === 404
        ? h('p', { class: 'muted' }, 'This service has no schedules API.')
        : errorBox(e.message)));
    }
  };

  const refresh = async () => {
    clearTimeout(timer);
    const since = new Date(Date.now() - DAY_MS).toISOString();
    try {
      const [running, queued, failed, succeeded, recent] = await Promise.all([
        count({ status: 'running' }),
        count({ status: 'queued' }),
        count({ status: 'failed', since }),
        count({ status: 'succeeded', since }),
        api.get('/v1/jobs?limit=8'),
      ]);
      if (!ctx.alive()) return;
      const fmt = (c) => `${c.n}${c.more ? '+' : ''}`;
      const failures = failed.jobs.length ? failed.jobs : (await api.get('/v1/jobs?status=failed&limit=5')).jobs;
      if (!ctx.alive()) return;
      keepFocus(main, () => {
        mount(statsArea,
          stat('Running', fmt(running), 'jobs running now', '#/jobs?status=running', 'running live'),
          stat('Queued', fmt(queued), 'waiting for a free slot', '#/jobs?status=queued', 'queued'),
          stat('Failed', fmt(failed), 'in the last 24 hours', `#/jobs${query({ status: 'failed', since })}`, 'failed'),
          stat('Succeeded', fmt(succeeded), 'in the last 24 hours', `#/jobs${query({ status: 'succeeded', since })}`, 'succeeded'));
        mount(runningArea, running.jobs.length ? jobTable(running.jobs.slice(0, 8), true)
          : emptyState('Nothing running', 'Jobs that run now show here, with a halt button.'));
        mount(failuresArea, failures.length ? jobTable(failures.slice(0, 5), false)
          : emptyState('No failures', 'No job has failed. Failed jobs show here with their error.'));
        mount(recentArea, recent.jobs.length ? jobTable(recent.jobs, false)
          : emptyState('No jobs yet', 'Write a script and run it: its job shows here.', h('a', { class: 'btn primary', href: '#/scripts' }, 'Write a script')));
      });
      mount(message);
    } catch (e) {
      if (!ctx.alive()) return;
      mount(message, errorBox(e.message));
    }
    await loadSchedules();
    // Schedules and watchers whose script is gone fail every time: say so at the top.
    await brokenUsers().then((items) => { if (ctx.alive()) mount(brokenArea, brokenList(items)); }).catch(() => mount(brokenArea));
    if (ctx.alive()) timer = setTimeout(refresh, document.hidden ? 15000 : 5000);
  };

  const card = (title, body, link) => h('section', { class: 'card' },
    h('div', { class: 'card-head' }, h('h2', {}, title), link || null), body);
  mount(main,
    pageHead('Dashboard', { subtitle: `Signed in as ${ctx.session.username}. Updates every few seconds.` }),
    message,
    brokenArea,
    statsArea,
    h('div', { class: 'grid grid-2' },
      card('Running now', runningArea, h('a', { class: 'small', href: '#/jobs?status=running' }, 'All running')),
      card('Recent failures', failuresArea, h('a', { class: 'small', href: '#/jobs?status=failed' }, 'All failures')),
      card('Next schedule fires', schedulesArea, h('a', { class: 'small', href: '#/schedules' }, 'Schedules')),
      card('Latest jobs', recentArea, h('a', { class: 'small', href: '#/jobs' }, 'All jobs'))));
  await refresh();
}
