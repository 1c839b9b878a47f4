// #/vfs: the VFS Library — named connections (disk, SFTP, FTP/FTPS, S3, Azure, GCS,
// WebDAV) that scripts open with GetVFS("name"). Credentials are secret references only.
// "Test" connects and lists; an unknown SFTP host key comes back with its fingerprint,
// which can be pinned with one click.

import { api, seg } from '../api.js';
import { busy, confirmDialog, dialog, emptyState, errorBox, field, h, icon, mount, pageHead, timeEl, toast } from '../dom.js';

const secretHelp = 'The name of a secret (see Secrets); clear-text credentials are refused.';

/** The fields each type offers, by their SyncJS names. */
export const VFS_TYPES = {
  disk: { label: 'Local disk', fields: [{ key: 'Root', label: 'Root folder', placeholder: '/srv/outbox' }] },
  sftp: {
    label: 'SFTP',
    fields: [
      { key: 'Host', label: 'Host', placeholder: 'sftp.example.com:22', required: true },
      { key: 'User', label: 'User', required: true },
      { key: 'PassFromSecret', label: 'Password secret', kind: 'secret', help: secretHelp },
      { key: 'KeyFile', label: 'Private key file', placeholder: '/home/aft/.ssh/id_ed25519' },
      { key: 'KeyFileSecret', label: 'Key passphrase secret', kind: 'secret' },
      { key: 'BaseDir', label: 'Base folder', placeholder: '/upload' },
      { key: 'HostKeySHA256', label: 'Pinned host key (SHA-256)', placeholder: 'SHA256:…', help: 'Leave empty and press Test: the fingerprint the server shows can be pinned then.' },
      { key: 'AcceptAnyHostKey', label: 'Accept any host key (unsafe: testing only)', kind: 'bool' },
    ],
  },
  ftp: {
    label: 'FTP',
    fields: [
      { key: 'Host', label: 'Host', placeholder: 'ftp.example.com:21', required: true },
      { key: 'User', label: 'User' },
      { key: 'PassFromSecret', label: 'Password secret', kind: 'secret', help: secretHelp },
    ],
  },
  ftps: {
    label: 'FTPS',
    fields: [
      { key: 'Host', label: 'Host', placeholder: 'ftp.example.com:21', required: true },
      { key: 'User', label: 'User' },
      { key: 'PassFromSecret', label: 'Password secret', kind: 'secret', help: secretHelp },
      { key: 'TLSMode', label: 'TLS mode', kind: 'select', options: ['TLS_MODE_EXPLICIT', 'TLS_MODE_IMPLICIT', 'TLS_MODE_NONE'] },
      { key: 'TLSCAFile', label: 'CA certificate file', placeholder: '/etc/ssl/my-ca.pem' },
      { key: 'TLSInsecure', label: 'Skip certificate checks (testing only)', kind: 'bool' },
    ],
  },
  s3: {
    label: 'Amazon S3 / compatible',
    fields: [
      { key: 'Bucket', label: 'Bucket', required: true },
      { key: 'Region', label: 'Region', placeholder: 'us-east-1' },
      { key: 'APIKeyID', label: 'Access key id' },
      { key: 'APIKeySecretFromSecret', label: 'Secret key secret', kind: 'secret', help: secretHelp },
      { key: 'Endpoint', label: 'Endpoint (S3-compatible servers)', placeholder: 'https://s3.example.com' },
      { key: 'UseMetadataWhenListing', label: 'Use metadata when listing', kind: 'bool' },
    ],
  },
  azure: {
    label: 'Azure Blob',
    fields: [
      { key: 'AccountName', label: 'Account name', required: true },
      { key: 'Container', label: 'Container', required: true },
      { key: 'AccountKeyFromSecret', label: 'Account key secret', kind: 'secret', help: secretHelp },
      { key: 'Endpoint', label: 'Endpoint (Azurite, sovereign clouds)' },
    ],
  },
  gcs: {
    label: 'Google Cloud Storage',
    fields: [
      { key: 'Bucket', label: 'Bucket', required: true },
      { key: 'CredentialsFile', label: 'Credentials file', placeholder: '/etc/aft/gcs.json' },
      { key: 'Endpoint', label: 'Endpoint (emulators)' },
    ],
  },
  webdav: {
    label: 'WebDAV',
    fields: [
      { key: 'Endpoint', label: 'URL', placeholder: 'https://dav.example.com/remote.php/webdav', required: true },
      { key: 'User', label: 'User' },
      { key: 'PassFromSecret', label: 'Password secret', kind: 'secret', help: secretHelp },
    ],
  },
};

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

