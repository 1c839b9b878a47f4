// #/scripts/NAME: edit a script with highlighting, check its syntax (the error's line is
// marked), save (Ctrl+S), and run it now with parameters (Ctrl+Enter), the live log beside.

import { api, seg } from '../api.js';
import { busy, confirmDialog, errorBox, field, h, icon, mount, pageHead, timeEl, toast } from '../dom.js';
import { CodeEditor } from '../editor.js';
import { FINAL, haltButton, jobBadge } from '../jobs-common.js';
import { lineDiff, splitLines } from '../linediff.js';
import { LogView } from '../log.js';
import { deleteChecked, usedByList } from '../usedby.js';

/** A line diff of two sources as a table: old and new line numbers, the mark, the text. */
function diffTable(from, to, fromLabel, toLabel) {
  const lines = lineDiff(from, to);
  const changed = lines.filter((l) => l.op !== ' ').length;
  if (!changed) return h('p', { class: 'muted', 'data-testid': 'diff-same' }, `${fromLabel} and ${toLabel} are the same.`);
  const cls = { '+': 'diff-add', '-': 'diff-del', ' ': 'diff-same' };
  const word = { '+': 'added', '-': 'removed', ' ': '' };
  return h('div', { class: 'table-wrap diff-wrap' }, h('table', { class: 'diff mono', 'data-testid': 'diff', 'aria-label': `Changes from ${fromLabel} to ${toLabel}` },
    h('thead', {}, h('tr', {}, h('th', {}, fromLabel), h('th', {}, toLabel), h('th', {}, h('span', { class: 'sr-only' }, 'Change')), h('th', {}, 'Line'))),
    h('tbody', {}, lines.map((l) => h('tr', { class: cls[l.op], 'data-op': l.op },
      h('td', { class: 'muted' }, l.a ?? ''),
      h('td', { class: 'muted' }, l.b ?? ''),
      h('td', {}, l.op === ' ' ? '' : h('span', { title: word[l.op] }, l.op, h('span', { class: 'sr-only' }, ` ${word[l.op]}`))),
      h('td', { class: 'diff-text' }, l.text))))));
}

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
    loadVersions();
  };

  // ---- used by ----
  const usedByBody = h('div', { class: 'card-body', 'data-testid': 'script-used-by' }, h('span', { class: 'muted' }, 'Loading…'));
  api.get(`/v1/scripts/${seg(script.id)}/used-by`)
    .then((users) => mount(usedByBody, usedByList(users, 'No schedule or watcher runs it.')))
    .catch((e) => mount(usedByBody, errorBox(e.message)));

  // ---- versions: list, diff two, restore one ----
  const versionsBody = h('div', { class: 'card-body', 'data-testid': 'versions' });
  const diffArea = h('div', { 'data-testid': 'diff-area' });
  const fromSelect = h('select', { name: 'diff-from', 'data-testid': 'diff-from' });
  const toSelect = h('select', { name: 'diff-to', 'data-testid': 'diff-to' });
  let versions = [];
  const bodyOf = (v) => (v === 'editor' ? editor.value : (versions.find((x) => String(x.version) === v) || {}).body ?? '');
  const labelOf = (v) => (v === 'editor' ? 'editor' : `v${v}`);
  const showDiff = () => mount(diffArea, diffTable(bodyOf(fromSelect.value), bodyOf(toSelect.value), labelOf(fromSelect.value), labelOf(toSelect.value)));
  const restore = async (version) => {
    if (dirty && !await confirmDialog('Discard unsaved changes?', `Restoring version ${version} replaces the editor's unsaved text.`, 'Restore', false)) return;
    if (!dirty && !await confirmDialog(`Restore version ${version}?`, `Its source becomes the script's source again, saved as a new version.`, 'Restore', false)) return;
    try {
      script = await api.post(`/v1/scripts/${seg(script.id)}/versions/${version}/restore`);
      editor.value = script.body;
      setDirty(false);
      toast(`Restored version ${version} of ${script.name} (now version ${script.version}).`);
      loadVersions();
    } catch (e) {
      toast(e.message, 'error');
    }
  };
  const renderVersions = () => {
    const options = (select, chosen) => mount(select,
      versions.map((v) => h('option', { value: String(v.version), selected: String(v.version) === chosen }, `v${v.version}`)),
      h('option', { value: 'editor', selected: chosen === 'editor' }, 'editor (unsaved)'));
    const newest = versions[0] ? String(versions[0].version) : 'editor';
    const previous = versions[1] ? String(versions[1].version) : newest;
    options(fromSelect, previous);
    options(toSelect, newest);
    mount(versionsBody,
      h('div', { class: 'table-wrap' }, h('table', { 'data-testid': 'versions-table' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Version'), h('th', {}, 'Saved'), h('th', {}, 'Lines'), h('th', {}, h('span', { class: 'sr-only' }, 'Actions')))),
        h('tbody', {}, versions.map((v, i) => h('tr', { 'data-version': String(v.version) },
          h('td', {}, `v${v.version}`, i === 0 ? h('span', { class: 'tag' }, 'current') : null),
          h('td', {}, timeEl(v.createdAt)),
          h('td', { class: 'muted' }, String(splitLines(v.body).length)),
          h('td', { class: 'cell-actions' }, i === 0 ? null
            : h('button', { class: 'btn small', type: 'button', 'data-testid': 'restore-version', 'aria-label': `Restore version ${v.version}`, onclick: () => restore(v.version) }, 'Restore'))))))),
      h('div', { class: 'form-row diff-pick' }, field('Compare', fromSelect), field('with', toSelect),
        h('div', { class: 'form-actions' }, h('button', { class: 'btn small', type: 'button', 'data-testid': 'show-diff', onclick: showDiff }, 'Show changes'))),
      diffArea);
  };
  const loadVersions = async () => {
    try {
      versions = await api.get(`/v1/scripts/${seg(script.id)}/versions`);
      if (ctx.alive()) renderVersions();
    } catch (e) {
      mount(versionsBody, errorBox(e.message));
    }
  };

  // ---- retry policy (the rest of the policy is kept as it is) ----
  const policyBody = h('div', { class: 'card-body' });
  const renderPolicy = (policy) => {
    const r = policy.retry || null;
    const enabled = h('input', { type: 'checkbox', name: 'retry-enabled', 'data-testid': 'retry-enabled', checked: Boolean(r) });
    const attempts = h('input', { type: 'number', name: 'retry-attempts', min: '2', max: '100', value: String(r ? r.attempts : 3) });
    const backoff = h('select', { name: 'retry-backoff' },
      ['exponential', 'fixed'].map((b) => h('option', { value: b, selected: (r ? r.backoff : 'exponential') === b }, b)));
    const delay = h('input', { type: 'number', name: 'retry-delay', min: '0', step: 'any', value: String((r ? r.delayMs : 1000) / 1000) });
    const maxDelay = h('input', { type: 'number', name: 'retry-max-delay', min: '0', step: 'any', value: String((r ? r.maxDelayMs : 3600000) / 1000) });
    const jitter = h('input', { type: 'number', name: 'retry-jitter', min: '0', max: '1', step: '0.05', value: String(r ? r.jitter : 0) });
    const onFailed = h('input', { type: 'checkbox', name: 'retry-on-failed', checked: r ? r.on.includes('failed') : true });
    const onInterrupted = h('input', { type: 'checkbox', name: 'retry-on-interrupted', checked: r ? r.on.includes('interrupted') : true });
    const exitCodes = h('input', { type: 'text', name: 'retry-exit-codes', autocomplete: 'off', placeholder: 'any', value: r ? r.exitCodes.join(', ') : '' });
    const message = h('div', { role: 'status' });
    const fields = h('fieldset', { class: 'form', disabled: !r },
      h('legend', { class: 'sr-only' }, 'Retry settings'),
      h('div', { class: 'form-row' },
        field('Attempts', attempts, 'Runs in all, the first included.'),
        field('Backoff', backoff, 'exponential doubles the wait each time.')),
      h('div', { class: 'form-row' },
        field('First wait (seconds)', delay),
        field('Longest wait (seconds)', maxDelay),
        field('Jitter (0–1)', jitter, 'Share of each wait taken off at random.')),
      h('div', { class: 'field' }, h('span', { class: 'label' }, 'Retry when the job'),
        h('label', { class: 'field inline' }, onFailed, 'failed'),
        h('label', { class: 'field inline' }, onInterrupted, 'was interrupted (its node died)')),
      field('Only exit codes', exitCodes, 'Comma-separated, e.g. 75; empty retries any failure.'));
    enabled.addEventListener('change', () => { fields.disabled = !enabled.checked; });
    const saveButton = h('button', { class: 'btn', type: 'submit', 'data-testid': 'save-policy' }, 'Save retry policy');
    const form = h('form', { class: 'form', 'data-testid': 'retry-form' },
      h('label', { class: 'field inline' }, enabled, 'Retry failed jobs of this script'),
      fields, message, h('div', { class: 'form-actions' }, saveButton));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      busy(saveButton, async () => {
        const on = [onFailed.checked && 'failed', onInterrupted.checked && 'interrupted'].filter(Boolean);
        const codes = exitCodes.value.split(',').map((c) => c.trim()).filter(Boolean);
        if (codes.some((c) => !/^-?\d+$/.test(c))) {
          mount(message, errorBox('Exit codes are whole numbers, separated by commas.'));
          return;
        }
        const retry = enabled.checked ? {
          attempts: Number(attempts.value),
          backoff: backoff.value,
          delayMs: Math.round(Number(delay.value) * 1000),
          maxDelayMs: Math.round(Number(maxDelay.value) * 1000),
          jitter: Number(jitter.value),
          on,
          exitCodes: codes.map(Number),
        } : undefined;
        try {
          // PUT replaces the whole policy: send the notifications and chains back unchanged.
          const saved = await api.put(`/v1/scripts/${seg(script.id)}/policy`, { retry, notify: policy.notify ?? undefined, chain: policy.chain ?? undefined });
          mount(message);
          toast(saved.retry ? `Retry policy of ${script.name} saved.` : `${script.name} no longer retries.`);
          renderPolicy(saved);
        } catch (err) {
          mount(message, errorBox(err.message));
        }
      });
    });
    mount(policyBody, form);
  };
  api.get(`/v1/scripts/${seg(script.id)}/policy`)
    .then((policy) => { if (ctx.alive()) renderPolicy(policy); })
    .catch((e) => mount(policyBody, errorBox(e.message)));

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
    if (await deleteChecked(`/v1/scripts/${seg(script.id)}`, `script ${script.name}`)) {
      dirty = false;
      ctx.navigate('#/scripts');
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
            h('div', { class: 'form-actions' }, deleteButton))),
        h('section', { class: 'card', 'data-testid': 'retry-policy' },
          h('div', { class: 'card-head' }, h('h2', {}, 'Retry policy')),
          policyBody),
        h('section', { class: 'card' },
          h('div', { class: 'card-head' }, h('h2', {}, 'Used by')),
          usedByBody),
        h('section', { class: 'card' },
          h('div', { class: 'card-head' }, h('h2', {}, 'Versions')),
          versionsBody)),
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
  loadVersions();
  editor.focus();
}

