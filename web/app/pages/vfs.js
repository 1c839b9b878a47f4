// #/vfs: the VFS Library — named connections (disk, SFTP, FTP/FTPS, S3, Azure, GCS,
// WebDAV) that scripts open with GetVFS("name"). Credentials are secret references only.
// "Test" connects and lists; an unknown SFTP host key comes back with its fingerprint,
// which can be pinned with one click.

import { api, seg } from '../api.js';
import { busy, confirmDialog, dialog, emptyState, errorBox, field, h, icon, mount, pageHead, plural, timeEl, toast } from '../dom.js';
import { deleteChecked, usedByCell } from '../usedby.js';

/**
 * The types and their fields come from the service (GET /v1/vfs/types: aft-vfs's backend
 * registry), so the form offers exactly the fields the service accepts. Clear-text
 * credential fields (kind "credential") are never offered; rarely needed fields sit under
 * "More fields".
 */
export function formFields(type) {
  return (type?.fields || []).filter((f) => f.kind !== 'credential');
}

const FINGERPRINT = /SHA256:[A-Za-z0-9+/]{20,}=*/;

/** The host-key fingerprint in a test answer or error message, if any. */
export function fingerprintOf(answer) {
  if (!answer) return null;
  if (typeof answer === 'object') {
    const direct = answer.fingerprint || answer.hostKeySha256 || answer.hostKeySHA256;
    if (direct) return direct;
    return fingerprintOf(answer.error || answer.message);
  }
  const m = FINGERPRINT.exec(String(answer));
  return m ? m[0] : null;
}

function entryForm(types, secrets, entry) {
  const editing = Boolean(entry);
  const byName = Object.fromEntries(types.map((t) => [t.type, t]));
  return dialog(editing ? `Edit ${entry.name}` : 'New VFS entry', (close) => {
    const name = h('input', { type: 'text', name: 'vfs-name', value: entry?.name || '', required: true, autocomplete: 'off', readonly: editing, placeholder: 'partner-sftp' });
    const type = h('select', { name: 'vfs-type' }, types.map((t) => h('option', { value: t.type, selected: (entry?.type || 'sftp') === t.type }, t.label)));
    const fieldsArea = h('div', { class: 'form' });
    const moreArea = h('div', { class: 'form' });
    const more = h('details', { 'data-testid': 'vfs-more-fields' }, h('summary', {}, 'More fields'), moreArea);
    const message = h('div');
    let controls = {};
    const settings = { ...(entry?.settings || {}) };

    const control = (f) => {
      const current = settings[f.name];
      let c;
      if (f.kind === 'bool') {
        c = h('input', { type: 'checkbox', name: f.name, checked: current === true || current === 'true' });
        controls[f.name] = c;
        return h('label', { class: 'field inline' }, c, f.label);
      }
      if (f.kind === 'choice') {
        // A stored position (TLSMode 1) shows as its name.
        const chosen = typeof current === 'number' || /^\d+$/.test(String(current ?? '')) ? f.options[Number(current)] : current;
        c = h('select', { name: f.name }, h('option', { value: '' }, '(default)'), f.options.map((o) => h('option', { value: o, selected: chosen === o }, o)));
      } else if (f.kind === 'secret') {
        const names = secrets.map((s) => s.name);
        if (current && !names.includes(current)) names.push(current);
        c = h('select', { name: f.name }, h('option', { value: '' }, '(none)'), names.map((n) => h('option', { value: n, selected: current === n }, n)));
      } else {
        c = h('input', { type: f.kind === 'number' ? 'number' : 'text', name: f.name, value: current ?? '', placeholder: f.placeholder || '', required: Boolean(f.required), autocomplete: 'off' });
      }
      controls[f.name] = c;
      return field(f.label, c, f.help || null);
    };

    const renderFields = () => {
      const def = byName[type.value];
      controls = {};
      const fields = formFields(def);
      const main = fields.filter((f) => !f.advanced).map(control);
      const advanced = fields.filter((f) => f.advanced);
      mount(fieldsArea, h('div', { class: 'form-row' }, main));
      mount(moreArea, advanced.length ? h('div', { class: 'form-row' }, advanced.map(control)) : h('p', { class: 'muted small' }, 'No other fields.'));
      // An entry saved before with a field this type does not have: say so rather than drop it silently.
      const known = new Set(fields.map((f) => f.name));
      const unknown = Object.keys(settings).filter((k) => !known.has(k) && settings[k] !== '' && settings[k] !== false);
      if (editing && unknown.length && type.value === entry.type) {
        fieldsArea.appendChild(h('div', { class: 'alert warn' }, h('div', { class: 'grow' }, `Not ${def.label} fields, dropped on save: ${unknown.join(', ')}.`)));
      }
      if (!secrets.length && fields.some((f) => f.kind === 'secret')) {
        fieldsArea.appendChild(h('div', { class: 'alert info' }, h('div', { class: 'grow' }, 'No secrets yet: store passwords and keys under Secrets first, then pick them here.')));
      }
    };
    type.addEventListener('change', () => {
      for (const [k, c] of Object.entries(controls)) settings[k] = c.type === 'checkbox' ? c.checked : c.value;
      renderFields();
    });
    renderFields();

    const collect = () => {
      const out = {};
      for (const [k, c] of Object.entries(controls)) {
        if (c.type === 'checkbox') {
          if (c.checked) out[k] = true;
        } else if (c.value.trim()) out[k] = c.type === 'number' ? Number(c.value) : c.value.trim();
      }
      return out;
    };

    const form = h('form', { class: 'form', id: 'vfs-form' },
      h('div', { class: 'form-row' }, field('Name', name, 'Scripts open it with GetVFS("name").'), field('Type', type)),
      fieldsArea,
      more,
      message);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const body = { type: type.value, settings: collect() };
      try {
        const saved = editing
          ? await api.put(`/v1/vfs/${seg(entry.name)}`, body)
          : await api.post('/v1/vfs', { ...body, name: name.value.trim() });
        close(saved);
      } catch (err) {
        mount(message, errorBox(err.message));
      }
    });
    setTimeout(() => (editing ? type : name).focus(), 0);
    return {
      body: form,
      foot: [
        h('button', { class: 'btn', type: 'button', onclick: () => close() }, 'Cancel'),
        h('button', { class: 'btn primary', type: 'submit', form: 'vfs-form' }, editing ? 'Save changes' : 'Add entry'),
      ],
    };
  });
}