function entryForm(secrets, entry) {
  const editing = Boolean(entry);
  return dialog(editing ? `Edit ${entry.name}` : 'New VFS entry', (close) => {
    const name = h('input', { type: 'text', name: 'vfs-name', value: entry?.name || '', required: true, autocomplete: 'off', readonly: editing, placeholder: 'partner-sftp' });
    const type = h('select', { name: 'vfs-type' }, Object.entries(VFS_TYPES).map(([k, t]) => h('option', { value: k, selected: (entry?.type || 'sftp') === k }, t.label)));
    const fieldsArea = h('div', { class: 'form' });
    const extraRows = h('div', { class: 'kv-rows' });
    const message = h('div');
    let controls = {};
    const settings = { ...(entry?.settings || {}) };

    const addExtra = (key = '', value = '') => {
      const k = h('input', { type: 'text', value: key, placeholder: 'Field', 'aria-label': 'Field name' });
      const v = h('input', { type: 'text', value: String(value), placeholder: 'Value', 'aria-label': 'Field value' });
      const row = h('div', { class: 'kv-row' }, k, v, h('button', { class: 'btn ghost small', type: 'button', 'aria-label': 'Remove field', onclick: () => row.remove() }, '✕'));
      extraRows.appendChild(row);
      return k;
    };

    const renderFields = () => {
      const def = VFS_TYPES[type.value];
      controls = {};
      const known = new Set(def.fields.map((f) => f.key));
      const els = def.fields.map((f) => {
        const current = settings[f.key];
        let control;
        if (f.kind === 'bool') {
          control = h('input', { type: 'checkbox', name: f.key, checked: current === true || current === 'true' });
          controls[f.key] = control;
          return h('label', { class: 'field inline' }, control, f.label);
        }
        if (f.kind === 'select') {
          control = h('select', { name: f.key }, h('option', { value: '' }, '(default)'), f.options.map((o) => h('option', { value: o, selected: current === o }, o)));
        } else if (f.kind === 'secret') {
          const names = secrets.map((s) => s.name);
          if (current && !names.includes(current)) names.push(current);
          control = h('select', { name: f.key }, h('option', { value: '' }, '(none)'), names.map((n) => h('option', { value: n, selected: current === n }, n)));
        } else {
          control = h('input', { type: 'text', name: f.key, value: current ?? '', placeholder: f.placeholder || '', required: Boolean(f.required), autocomplete: 'off' });
        }
        controls[f.key] = control;
        return field(f.label, control, f.help);
      });
      mount(extraRows);
      for (const [k, v] of Object.entries(settings)) if (!known.has(k)) addExtra(k, v);
      mount(fieldsArea, h('div', { class: 'form-row' }, els));
      if (!secrets.length && def.fields.some((f) => f.kind === 'secret')) {
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
        } else if (c.value.trim()) out[k] = c.value.trim();
      }
      for (const row of extraRows.children) {
        const [k, v] = row.querySelectorAll('input');
        if (!k.value.trim()) continue;
        const text = v.value.trim();
        out[k.value.trim()] = text === 'true' ? true : text === 'false' ? false : /^-?\d+$/.test(text) ? Number(text) : text;
      }
      return out;
    };

    const form = h('form', { class: 'form', id: 'vfs-form' },
      h('div', { class: 'form-row' }, field('Name', name, 'Scripts open it with GetVFS("name").'), field('Type', type)),
      fieldsArea,
      h('details', {}, h('summary', {}, 'More fields'),
        h('div', { class: 'form' }, h('p', { class: 'muted small' }, 'Any other client field by its SyncJS name (e.g. Port, Root, AcceptAnyHostKey).'),
          extraRows, h('div', {}, h('button', { class: 'btn small', type: 'button', onclick: () => addExtra().focus() }, icon('plus', 'btn-icon'), 'Add field')))),
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
  const [entries, secrets] = await Promise.all([api.get('/v1/vfs'), api.get('/v1/secrets').catch(() => [])]);
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
          ? [answer.message, answer.entries !== undefined ? `${answer.entries} entries listed` : null, answer.millis !== undefined ? `${answer.millis} ms` : null].filter(Boolean).join(' · ')
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
    const saved = await entryForm(secrets);
    if (saved) {
      toast(`Added ${saved.name}.`);
      reload();
    }
  };
  const newButton = () => h('button', { class: 'btn primary', type: 'button', 'data-testid': 'new-vfs', onclick: add }, icon('plus', 'btn-icon'), 'New entry');
  entries.sort((a, b) => a.name.localeCompare(b.name));
  const body = entries.length
    ? h('div', { class: 'table-wrap' }, h('table', { 'data-testid': 'vfs-table' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Type'), h('th', {}, 'Target'), h('th', {}, 'Host key'), h('th', {}, 'Updated'), h('th', {}, h('span', { class: 'sr-only' }, 'Actions')))),
      h('tbody', {}, entries.map((entry) => {
        const testButton = h('button', { class: 'btn small', type: 'button', 'data-testid': 'test-vfs' }, icon('plug', 'btn-icon'), 'Test');
        testButton.addEventListener('click', () => test(entry, testButton));
        return h('tr', { 'data-vfs': entry.name },
          h('td', {}, h('strong', {}, entry.name)),
          h('td', {}, h('span', { class: 'tag' }, entry.type)),
          h('td', { class: 'mono' }, summary(entry) || '—'),
          h('td', { class: 'mono small' }, entry.type === 'sftp' ? (entry.settings?.HostKeySHA256 || h('span', { class: 'muted' }, 'not pinned')) : '—'),
          h('td', {}, timeEl(entry.updatedAt)),
          h('td', { class: 'cell-actions' }, testButton,
            h('button', {
              class: 'btn small', type: 'button',
              onclick: async () => {
                if (await entryForm(secrets, entry)) {
                  toast(`Saved ${entry.name}.`);
                  reload();
                }
              },
            }, 'Edit'),
            h('button', {
              class: 'btn small danger', type: 'button', 'aria-label': `Delete ${entry.name}`,
              onclick: async () => {
                if (!await confirmDialog(`Delete ${entry.name}?`, 'Scripts that open it with GetVFS will fail until an entry of that name exists again.')) return;
                try {
                  await api.del(`/v1/vfs/${seg(entry.name)}`);
                  reload();
                } catch (e) {
                  toast(e.message, 'error');
                }
              },
            }, 'Delete')));
      }))))
    : emptyState('The VFS Library is empty', 'Define each server once — SFTP, FTPS, S3, Azure, GCS, WebDAV or a local folder — and use it by name in every script.', newButton());
  mount(ctx.main,
    pageHead('VFS Library', { subtitle: 'Named connections scripts open with GetVFS("name").', actions: entries.length ? newButton() : null }),
    h('section', { class: 'card' }, body, resultArea));
}
