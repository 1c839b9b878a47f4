// #/scripts: the stored scripts, and creating a new one.

import { api, seg } from '../api.js';
import { busy, dialog, emptyState, errorBox, field, h, icon, mount, pageHead, plural, timeEl, toast } from '../dom.js';
import { jobBadge } from '../jobs-common.js';
import { splitLines } from '../linediff.js';
import { usedByCell } from '../usedby.js';

/** The body a new script starts with: a working example of the host API. */
export const NEW_SCRIPT_BODY = `// A SyncJS script: JavaScript with a synchronous host API.
// Param("name") reads a job parameter; Log() writes to the job log.
var target = Param("target") || "world";
Log("Hello, " + target + "!");

// Example: upload files through a VFS Library entry.
// var remote = GetVFS("my-sftp");
// if (remote.Connect()) {
//     remote.Upload("/data/outbox/*.csv", "/inbox");
//     remote.Close();
// }
`;

/** Ask for a name and create a script; resolves with its name, or undefined. */
export async function createScriptDialog(ctx) {
  return dialog('New script', (close) => {
    const name = h('input', { type: 'text', name: 'name', required: true, autocomplete: 'off', placeholder: 'nightly-upload' });
    const description = h('input', { type: 'text', name: 'description', autocomplete: 'off' });
    const message = h('div');
    const form = h('form', { class: 'form', id: 'new-script-form' },
      field('Name', name, 'Used by aft start -n NAME, schedules and API keys. Case-insensitive.'),
      field('Description', description), message);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      try {
        const script = await api.post('/v1/scripts', { name: name.value.trim(), description: description.value.trim(), body: NEW_SCRIPT_BODY });
        close(script.name);
        ctx.navigate(`#/scripts/${encodeURIComponent(script.name)}`);
      } catch (err) {
        mount(message, errorBox(err.message));
        name.focus();
      }
    });
    setTimeout(() => name.focus(), 0);
    return {
      body: form,
      foot: [
        h('button', { class: 'btn', type: 'button', onclick: () => close() }, 'Cancel'),
        h('button', { class: 'btn primary', type: 'submit', form: 'new-script-form' }, 'Create script'),
      ],
    };
  });
}

export default async function scriptsPage(ctx) {
  const scripts = await api.get('/v1/scripts');
  if (!ctx.alive()) return;
  const newButton = () => h('button', { class: 'btn primary', type: 'button', 'data-testid': 'new-script', onclick: () => createScriptDialog(ctx) },
    icon('plus', 'btn-icon'), 'New script');
  scripts.sort((a, b) => a.name.localeCompare(b.name));
  // The schedules and watchers running each script, filled in as the answers come.
  const usedCells = new Map(scripts.map((s) => [s.id, h('td', { 'data-testid': 'script-used-by' }, usedByCell(null))]));
  scripts.forEach((s) => {
    api.get(`/v1/scripts/${seg(s.id)}/used-by`)
      .then((users) => mount(usedCells.get(s.id), usedByCell(users)))
      .catch(() => mount(usedCells.get(s.id), h('span', { class: 'muted' }, '?')));
  });
  const lastResult = (s) => (s.lastJob
    ? h('a', { href: `#/jobs/${encodeURIComponent(s.lastJob.id)}`, onclick: (e) => e.stopPropagation(), title: `Last job of ${s.name}: ${s.lastJob.status}` },
      jobBadge(s.lastJob), ' ', timeEl(s.lastJob.finishedAt || s.lastJob.createdAt))
    : h('span', { class: 'muted' }, 'never run'));
  // Run now with no parameters; the job page follows it.
  const runNow = (s) => {
    const button = h('button', { class: 'btn small', type: 'button', 'data-testid': 'run-now', 'aria-label': `Run now: ${s.name}` }, icon('play', 'btn-icon'), 'Run now');
    button.addEventListener('click', (e) => {
      e.stopPropagation();
      busy(button, async () => {
        try {
          const queued = await api.post('/v1/jobs', { scriptId: s.id });
          toast(`Queued ${s.name}.`);
          ctx.navigate(`#/jobs/${encodeURIComponent(queued.jobId)}`);
        } catch (err) {
          toast(err.message, 'error');
        }
      });
    });
    return button;
  };
  const body = scripts.length
    ? h('div', { class: 'table-wrap' }, h('table', {},
      h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Version'), h('th', {}, 'Last result'), h('th', {}, 'Used by'), h('th', {}, 'Updated'), h('th', {}, h('span', { class: 'sr-only' }, 'Actions')))),
      h('tbody', {}, scripts.map((s) => {
        const href = `#/scripts/${encodeURIComponent(s.name)}`;
        return h('tr', { class: 'clickable', 'data-script': s.name, onclick: () => ctx.navigate(href) },
          h('td', {}, h('a', { href, onclick: (e) => e.stopPropagation() }, s.name), s.description ? h('span', { class: 'sub' }, s.description) : null),
          h('td', { class: 'muted' }, `v${s.version} · ${plural(splitLines(s.body).length, 'line')}`),
          h('td', { 'data-testid': 'last-result' }, lastResult(s)),
          usedCells.get(s.id),
          h('td', {}, timeEl(s.updatedAt)),
          h('td', { class: 'cell-actions' }, runNow(s),
            h('a', { class: 'btn small', href: `#/jobs?script=${encodeURIComponent(s.name)}`, onclick: (e) => e.stopPropagation() }, 'Jobs')));
      }))))
    : emptyState('No scripts yet', 'A script is SyncJS code that moves files. Write one here, then run it now, on a schedule, or from aft start.', newButton());
  mount(ctx.main,
    pageHead('Scripts', { subtitle: 'SyncJS scripts stored in the service.', actions: scripts.length ? newButton() : null }),
    h('section', { class: 'card' }, body));
}
