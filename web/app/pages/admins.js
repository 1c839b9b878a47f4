// #/admins: the admin users of this web UI. A new password, or a deletion, ends that admin's
// sessions at once (their browsers must sign in again); the last admin cannot be deleted.

import { api, seg } from '../api.js';
import { busy, confirmDialog, dialog, errorBox, field, h, icon, mount, pageHead, timeEl, toast } from '../dom.js';

/** A dialog asking for a user name (new admins only) and a password typed twice. */
function adminForm({ username = null } = {}) {
  const creating = username === null;
  return dialog(creating ? 'New admin' : `New password for ${username}`, (close) => {
    const nameInput = h('input', { type: 'text', name: 'admin-name', required: true, autocomplete: 'off', placeholder: 'operator' });
    const password = h('input', { type: 'password', name: 'admin-password', required: true, minlength: 8, autocomplete: 'new-password' });
    const again = h('input', { type: 'password', name: 'admin-password-again', required: true, minlength: 8, autocomplete: 'new-password' });
    const message = h('div');
    const form = h('form', { class: 'form', id: 'admin-form' },
      creating ? field('User name', nameInput, 'Sign-in matches it ignoring case.') : null,
      field('Password', password, 'At least 8 characters.'),
      field('Password again', again),
      message);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      if (password.value !== again.value) {
        mount(message, errorBox('The two passwords differ.'));
        return;
      }
      const submit = document.querySelector('button[form="admin-form"]');
      await busy(submit, async () => {
        try {
          if (creating) {
            await api.post('/v1/admins', { username: nameInput.value.trim(), password: password.value });
            close(nameInput.value.trim());
          } else {
            await api.put(`/v1/admins/${seg(username)}/password`, { password: password.value });
            close(username);
          }
        } catch (err) {
          mount(message, errorBox(err.message));
        }
      });
    });
    setTimeout(() => (creating ? nameInput : password).focus(), 0);
    return {
      body: form,
      foot: [
        h('button', { class: 'btn', type: 'button', onclick: () => close() }, 'Cancel'),
        h('button', { class: 'btn primary', type: 'submit', form: 'admin-form' }, creating ? 'Create admin' : 'Set password'),
      ],
    };
  });
}

export default async function adminsPage(ctx) {
  const admins = await api.get('/v1/admins');
  if (!ctx.alive()) return;
  const me = (ctx.session?.username || '').toLowerCase();
  const reload = () => ctx.navigate('#/admins', { replace: true });
  const add = async () => {
    const created = await adminForm();
    if (created) {
      toast(`Created admin ${created}.`);
      reload();
    }
  };
  const rows = admins.map((a) => {
    const isMe = a.username.toLowerCase() === me;
    return h('tr', { 'data-admin': a.username },
      h('td', {}, a.username, isMe ? h('span', { class: 'muted' }, ' (you)') : null),
      h('td', {}, timeEl(a.createdAt)),
      h('td', { class: 'cell-actions' },
        h('button', {
          class: 'btn small', type: 'button', 'aria-label': `Set a new password for ${a.username}`,
          onclick: async () => {
            if (!await adminForm({ username: a.username })) return;
            // A new password ends that admin's sessions, this browser's too when it is ours.
            toast(isMe ? 'Password changed. Sign in with the new one.' : `Password of ${a.username} changed; their sessions have ended.`);
            reload();
          },
        }, 'New password'),
        h('button', {
          class: 'btn small danger', type: 'button', 'aria-label': `Delete admin ${a.username}`,
          disabled: admins.length === 1,
          title: admins.length === 1 ? 'The last admin cannot be deleted' : null,
          onclick: async () => {
            if (!await confirmDialog(`Delete admin ${a.username}?`, 'Their sessions end at once.')) return;
            try {
              await api.del(`/v1/admins/${seg(a.username)}`);
              toast(`Deleted admin ${a.username}.`);
              reload();
            } catch (e) {
              toast(e.message, 'error');
            }
          },
        }, 'Delete')));
  });
  mount(ctx.main,
    pageHead('Admins', {
      subtitle: 'Who may sign in here. A new password or a deletion ends that admin’s sessions.',
      actions: h('button', { class: 'btn primary', type: 'button', 'data-testid': 'new-admin', onclick: add }, icon('plus', 'btn-icon'), 'New admin'),
    }),
    h('section', { class: 'card' }, h('div', { class: 'table-wrap' }, h('table', { 'data-testid': 'admins-table' },
      h('thead', {}, h('tr', {}, h('th', {}, 'User'), h('th', {}, 'Created'), h('th', {}, h('span', { class: 'sr-only' }, 'Actions')))),
      h('tbody', {}, rows)))));
}