function summary(entry) {
  const s = entry.settings || {};
  return s.Host || s.Endpoint || (s.Bucket && `bucket ${s.Bucket}`) || (s.Container && `${s.AccountName || ''}/${s.Container}`) || s.Root || '';
}

export default async function vfsPage(ctx) {
  const [entries, secrets, types] = await Promise.all([api.get('/v1/vfs'), api.get('/v1/secrets').catch(() => []), api.get('/v1/vfs/types')]);
  if (!ctx.alive()) return;
  const reload = () => ctx.navigate('#/vfs', { replace: true });
  const resultArea = h('div', { 'data-testid': 'vfs-test-result' });

  const test = async (entry, button) => {
    await busy(button, async () => {
      let answer;
      let failed = false;
      try {
        answer = await api.post(`/v1/vfs/${seg(entry.name)}/test`, {});
      } catch (e) {
        failed = true;
        answer = e.body && typeof e.body === 'object' ? e.body : { error: e.message };
        if (e.status === 404 && /no REST endpoint/.test(e.message)) answer = { error: 'This service cannot test connections yet (no POST /v1/vfs/{name}/test).' };
      }
      // The service answers 200 with ok: false when the request worked but the connection did not.
      if (answer && answer.ok === false) failed = true;
      const fp = fingerprintOf(answer);
      const pinned = entry.settings?.HostKeySHA256;
      const parts = [];
      if (failed) {
        parts.push(h('div', { class: 'grow' }, h('strong', {}, `${entry.name}: connection failed. `), answer.error || 'Unknown error.'));
      } else {
        const detail = answer && typeof answer === 'object'
          ? [answer.message, answer.entries !== undefined ? `${plural(answer.entries, 'entry', 'entries')} listed` : null, answer.millis !== undefined ? `${answer.millis} ms` : null].filter(Boolean).join(' · ')
          : '';
        parts.push(h('div', { class: 'grow' }, h('strong', {}, `${entry.name}: connection works. `), detail));
      }
      const box = h('div', { class: ['alert', failed ? 'error' : 'ok'], role: 'status' }, parts);
      const blocks = [box];
      if (fp && entry.type === 'sftp' && fp !== pinned) {
        const pin = h('button', { class: 'btn primary small', type: 'button', 'data-testid': 'pin-host-key' }, 'Pin this host key');
        pin.addEventListener('click', () => busy(pin, async () => {
          try {
            await api.put(`/v1/vfs/${seg(entry.name)}`, { type: entry.type, settings: { ...entry.settings, HostKeySHA256: fp } });
            toast(`Pinned ${fp} for ${entry.name}.`);
            reload();
          } catch (e) {
            toast(e.message, 'error');
          }
        }));
        blocks.push(h('div', { class: 'alert warn' }, h('div', { class: 'grow' },
          h('div', {}, 'The server presented this host key. Compare it with the fingerprint your partner gave you before pinning:'),
          h('code', { class: 'mono', 'data-testid': 'host-key-fingerprint' }, fp)), pin));
      }
      mount(resultArea, h('div', { class: 'card-body form' }, blocks));
    });
  };

  const add = async () => {
    const saved = await entryForm(types, secrets);
    if (saved) {
      toast(`Added ${saved.name}.`);
      reload();
    }
  };
  const newButton = () => h('button', { class: 'btn primary', type: 'button', 'data-testid': 'new-vfs', onclick: add }, icon('plus', 'btn-icon'), 'New entry');
  entries.sort((a, b) => a.name.localeCompare(b.name));
  // The scripts (GetVFS("name")) and watchers using each entry, filled in as they come.
  const usedCells = new Map(entries.map((e) => [e.name, h('td', { 'data-testid': 'vfs-used-by' }, usedByCell(null))]));
  entries.forEach((e) => {
    api.get(`/v1/vfs/${seg(e.name)}/used-by`)
      .then((users) => mount(usedCells.get(e.name), usedByCell(users)))
      .catch(() => mount(usedCells.get(e.name), h('span', { class: 'muted' }, '?')));
  });
  const body = entries.length
    ? h('div', { class: 'table-wrap' }, h('table', { 'data-testid': 'vfs-table' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Type'), h('th', {}, 'Target'), h('th', {}, 'Host key'), h('th', {}, 'Used by'), h('th', {}, 'Updated'), h('th', {}, h('span', { class: 'sr-only' }, 'Actions')))),
      h('tbody', {}, entries.map((entry) => {
        const testButton = h('button', { class: 'btn small', type: 'button', 'data-testid': 'test-vfs' }, icon('plug', 'btn-icon'), 'Test');
        testButton.addEventListener('click', () => test(entry, testButton));
        return h('tr', { 'data-vfs': entry.name },
          h('td', {}, h('strong', {}, entry.name)),
          h('td', {}, h('span', { class: 'tag' }, entry.type)),
          h('td', { class: 'mono' }, summary(entry) || '—'),
          h('td', { class: 'mono small' }, entry.type === 'sftp' ? (entry.settings?.HostKeySHA256 || h('span', { class: 'muted' }, 'not pinned')) : '—'),
          usedCells.get(entry.name),
          h('td', {}, timeEl(entry.updatedAt)),
          h('td', { class: 'cell-actions' }, testButton,
            h('button', {
              class: 'btn small', type: 'button',
              onclick: async () => {
                if (await entryForm(types, secrets, entry)) {
                  toast(`Saved ${entry.name}.`);
                  reload();
                }
              },
            }, 'Edit'),
            h('button', {
              class: 'btn small danger', type: 'button', 'aria-label': `Delete ${entry.name}`,
              onclick: async () => {
                if (!await confirmDialog(`Delete ${entry.name}?`, 'An entry that scripts or watchers use is not deleted without a second confirmation.')) return;
                if (await deleteChecked(`/v1/vfs/${seg(entry.name)}`, `VFS entry ${entry.name}`)) reload();
              },
            }, 'Delete')));
      }))))
    : emptyState('The VFS Library is empty', 'Define each server once — SFTP, FTPS, S3, Azure, GCS, WebDAV or a local folder — and use it by name in every script.', newButton());
  mount(ctx.main,
    pageHead('VFS Library', { subtitle: 'Named connections scripts open with GetVFS("name").', actions: entries.length ? newButton() : null }),
    h('section', { class: 'card' }, body, resultArea));
}
