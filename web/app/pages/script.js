// #/scripts/NAME: edit a script with highlighting, check its syntax (the error's line is
// marked), save (Ctrl+S), and run it now with parameters (Ctrl+Enter), the live log beside.

import { api, seg } from '../api.js';
import { busy, confirmDialog, field, h, icon, mount, pageHead, toast } from '../dom.js';
import { CodeEditor } from '../editor.js';
import { FINAL, haltButton, jobBadge } from '../jobs-common.js';
import { LogView } from '../log.js';

export default async function scriptPage(ctx) {
  const { main, params } = ctx;
  let script = await api.get(`/v1/scripts/${seg(params.name)}`);
  if (!ctx.alive()) return;
  let dirty = false;
  let currentJob = null;
  let jobTimer = null;

  const checkResult = h('span', { class: 'check-result', 'data-testid': 'check-result', role: 'status' });
  const dirtyFlag = h('span', { class: 'muted' });
  const cursor = h('span', { class: 'muted mono' });
  const setDirty = (value) => {
    dirty = value;
    dirtyFlag.textContent = dirty ? '● Unsaved changes' : 'Saved';
  };

  const editor = new CodeEditor({
    value: script.body,
    label: `Source of ${script.name}`,
    onChange: () => {
      setDirty(true);
      mount(checkResult);
    },
  });
  const updateCursor = () => {
    const { selectionStart, value } = editor.textarea;
    const before = value.slice(0, selectionStart);
    const line = before.split('\n').length;
    const col = selectionStart - before.lastIndexOf('\n');
    cursor.textContent = `Ln ${line}, Col ${col}`;
  };
  ['keyup', 'click', 'input'].forEach((ev) => editor.textarea.addEventListener(ev, updateCursor));

  const nameInput = h('input', { type: 'text', name: 'name', value: script.name, autocomplete: 'off' });
  const description = h('input', { type: 'text', name: 'description', value: script.description || '', autocomplete: 'off', placeholder: 'What this script does' });
  const retrySafe = h('input', { type: 'checkbox', name: 'retrySafe', checked: Boolean(script.retrySafe) });
  [nameInput, description].forEach((el) => el.addEventListener('input', () => setDirty(true)));
  retrySafe.addEventListener('change', () => setDirty(true));

  const showCheck = (result) => {
    if (result.ok) {
      mount(checkResult, '✓ No syntax errors');
      checkResult.className = 'check-result ok';
      return true;
    }
    const where = result.line ? `Line ${result.line}${result.column ? `, column ${result.column}` : ''}: ` : '';
    checkResult.className = 'check-result error';
    mount(checkResult, `✗ ${where}${result.message}`);
    if (result.line) editor.markError(result.line, result.column);
    return false;
  };

  const check = async () => {
    const result = await api.post('/v1/scripts/check', { source: editor.value, name: `${script.name}.syncjs` });
    return showCheck(result);
  };

  const save = async () => {
    const newName = nameInput.value.trim();
    const updated = await api.put(`/v1/scripts/${seg(script.id)}`, {
      name: newName !== script.name ? newName : undefined,
      description: description.value,
      body: editor.value,
      retrySafe: retrySafe.checked,
    });
    const renamed = updated.name !== script.name;
    script = updated;
    setDirty(false);
    if (renamed) window.history.replaceState(null, '', `#/scripts/${encodeURIComponent(script.name)}`);
    title.textContent = script.name;
    await check().catch(() => {});
    toast(`Saved ${script.name}.`);
  };

  // ---- run now ----
  const paramRows = h('div', { class: 'kv-rows', 'data-testid': 'param-rows' });
  const addParamRow = (key = '', value = '') => {
    const k = h('input', { type: 'text', placeholder: 'name', value: key, 'aria-label': 'Parameter name', autocomplete: 'off' });
    const v = h('input', { type: 'text', placeholder: 'value', value, 'aria-label': 'Parameter value', autocomplete: 'off' });
    const row = h('div', { class: 'kv-row' }, k, v,
      h('button', { class: 'btn ghost small', type: 'button', 'aria-label': 'Remove parameter', onclick: () => row.remove() }, '✕'));
    paramRows.appendChild(row);
    return k;
  };
  addParamRow();
  const collectParams = () => {
    const out = {};
    for (const row of paramRows.children) {
      const [k, v] = row.querySelectorAll('input');
      if (k.value.trim()) out[k.value.trim()] = v.value;
    }
    return out;
  };

  const runState = h('div', { class: 'actions' });
  const log = new LogView({
    emptyText: 'Run the script to see its log here, live.',
    onEnd: (job) => {
      if (job) currentJob = job;
      renderRunState();
    },
  });

  const renderRunState = () => {
    if (!currentJob) {
      mount(runState, h('span', { class: 'muted small' }, 'Not run from here yet.'));
      return;
    }
    const job = currentJob;
    mount(runState,
      h('span', { 'data-testid': 'run-status' }, jobBadge(job)),
      h('a', { href: `#/jobs/${encodeURIComponent(job.id)}`, class: 'small' }, 'Open job'),
      FINAL.has(job.status) ? null : haltButton(job, (updated) => { currentJob = updated; renderRunState(); }));
  };
  const pollJob = async () => {
    clearTimeout(jobTimer);
    if (!currentJob || FINAL.has(currentJob.status)) return;
    try {
      const fresh = await api.get(`/v1/jobs/${seg(currentJob.id)}`);
      if (!ctx.alive()) return;
      const changed = fresh.status !== currentJob.status || fresh.haltRequested !== currentJob.haltRequested;
      currentJob = fresh;
      if (changed) renderRunState();
    } catch { /* try again */ }
    if (ctx.alive() && currentJob && !FINAL.has(currentJob.status)) jobTimer = setTimeout(pollJob, 1500);
  };

  // A dry run changes nothing: its log ends with the plan, shown in full on the job page.
  const run = async (dryRun = false) => {
    if (dirty) await save();
    const body = { scriptId: script.id, params: collectParams() };
    if (dryRun) body.dryRun = true;
    const queued = await api.post('/v1/jobs', body);
    currentJob = { id: queued.jobId, status: queued.status, haltRequested: false };
    renderRunState();
    log.follow(queued.jobId);
    jobTimer = setTimeout(pollJob, 500);
  };

  // ---- buttons and keys ----
  const guarded = (button, work) => busy(button, async () => {
    try {
      await work();
    } catch (e) {
      toast(e.message, 'error');
    }
  });
  const checkButton = h('button', { class: 'btn', type: 'button', 'data-testid': 'check-script' }, icon('check', 'btn-icon'), 'Check');
  const saveButton = h('button', { class: 'btn', type: 'button', 'data-testid': 'save-script', title: 'Save (Ctrl+S)' }, icon('save', 'btn-icon'), 'Save', h('span', { class: 'kbd-hint' }, 'Ctrl+S'));
  const runButton = h('button', { class: 'btn primary', type: 'button', 'data-testid': 'run-script', title: 'Run now (Ctrl+Enter)' }, icon('play', 'btn-icon'), 'Run now', h('span', { class: 'kbd-hint' }, 'Ctrl+↵'));
  const deleteButton = h('button', { class: 'btn danger', type: 'button' }, 'Delete');
  checkButton.addEventListener('click', () => guarded(checkButton, check));
  saveButton.addEventListener('click', () => guarded(saveButton, save));
  runButton.addEventListener('click', () => guarded(runButton, () => run()));
  const dryRunButton = h('button', { class: 'btn', type: 'button', 'data-testid': 'dry-run-script', title: 'Run without changing anything: the job ends with the plan of what it would do' }, icon('check', 'btn-icon'), 'Dry run');
  dryRunButton.addEventListener('click', () => guarded(dryRunButton, () => run(true)));
  deleteButton.addEventListener('click', async () => {
    if (!await confirmDialog(`Delete ${script.name}?`, 'The script is deleted; its past jobs and their logs stay in the job history.')) return;
    try {
      await api.del(`/v1/scripts/${seg(script.id)}`);
      dirty = false;
      toast(`Deleted ${script.name}.`);
      ctx.navigate('#/scripts');
    } catch (e) {
      toast(e.message, 'error');
    }
  });
  const onKey = (e) => {
    if (!(e.ctrlKey || e.metaKey)) return;
    if (e.key === 's' || e.key === 'S') {
      e.preventDefault();
      if (!saveButton.disabled) saveButton.click();
    } else if (e.key === 'Enter') {
      e.preventDefault();
      if (!runButton.disabled) runButton.click();
    }
  };
  const beforeUnload = (e) => {
    if (dirty) e.preventDefault();
  };
  ctx.guardLeave(() => dirty);
  document.addEventListener('keydown', onKey);
  window.addEventListener('beforeunload', beforeUnload);
  ctx.onCleanup(() => {
    document.removeEventListener('keydown', onKey);
    window.removeEventListener('beforeunload', beforeUnload);
    log.close();
    clearTimeout(jobTimer);
  });

  const head = pageHead(script.name, {
    crumbs: [h('a', { href: '#/scripts' }, 'Scripts'), ' / edit'],
    actions: [checkButton, saveButton, dryRunButton, runButton],
  });
  const title = head.querySelector('h1');
  setDirty(false);
  updateCursor();
  renderRunState();

  mount(main,
    head,
    h('div', { class: 'script-layout' },
      h('div', {},
        editor.el,
        h('div', { class: 'editor-status' }, checkResult, h('span', { class: 'grow' }), dirtyFlag, cursor),
        h('p', { class: 'muted small', id: 'editor-keys' }, 'Tab indents, Shift+Tab outdents; press Esc then Tab to leave the editor. ',
          h('kbd', {}, 'Ctrl'), '+', h('kbd', {}, 'S'), ' saves, ', h('kbd', {}, 'Ctrl'), '+', h('kbd', {}, 'Enter'), ' runs.'),
        h('section', { class: 'card' },
          h('div', { class: 'card-head' }, h('h2', {}, 'Properties')),
          h('div', { class: 'card-body form' },
            h('div', { class: 'form-row' }, field('Name', nameInput), field('Description', description)),
            h('label', { class: 'field inline' }, retrySafe, 'Retry safe: a job interrupted by a node failure may run again'),
            h('div', { class: 'form-actions' }, deleteButton)))),
      h('div', { class: 'script-side' },
        h('section', { class: 'card' },
          h('div', { class: 'card-head' }, h('h2', {}, 'Run now')),
          h('div', { class: 'card-body form' },
            h('div', { class: 'field' }, h('span', { class: 'label' }, 'Parameters'), paramRows,
              h('div', { class: 'help' }, 'The script reads them with Param("name").')),
            h('div', { class: 'form-actions' },
              h('button', { class: 'btn small', type: 'button', onclick: () => addParamRow().focus() }, icon('plus', 'btn-icon'), 'Add parameter')))),
        h('section', { class: 'card' },
          h('div', { class: 'card-head' }, h('h2', {}, 'Live log'), runState),
          log.el))));
  editor.focus();
}

