// #/watchers: watcher jobs — scripts that run as long as the service runs (typically an
// FsWatcher or RemoteWatcher loop), restarted with backoff when they fail.

import { api, ApiError, seg } from '../api.js';
import { brokenBadge } from '../broken.js';
import { badge, busy, confirmDialog, dialog, emptyState, errorBox, field, h, icon, keepFocus, mount, pageHead, shortId, timeEl, toast } from '../dom.js';
import { FINAL } from '../jobs-common.js';
import { missingApi, scriptOf } from './schedules.js';

function watcherForm(scripts) {
  return dialog('New watcher', (close) => {
    const name = h('input', { type: 'text', name: 'watcher-name', required: true, autocomplete: 'off' });
    const script = h('select', { name: 'watcher-script' }, scripts.map((s) => h('option', { value: s.name }, s.name)));
    const params = h('textarea', { class: 'plain', name: 'params', rows: '3' }, '{}');
    const message = h('div');
    const form = h('form', { class: 'form', id: 'watcher-form' },
      h('div', { class: 'form-row' }, field('Name', name), field('Script', script, 'It should wait with WaitForHaltSignal() while its watcher works.')),
      field('Parameters (JSON object)', params), message);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      let parsed;
      try {
        parsed = params.value.trim() ? JSON.parse(params.value) : {};
      } catch (err) {
        mount(message, errorBox(`Parameters are not valid JSON: ${err.message}`));
        return;
      }
      try {
        close(await api.post('/v1/watchers', { name: name.value.trim(), script: script.value, params: parsed }));
      } catch (err) {
        mount(message, errorBox(err.message));
      }
    });
    setTimeout(() => name.focus(), 0);
    return {
      body: form,
      foot: [
        h('button', { class: 'btn', type: 'button', onclick: () => close() }, 'Cancel'),
        h('button', { class: 'btn primary', type: 'submit', form: 'watcher-form', disabled: !scripts.length }, 'Add watcher'),
      ],
    };
  });
}

