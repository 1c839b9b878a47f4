// #/watchers: watcher jobs — scripts that run as long as the service runs (typically an
// FsWatcher or RemoteWatcher loop), restarted with backoff when they fail.

import { api, ApiError, seg } from '../api.js';
import { badge, busy, confirmDialog, dialog, emptyState, errorBox, field, h, icon, mount, pageHead, shortId, timeEl, toast } from '../dom.js';
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
  const jobs = new Map();
  await Promise.all(watchers.filter((w) => w.currentJobId).map(async (w) => {
    try {
      jobs.set(w.currentJobId, await api.get(`/v1/jobs/${seg(w.currentJobId)}`));
    } catch { /* shown as "starting" */ }
  }));
  if (!ctx.alive()) return;
  const reload = () => ctx.navigate('#/watchers', { replace: true });
  const add = async () => {
    if (await watcherForm(scripts)) {
      toast('Watcher added; it starts at once.');
      reload();
    }
  };
  const toggle = (w, button) => busy(button, async () => {
    try {
      await api.put(`/v1/watchers/${seg(w.name)}/enabled`, { enabled: !w.enabled });
      toast(w.enabled ? `${w.name} disabled; its job is halted.` : `${w.name} enabled; it starts at once.`);
      reload();
    } catch (e) {
      toast(e.message, 'error');
    }
  });
  const newButton = () => h('button', { class: 'btn primary', type: 'button', onclick: add, disabled: !scripts.length }, icon('plus', 'btn-icon'), 'New watcher');
  const body = watchers.length
    ? h('div', { class: 'table-wrap' }, h('table', {},
      h('thead', {}, h('tr', {}, ['Name', 'Script', 'State', 'Current job', 'Failures', ''].map((t) => h('th', {}, t || h('span', { class: 'sr-only' }, 'Actions'))))),
      h('tbody', {}, watchers.map((w) => {
        const job = w.currentJobId ? jobs.get(w.currentJobId) : null;
        let state = 'starting';
        let detail = null;
        if (!w.enabled) state = 'disabled';
        else if (job) state = job.status;
        else if (w.failures > 0) {
          state = 'restarting';
          detail = h('span', { class: 'sub' }, ['after a failure; next start ', timeEl(w.nextStartAt)]);
        }
        const toggleButton = h('button', { class: 'btn small', type: 'button' }, w.enabled ? 'Disable' : 'Enable');
        toggleButton.addEventListener('click', () => toggle(w, toggleButton));
        return h('tr', { 'data-watcher': w.name },
          h('td', {}, h('strong', {}, w.name)),
          h('td', {}, h('a', { href: `#/scripts/${encodeURIComponent(scriptOf(w))}` }, scriptOf(w))),
          h('td', {}, badge(state), detail),
          h('td', {}, w.currentJobId ? h('a', { class: 'mono', href: `#/jobs/${encodeURIComponent(w.currentJobId)}` }, shortId(w.currentJobId)) : h('span', { class: 'muted' }, '—'),
            job?.startedAt ? h('span', { class: 'sub' }, ['since ', timeEl(job.startedAt)]) : null),
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
      }))))
    : emptyState('No watchers', 'A watcher job runs a script for as long as the service runs — to react when files land in a folder or appear on a server.', scripts.length ? newButton() : h('a', { class: 'btn', href: '#/scripts' }, 'Go to scripts'));
  mount(ctx.main,
    pageHead('Watchers', {
      subtitle: 'Long-running scripts, started with the service and restarted when they fail.',
      actions: watchers.length ? [h('button', { class: 'btn', type: 'button', onclick: reload }, icon('refresh', 'btn-icon'), 'Refresh'), newButton()] : null,
    }),
    h('section', { class: 'card' }, body));
}
