// #/secrets: named, encrypted values for scripts (GetSecret) and VFS entries. Values are
// write-only: the service never returns them, and this page never shows what was typed
// once it is saved.

import { api, seg } from '../api.js';
import { busy, confirmDialog, dialog, emptyState, errorBox, field, h, icon, mount, pageHead, timeEl, toast } from '../dom.js';
import { deleteChecked, usedByCell } from '../usedby.js';

function secretForm({ name = '', replace = false } = {}) {
  return dialog(replace ? `Replace the value of ${name}` : 'New secret', (close) => {
    const nameInput = h('input', { type: 'text', name: 'secret-name', value: name, required: true, autocomplete: 'off', readonly: replace, placeholder: 'sftp-password' });
    const valueInput = h('input', { type: 'password', name: 'secret-value', required: true, autocomplete: 'new-password', 'data-testid': 'secret-value' });
    const message = h('div');
    const form = h('form', { class: 'form', id: 'secret-form' },
      field('Name', nameInput, 'Case-sensitive. Scripts read it with GetSecret("name"); VFS entries refer to it by name.'),
      field('Value', valueInput, 'Stored encrypted. It is never shown again, here or anywhere.'),
      message);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const submit = document.querySelector('button[form="secret-form"]');
      await busy(submit, async () => {
        try {
          await api.put(`/v1/secrets/${seg(nameInput.value.trim())}`, { value: valueInput.value });
          valueInput.value = '';
          close(nameInput.value.trim());
        } catch (err) {
          mount(message, errorBox(err.message));
        }
      });
    });
    setTimeout(() => (replace ? valueInput : nameInput).focus(), 0);
    return {
      body: form,
      foot: [
        h('button', { class: 'btn', type: 'button', onclick: () => close() }, 'Cancel'),
        h('button', { class: 'btn primary', type: 'submit', form: 'secret-form' }, replace ? 'Replace value' : 'Save secret'),
      ],
    };
  });
}

export default async function secretsPage(ctx) {
  const secrets = await api.get('/v1/secrets');
  if (!ctx.alive()) return;
  const reload = () => ctx.navigate('#/secrets', { replace: true });
  const add = async () => {
    const saved = await secretForm();
    if (saved) {
      toast(`Saved secret ${saved}.`);
      reload();
    }
  };
  const newButton = () => h('button', { class: 'btn primary', type: 'button', 'data-testid': 'new-secret', onclick: add }, icon('plus', 'btn-icon'), 'New secret');
  secrets.sort((a, b) => a.name.localeCompare(b.name));
  // What names each secret (VFS entries, settings, scripts), filled in as the answers come.
  const usedCells = new Map(secrets.map((s) => [s.name, h('td', { 'data-testid': 'secret-used-by' }, usedByCell(null))]));
  secrets.forEach((s) => {
    api.get(`/v1/secrets/${seg(s.name)}/used-by`)
      .then((users) => mount(usedCells.get(s.name), usedByCell(users)))
      .catch(() => mount(usedCells.get(s.name), h('span', { class: 'muted' }, '?')));
  });
  const body = secrets.length
    ? h('div', { class: 'table-wrap' }, h('table', { 'data-testid': 'secrets-table' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Value'), h('th', {}, 'Used by'), h('th', {}, 'Updated'), h('th', {}, h('span', { class: 'sr-only' }, 'Actions')))),
      h('tbody', {}, secrets.map((s) => h('tr', { 'data-secret': s.name },
        h('td', { class: 'mono' }, s.name),
        h('td', { class: 'muted' }, '•••••••• (write-only)'),
        usedCells.get(s.name),
        h('td', {}, timeEl(s.updatedAt)),
        h('td', { class: 'cell-actions' },
          h('button', {
            class: 'btn small', type: 'button',
            onclick: async () => {
              if (await secretForm({ name: s.name, replace: true })) {
                toast(`Replaced the value of ${s.name}.`);
                reload();
              }
            },
          }, 'Replace value'),
          h('button', {
            class: 'btn small danger', type: 'button', 'aria-label': `Delete secret ${s.name}`,
            onclick: async () => {
              if (!await confirmDialog(`Delete secret ${s.name}?`, 'A secret that VFS entries, settings or scripts use is not deleted without a second confirmation.')) return;
              if (await deleteChecked(`/v1/secrets/${seg(s.name)}`, `secret ${s.name}`)) reload();
            },
          }, 'Delete')))))))
    : emptyState('No secrets yet', 'Keep passwords and keys here, encrypted, instead of in scripts or VFS settings.', newButton());
  mount(ctx.main,
    pageHead('Secrets', { subtitle: 'Encrypted values for scripts and VFS entries. Values are write-only.', actions: secrets.length ? newButton() : null }),
    h('section', { class: 'card' }, body));
}
