// What uses a script, secret or VFS entry: links to the users, and a delete that shows
// them when the service refuses (409 with `usedBy`) and offers "Delete anyway", which
// deletes with ?force=true and disables the schedules and watchers that used it.

import { api } from './api.js';
import { dialog, h, toast } from './dom.js';

const PAGES = {
  schedule: () => '#/schedules',
  watcher: () => '#/watchers',
  script: (name) => `#/scripts/${encodeURIComponent(name)}`,
  vfs: () => '#/vfs',
  setting: () => '#/settings',
};

/** One user as a link to its page, with its kind and (for schedules/watchers) state. */
export function userLink(u) {
  const href = (PAGES[u.kind] || (() => '#/'))(u.name);
  const state = u.enabled === false ? ' (disabled)' : '';
  return h('span', { class: 'used-by-item', 'data-used-by': `${u.kind}/${u.name}` },
    h('span', { class: 'muted' }, `${u.kind} `),
    h('a', { href, onclick: (e) => e.stopPropagation() }, u.name),
    h('span', { class: 'muted small' }, ` — ${u.how}${state}`));
}

/** The users as an inline list of links, or "Nothing uses it." */
export function usedByList(users, emptyText = 'Nothing uses it.') {
  if (!users || !users.length) return h('span', { class: 'muted', 'data-testid': 'used-by-none' }, emptyText);
  return h('ul', { class: 'used-by', 'data-testid': 'used-by' }, users.map((u) => h('li', {}, userLink(u))));
}

/** "Used by N" as a short cell for a list, each user a link. */
export function usedByCell(users) {
  if (!users) return h('span', { class: 'muted' }, '…');
  if (!users.length) return h('span', { class: 'muted' }, 'nothing');
  return h('span', { class: 'used-by-cell' }, users.flatMap((u, i) => [i ? ', ' : null, userLink(u)]));
}

/**
 * Delete `path` (an API path) named `label`. On 409 with `usedBy`, show the users and ask
 * whether to delete anyway. Resolves true when deleted.
 */
export async function deleteChecked(path, label) {
  try {
    await api.del(path);
    toast(`Deleted ${label}.`);
    return true;
  } catch (e) {
    if (e.status !== 409 || !e.body || !Array.isArray(e.body.usedBy)) {
      toast(e.message, 'error');
      return false;
    }
    const users = e.body.usedBy;
    const anyway = await dialog(`${label} is in use`, (close) => ({
      body: h('div', { 'data-testid': 'in-use-dialog' },
        h('p', {}, `${label} is used by:`),
        usedByList(users),
        h('p', { class: 'muted small' }, 'Delete anyway deletes it and disables the schedules and watchers above; the others stay and fail until changed.')),
      foot: [
        h('button', { class: 'btn', type: 'button', onclick: () => close(false) }, 'Cancel'),
        h('button', { class: 'btn danger solid', type: 'button', 'data-testid': 'delete-anyway', onclick: () => close(true) }, 'Delete anyway'),
      ],
    }));
    if (!anyway) return false;
    try {
      const sep = path.includes('?') ? '&' : '?';
      const done = await api.del(`${path}${sep}force=true`);
      const disabled = done && done.disabled && done.disabled.length ? ` Disabled ${done.disabled.join(', ')}.` : '';
      toast(`Deleted ${label}.${disabled}`);
      return true;
    } catch (e2) {
      toast(e2.message, 'error');
      return false;
    }
  }
}
