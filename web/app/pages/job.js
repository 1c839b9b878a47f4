// #/jobs/ID: one job — status (live), halt, parameters, the log tailing live, and the
// transfer records.

import { api, seg } from '../api.js';
import { busy, bytes, displayPath, duration, emptyState, errorBox, fmtTime, h, mount, pageHead, plural, shortId, toast, zoneLabel } from '../dom.js';
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
  const planArea = h('div', { class: 'table-wrap', 'data-testid': 'plan' });
  // Known from the first read: the log's end event carries the job without it.
  const isDryRun = !!job.dryRun;
  const liveState = h('span', { class: 'log-status', 'data-testid': 'log-state' });
  let timer = null;
  // The duration of a running job counts up every second, until the job ends.
  const durationEl = h('span', { 'data-testid': 'job-duration' });
  let ticker = null;
  const tick = () => {
    durationEl.textContent = job.startedAt ? duration(job.startedAt, job.finishedAt) : '—';
    const ticking = Boolean(job.startedAt && !job.finishedAt && !FINAL.has(job.status));
    if (ticking && !ticker) ticker = setInterval(tick, 1000);
    if (!ticking && ticker) {
      clearInterval(ticker);
      ticker = null;
    }
  };

  const log = new LogView({
    onEnd: (ended) => {
      if (ended) job = ended;
      renderJob();
      loadTransfers();
      loadPlan();
      setLive();
    },
  });
  // Search within the log (new lines of a live log are filtered as they come) and a
  // plain-text download of the whole log.
  const matches = h('span', { class: 'muted small', 'aria-live': 'polite', 'data-testid': 'log-matches' });
  log.onFilter = ({ shown, total, query }) => {
    matches.textContent = query ? `${shown} of ${plural(total, 'line')}` : '';
  };
  const search = h('input', { type: 'search', class: 'log-search', placeholder: 'Search the log', 'aria-label': 'Search the log', 'data-testid': 'log-search' });
  search.addEventListener('input', () => log.filter(search.value));
  const download = h('a', { class: 'btn small', href: `/v1/jobs/${seg(id)}/log?format=text`, download: `job-${id}.log`, 'data-testid': 'log-download' }, 'Download log');
  ctx.onCleanup(() => {
    log.close();
    clearTimeout(timer);
    clearInterval(ticker);
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
        item('Duration', durationEl),
        item('Exit code', job.exitCode ?? '—'),
        item('Started by', h('span', { 'data-testid': 'started-by' }, job.startedBy || job.origin)),
        job.scriptVersion != null && job.scriptName ? item('Script version', h('a', { href: `#/scripts/${encodeURIComponent(job.scriptName)}`, 'data-testid': 'script-version' }, `v${job.scriptVersion}`)) : null,
        item('Node', job.nodeId ? shortId(job.nodeId) : '—'),
        item('Attempts', job.attempts),
        job.retryOf ? item('Retry', h('span', {}, `attempt ${job.retryAttempt} of job `,
          h('a', { href: `#/jobs/${encodeURIComponent(job.retryOf)}`, 'data-testid': 'retry-of' }, shortId(job.retryOf)))) : null,
        job.notBefore && job.status === 'queued' ? item('Not before', fmtTime(job.notBefore)) : null,
        job.chainedFrom ? item('Chained from', h('a', { href: `#/jobs/${encodeURIComponent(job.chainedFrom)}`, 'data-testid': 'chained-from' }, shortId(job.chainedFrom))) : null,
        job.result != null ? item('Result', h('span', { class: 'mono' }, job.result)) : null,
        isDryRun ? item('Dry run', h('span', { class: 'badge', 'data-testid': 'dry-run' }, 'nothing was changed')) : null,
        item('Parameters', params)));
    tick();
  };

  // A dry run's plan: every effect it recorded, then the calls it did not make.
  const loadPlan = async () => {
    if (!isDryRun) return;
    try {
      const fresh = job.plan ? job : await api.get(`/v1/jobs/${seg(id)}`);
      if (!ctx.alive()) return;
      const plan = fresh.plan;
      if (!plan) {
        mount(planArea, emptyState('No plan yet', 'The plan appears when the dry run ends.'));
        return;
      }
      const rows = plan.effects.map((e) => {
        const notes = [e.bytes != null ? bytes(e.bytes) : null, e.overwrite ? 'overwrites' : null,
          e.folder && e.action === 'delete' ? 'folder, with everything in it' : null, e.reason || null].filter(Boolean).join(' · ');
        return h('tr', {},
          h('td', {}, h('span', { class: ['badge', e.action === 'delete' || e.action === 'fail' ? 'error' : e.action === 'skip' ? 'skipped' : 'ok'] }, e.action)),
          h('td', { class: 'mono' }, displayPath(e.source || '')),
          h('td', { class: 'mono' }, displayPath(e.target)),
          h('td', {}, notes));
      }).concat(plan.skippedCalls.map((c) => h('tr', {},
        h('td', {}, h('span', { class: 'badge' }, 'not run')),
        h('td', { class: 'mono' }, c.call),
        h('td', { class: 'mono' }, c.detail),
        h('td', {}, ''))));
      const s = plan.summary;
      mount(planArea,
        h('p', { class: 'card-body muted small', 'data-testid': 'plan-summary' },
          `${s.uploaded} uploaded, ${s.downloaded} downloaded, ${s.copied} copied, ${s.written} written (${s.overwritten} overwriting), ${s.skipped} skipped by policy, ${s.failed} failing, ${s.deleted} deleted, ${s.renamed} renamed, ${plural(s.made, 'folder')} made, ${plural(s.callsSkipped, 'call')} not run`),
        rows.length ? h('table', { 'data-testid': 'plan-table' },
          h('thead', {}, h('tr', {}, ['Action', 'From', 'Target', 'Notes'].map((t) => h('th', {}, t)))),
          h('tbody', {}, rows)) : emptyState('Nothing would change', 'The script would change no file and make no outside call.'));
    } catch (e) {
      mount(planArea, h('div', { class: 'card-body' }, errorBox(e.message)));
    }
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
          h('td', { class: 'mono', title: t.source }, displayPath(t.source)),
          h('td', { class: 'mono', title: t.target }, displayPath(t.target)),
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
    h('section', { class: 'card' }, h('div', { class: 'card-head' }, h('h2', {}, 'Log'), h('span', { class: 'muted small', 'data-testid': 'log-zone' }, `times in ${zoneLabel()}`), liveState, search, matches, download), log.el),
    isDryRun ? h('section', { class: 'card' }, h('div', { class: 'card-head' }, h('h2', {}, 'Plan')), planArea) : null,
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
  loadPlan();
}