export default async function watchersPage(ctx) {
  let watchers;
  try {
    watchers = await api.get('/v1/watchers');
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) {
      mount(ctx.main, pageHead('Watchers'), h('section', { class: 'card' }, missingApi('Watchers', '/v1/watchers')));
      return;
    }
    throw e;
  }
  const scripts = await api.get('/v1/scripts').catch(() => []);
  // The state of a watcher is the state of its current job.
  let jobs = new Map();
  const loadJobs = async () => {
    const fresh = new Map();
    await Promise.all(watchers.filter((w) => w.currentJobId).map(async (w) => {
      try {
        fresh.set(w.currentJobId, await api.get(`/v1/jobs/${seg(w.currentJobId)}`));
      } catch { /* shown as "starting" */ }
    }));
    jobs = fresh;
  };
  await loadJobs();
  if (!ctx.alive()) return;
  const bodyArea = h('section', { class: 'card' });
  const headArea = h('div');
  const message = h('div');
  let timer = null;
  let shown = null;
  ctx.onCleanup(() => clearTimeout(timer));

  // The page refreshes itself like the jobs list; it redraws only when something changed,
  // so a click is not lost to a redraw.
  const refresh = async () => {
    clearTimeout(timer);
    try {
      watchers = await api.get('/v1/watchers');
      await loadJobs();
      if (!ctx.alive()) return;
      mount(message);
      render();
    } catch (e) {
      if (!ctx.alive()) return;
      mount(message, errorBox(e.message));
    }
    if (ctx.alive()) timer = setTimeout(refresh, document.hidden ? 10000 : 3000);
  };
  const reload = () => refresh();
  const add = async () => {
    if (await watcherForm(scripts)) {
      toast('Watcher added; it starts at once.');
      reload();
    }
  };
  const toggle = (w, job, button) => {
    const running = job && !FINAL.has(job.status);
    const go = () => busy(button, async () => {
      try {
        await api.put(`/v1/watchers/${seg(w.name)}/enabled`, { enabled: !w.enabled });
        toast(w.enabled ? `${w.name} disabled; its job is halted.` : `${w.name} enabled; it starts at once.`);
        await reload();
      } catch (e) {
        toast(e.message, 'error');
      }
    });
    // Disabling halts the running job: ask first, as the jobs' Halt button does.
    if (w.enabled && running) {
      return confirmDialog(`Disable watcher ${w.name}?`, `Its running job ${shortId(job.id)} is halted, and it is not started again until you enable it.`, 'Disable and halt')
        .then((ok) => (ok ? go() : null));
    }
    return go();
  };
  const newButton = () => h('button', { class: 'btn primary', type: 'button', onclick: add, disabled: !scripts.length }, icon('plus', 'btn-icon'), 'New watcher');
  const render = () => {
    const key = JSON.stringify([watchers, [...jobs.entries()].map(([id, j]) => [id, j.status, j.startedAt, j.haltRequested])]);
    if (key === shown) return;
    shown = key;
    keepFocus(ctx.main, () => draw());
  };
  const draw = () => {
    mount(headArea, pageHead('Watchers', {
      subtitle: 'Long-running scripts, started with the service and restarted when they fail. Updates every few seconds.',
      actions: watchers.length ? [h('button', { class: 'btn', type: 'button', onclick: reload }, icon('refresh', 'btn-icon'), 'Refresh'), newButton()] : null,
    }));
    mount(bodyArea, watchers.length ? table() : emptyState('No watchers',
      'A watcher job runs a script for as long as the service runs — to react when files land in a folder or appear on a server.',
      scripts.length ? newButton() : h('a', { class: 'btn', href: '#/scripts' }, 'Go to scripts')));
  };
  const table = () => h('div', { class: 'table-wrap' }, h('table', {},
    h('thead', {}, h('tr', {}, ['Name', 'Script', 'State', 'Current job', 'Failures', ''].map((t) => h('th', {}, t || h('span', { class: 'sr-only' }, 'Actions'))))),
    h('tbody', {}, watchers.map((w) => {
      const known = w.currentJobId ? jobs.get(w.currentJobId) : null;
      // A job that has ended (halted, failed...) is not current, whatever the watcher
      // record still points at: it shows as the last job.
      const ended = known && FINAL.has(known.status) ? known : null;
      const job = ended ? null : known;
      let state = 'starting';
      let detail = null;
      if (!w.enabled) state = 'disabled';
      else if (job) state = job.status;
      else if (w.failures > 0 || ended) {
        state = 'restarting';
        detail = w.nextStartAt ? h('span', { class: 'sub' }, [ended ? `after its job ${ended.status}; next start ` : 'after a failure; next start ', timeEl(w.nextStartAt)]) : null;
      }
      const toggleButton = h('button', { class: 'btn small', type: 'button' }, w.enabled ? 'Disable' : 'Enable');
      toggleButton.addEventListener('click', () => toggle(w, job, toggleButton));
      return h('tr', { 'data-watcher': w.name },
        h('td', {}, h('strong', {}, w.name)),
        h('td', {}, h('a', { href: `#/scripts/${encodeURIComponent(scriptOf(w))}` }, scriptOf(w)), brokenBadge(scriptOf(w), scripts)),
        h('td', {}, badge(state), detail),
        h('td', { 'data-testid': 'current-job' }, job
          ? [h('a', { class: 'mono', href: `#/jobs/${encodeURIComponent(job.id)}` }, shortId(job.id)),
            job.startedAt ? h('span', { class: 'sub' }, ['since ', timeEl(job.startedAt)]) : null]
          : [h('span', { class: 'muted' }, '—'),
            ended ? h('span', { class: 'sub', 'data-testid': 'last-job' }, ['last: ',
              h('a', { class: 'mono', href: `#/jobs/${encodeURIComponent(ended.id)}` }, shortId(ended.id)), ` ${ended.status}`]) : null]),
        h('td', { class: 'num' }, w.failures ?? 0),
        h('td', { class: 'cell-actions' }, toggleButton, h('button', {
          class: 'btn small danger', type: 'button', 'aria-label': `Delete watcher ${w.name}`,
          onclick: async () => {
            if (!await confirmDialog(`Delete watcher ${w.name}?`, 'Its job is halted and it is not started again.')) return;
            try {
              await api.del(`/v1/watchers/${seg(w.name)}`);
              reload();
            } catch (e) {
              toast(e.message, 'error');
            }
          },
        }, 'Delete')));
    }))));
  render();
  mount(ctx.main, headArea, message, bodyArea);
  timer = setTimeout(refresh, 3000);
}
