// #/jobs/ID: one job — status (live), halt, parameters, the log tailing live, and the
// transfer records.

import { api, seg } from '../api.js';
import { busy, bytes, duration, emptyState, errorBox, fmtTime, h, mount, pageHead, shortId, toast } from '../dom.js';
import { FINAL, haltButton, jobBadge, jobTitle } from '../jobs-common.js';
import { LogView } from '../log.js';

export default async function jobPage(ctx) {
  const { main, params } = ctx;
  const id = params.id;
  let job = await api.get(`/v1/jobs/${seg(id)}`);
  if (!ctx.alive()) return;

  const headArea = h('div');
  const metaArea = h('div', { class: 'card-body' });
  const transfersArea = h('div', { class: 'table-wrap' });
  const liveState = h('span', { class: 'log-status', 'data-testid': 'log-state' });
  let timer = null;

  const log = new LogView({
    onEnd: (ended) => {
      if (ended) job = ended;
      renderJob();
      loadTransfers();
      setLive();
    },
  });
  ctx.onCleanup(() => {
    log.close();
    clearTimeout(timer);
  });

  const setLive = () => {
    mount(liveState, log.live
      ? [h('span', { class: 'dot running live' }), 'Live']
      : [h('span', { class: 'dot' }), FINAL.has(job.status) ? 'Complete' : 'Not following']);
  };

  const rerun = async (button) => {
    const body = job.scriptId ? { scriptId: job.scriptId } : job.filePath ? { filePath: job.filePath } : { scriptName: job.scriptName };
    body.params = job.params || {};
    await busy(button, async () => {
      try {
        const queued = await api.post('/v1/jobs', body);
        toast('Queued again.');
        ctx.navigate(`#/jobs/${encodeURIComponent(queued.jobId)}`);
      } catch (e) {
        toast(e.message, 'error');
      }
    });
  };

  const renderJob = () => {
    const actions = [];
    if (!FINAL.has(job.status)) {
      actions.push(haltButton(job, (updated) => { job = updated; renderJob(); }, { small: false }));
    }
    if (job.scriptName) actions.push(h('a', { class: 'btn', href: `#/scripts/${encodeURIComponent(job.scriptName)}` }, 'Open script'));
    if (FINAL.has(job.status) && (job.scriptId || job.filePath)) {
      const again = h('button', { class: 'btn', type: 'button' }, 'Run again');
      again.addEventListener('click', () => rerun(again));
      actions.push(again);
    }
    mount(headArea, pageHead(jobTitle(job), {
      crumbs: [h('a', { href: '#/jobs' }, 'Jobs'), ` / ${shortId(job.id)}`],
      subtitle: h('span', { class: 'actions' }, h('span', { 'data-testid': 'job-status' }, jobBadge(job)), h('span', { class: 'mono muted' }, job.id)),
      actions,
    }));
    const params = job.params && Object.keys(job.params).length
      ? Object.entries(job.params).map(([k, v]) => h('span', { class: 'tag' }, `${k}=${v}`))
      : h('span', { class: 'muted' }, 'none');
    const item = (label, value) => h('div', {}, h('dt', {}, label), h('dd', {}, value ?? '—'));
    mount(metaArea,
      job.error ? h('div', { class: ['alert', job.status === 'failed' ? 'error' : 'warn'] }, h('div', { class: 'grow' }, job.error)) : null,
      h('dl', { class: 'meta' },
        item('Queued', fmtTime(job.createdAt)),
        item('Started', fmtTime(job.startedAt)),
        item('Finished', fmtTime(job.finishedAt)),
        item('Duration', job.startedAt ? duration(job.startedAt, job.finishedAt) : '—'),
        item('Exit code', job.exitCode ?? '—'),
        item('Origin', job.origin),
        item('Node', job.nodeId ? shortId(job.nodeId) : '—'),
        item('Attempts', job.attempts),
        item('Parameters', params)));
  };

  const loadTransfers = async () => {
    try {
      const transfers = await api.get(`/v1/jobs/${seg(id)}/transfers`);
      if (!ctx.alive()) return;
      if (!transfers.length) {
        mount(transfersArea, emptyState('No transfers', FINAL.has(job.status)
          ? 'This job moved no files.' : 'Files this job uploads or downloads are listed here as they finish.'));
        return;
      }
      mount(transfersArea, h('table', { 'data-testid': 'transfers-table' },
        h('thead', {}, h('tr', {}, ['When', 'Source', 'Target', 'Size', 'Time', 'Outcome'].map((t, i) => h('th', { class: i === 3 || i === 4 ? 'num' : null }, t)))),
        h('tbody', {}, transfers.map((t) => h('tr', {},
          h('td', { class: 'nowrap' }, fmtTime(t.at)),
          h('td', { class: 'mono' }, t.source),
          h('td', { class: 'mono' }, t.target),
          h('td', { class: 'num' }, bytes(t.bytes)),
          h('td', { class: 'num' }, `${t.millis} ms`),
          h('td', {}, t.outcome === 'ok' || t.outcome === 'skipped' ? h('span', { class: ['badge', t.outcome] }, t.outcome) : h('span', { class: 'badge error', title: t.outcome }, 'error'),
            t.outcome !== 'ok' && t.outcome !== 'skipped' ? h('span', { class: 'sub' }, t.outcome) : null))))));
    } catch (e) {
      mount(transfersArea, h('div', { class: 'card-body' }, errorBox(e.message)));
    }
  };

  const poll = async () => {
    clearTimeout(timer);
    if (FINAL.has(job.status)) return;
    try {
      const fresh = await api.get(`/v1/jobs/${seg(id)}`);
      if (!ctx.alive()) return;
      if (fresh.status !== job.status || fresh.haltRequested !== job.haltRequested || fresh.startedAt !== job.startedAt) {
        job = fresh;
        renderJob();
      }
      if (FINAL.has(job.status)) loadTransfers();
    } catch { /* shown on the next successful poll */ }
    if (ctx.alive() && !FINAL.has(job.status)) timer = setTimeout(poll, 2000);
  };

  mount(main,
    headArea,
    h('section', { class: 'card' }, h('div', { class: 'card-head' }, h('h2', {}, 'Details')), metaArea),
    h('section', { class: 'card' }, h('div', { class: 'card-head' }, h('h2', {}, 'Log'), liveState), log.el),
    h('section', { class: 'card' }, h('div', { class: 'card-head' }, h('h2', {}, 'Transfers')), transfersArea));
  renderJob();
  if (FINAL.has(job.status)) {
    const whole = await api.get(`/v1/jobs/${seg(id)}/log`);
    if (!ctx.alive()) return;
    log.showAll(whole.lines);
  } else {
    log.follow(id);
    timer = setTimeout(poll, 2000);
  }
  setLive();
  loadTransfers();
}
