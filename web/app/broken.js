// Schedules and watchers whose script is gone: they stay in the store (a forced delete
// disables them), but every slot or run fails until they name a script that exists.

import { api } from './api.js';
import { badge, h } from './dom.js';

const key = (name) => String(name || '').toLowerCase();

/** Whether `scriptName` is missing from `scripts` (names match case-insensitively). */
export function scriptMissing(scriptName, scripts) {
  return !scripts.some((s) => key(s.name) === key(scriptName));
}

/** A "broken" badge for a schedule or watcher whose script is gone, else null. */
export function brokenBadge(scriptName, scripts) {
  if (!scripts || !scriptMissing(scriptName, scripts)) return null;
  return h('span', { 'data-testid': 'broken', title: `script ${scriptName} no longer exists` },
    ' ', badge('failed', 'broken: script missing'));
}

/** Every schedule and watcher whose script is gone, as `{ kind, name, scriptName, enabled }`. */
export async function brokenUsers() {
  const [scripts, schedules, watchers] = await Promise.all([
    api.get('/v1/scripts'), api.get('/v1/schedules'), api.get('/v1/watchers'),
  ]);
  return [
    ...schedules.map((s) => ({ kind: 'schedule', ...s })),
    ...watchers.map((w) => ({ kind: 'watcher', ...w })),
  ].filter((u) => scriptMissing(u.scriptName, scripts))
    .map((u) => ({ kind: u.kind, name: u.name, scriptName: u.scriptName, enabled: u.enabled }));
}

/** The dashboard's list of broken schedules and watchers (empty: nothing). */
export function brokenList(items) {
  if (!items.length) return null;
  return h('div', { class: 'alert warn', role: 'status', 'data-testid': 'broken-list' },
    h('div', { class: 'grow' },
      h('strong', {}, `${items.length} ${items.length === 1 ? 'schedule or watcher runs' : 'schedules or watchers run'} a script that no longer exists:`),
      h('ul', {}, items.map((u) => h('li', { 'data-broken': `${u.kind}/${u.name}` },
        h('a', { href: u.kind === 'schedule' ? `#/schedules/${encodeURIComponent(u.name)}` : '#/watchers' }, `${u.kind} ${u.name}`),
        ` runs ${u.scriptName}`, u.enabled ? '' : ' (disabled)')))));
}
