// #/schedules: cron schedules (with a time zone each) that start stored scripts, with
// their next fire times, overlap and misfire policies.

import { api, ApiError, seg } from '../api.js';
import { badge, busy, confirmDialog, dialog, emptyState, errorBox, field, fmtTime, h, icon, mount, pageHead, timeEl, toast } from '../dom.js';

/** The next fire time of a schedule loaded with [`withNextFires`], if any. */
export function nextFireOf(s) {
  return s.nextFires?.[0] || null;
}

/** The schedules with `nextFires` (UTC times) from `GET /v1/schedules/{name}/next`. */
export async function withNextFires(schedules, n = 3) {
  return Promise.all(schedules.map(async (s) => {
    if (!s.enabled) return { ...s, nextFires: [] };
    try {
      const next = await api.get(`/v1/schedules/${seg(s.name)}/next?n=${n}`);
      return { ...s, nextFires: next.utc || [] };
    } catch {
      return { ...s, nextFires: [] };
    }
  }));
}

/**
 * A fire time as the schedule's own zone shows it ("6 Dec 2026, 02:30 CET"), with the
 * browser's time in the tooltip.
 */
export function fireTime(at, timeZone, attrs = {}) {
  const zone = timeZone || 'UTC';
  return h('span', { ...attrs, 'data-testid': 'fire', 'data-zone': zone, title: `${zone}; your time: ${fmtTime(at)}` },
    fmtTime(at, { timeZone: zone, seconds: false }));
}

/** The script a schedule or watcher starts. */
export const scriptOf = (s) => s.scriptName ?? '';

/** A "this API is missing" state for a 404 from the service. */
export function missingApi(what, path) {
  return emptyState(`${what} are not available`, `This service does not answer ${path} yet. Update aft and reload.`);
}

/**
 * The schedule dialog: empty to create one, or prefilled from `existing` to edit it (the
 * name stays; everything else can change, saved with `PUT /v1/schedules/{name}`).
 */
function scheduleForm(scripts, existing = null) {
  return dialog(existing ? `Edit schedule ${existing.name}` : 'New schedule', (close) => {
    const zone = existing?.timeZone || Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
    const name = h('input', { type: 'text', name: 'schedule-name', required: true, autocomplete: 'off', placeholder: 'nightly', value: existing?.name ?? '', readonly: !!existing });
    // An edited schedule's script may have been deleted since: keep it selectable.
    const scriptNames = scripts.map((s) => s.name);
    if (existing && !scriptNames.includes(scriptOf(existing))) scriptNames.unshift(scriptOf(existing));
    const script = h('select', { name: 'schedule-script', required: true }, scriptNames.map((n) => h('option', { value: n, selected: existing ? n === scriptOf(existing) : false }, n)));
    const cron = h('input', { type: 'text', name: 'cron', required: true, value: existing?.cron ?? '0 2 * * *', class: 'mono', autocomplete: 'off' });
    const tz = h('input', { type: 'text', name: 'timezone', value: zone, autocomplete: 'off' });
    const params = h('textarea', { class: 'plain', name: 'params', rows: '3' }, existing ? JSON.stringify(existing.params ?? {}, null, 2) : '{}');
    const overlap = h('select', { name: 'overlap' }, ['skip', 'queue', 'allow'].map((o) => h('option', { value: o, selected: existing?.overlap === o }, o)));
    const misfire = h('select', { name: 'misfire' }, ['skip', 'run-once'].map((o) => h('option', { value: o, selected: existing?.misfire === o }, o)));
    const message = h('div');
    const form = h('form', { class: 'form', id: 'schedule-form' },
      h('div', { class: 'form-row' }, field('Name', name), field('Script', script)),
      h('div', { class: 'form-row' },
        field('Cron expression', cron, '5 fields (min hour day month weekday), 6 with seconds first, or @daily, @hourly…'),
        field('Time zone', tz, 'IANA name, e.g. Europe/Rome or UTC.')),
      field('Parameters (JSON object)', params),
      h('div', { class: 'form-row' },
        field('If still running', overlap, 'skip: no new run; queue: run after; allow: run at once.'),
        field('Missed while down', misfire, 'run-once: one catch-up run at start; skip: none.')),
      message);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      let parsed;
      try {
        parsed = params.value.trim() ? JSON.parse(params.value) : {};
      } catch (err) {
        mount(message, errorBox(`Parameters are not valid JSON: ${err.message}`));
        return;
      }
      const body = { script: script.value, cron: cron.value.trim(), timeZone: tz.value.trim(), params: parsed, overlap: overlap.value, misfire: misfire.value };
      try {
        close(existing
          ? await api.put(`/v1/schedules/${seg(existing.name)}`, body)
          : await api.post('/v1/schedules', { name: name.value.trim(), ...body }));
      } catch (err) {
        mount(message, errorBox(err.message));
      }
    });
    setTimeout(() => (existing ? cron : name).focus(), 0);
    return {
      body: form,
      foot: [
        h('button', { class: 'btn', type: 'button', onclick: () => close() }, 'Cancel'),
        h('button', { class: 'btn primary', type: 'submit', form: 'schedule-form', disabled: !scriptNames.length }, existing ? 'Save changes' : 'Add schedule'),
      ],
    };
  });
}

export default async function schedulesPage(ctx) {
  let schedules;
  try {
    schedules = await api.get('/v1/schedules');
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) {
      mount(ctx.main, pageHead('Schedules'), h('section', { class: 'card' }, missingApi('Schedules', '/v1/schedules')));
      return;
    }
    throw e;
  }
  const [scripts, withNext] = await Promise.all([api.get('/v1/scripts').catch(() => []), withNextFires(schedules)]);
  schedules = withNext.sort((a, b) => a.name.localeCompare(b.name));
  if (!ctx.alive()) return;
  const reload = () => ctx.navigate('#/schedules', { replace: true });
  const add = async () => {
    if (await scheduleForm(scripts)) {
      toast('Schedule added.');
      reload();
    }
  };
  const edit = async (s) => {
    if (await scheduleForm(scripts, s)) {
      toast(`${s.name} saved.`);
      reload();
    }
  };
  const newButton = () => h('button', { class: 'btn primary', type: 'button', onclick: add, disabled: !scripts.length }, icon('plus', 'btn-icon'), 'New schedule');
  const toggle = (s, button) => busy(button, async () => {
    try {
      await api.put(`/v1/schedules/${seg(s.name)}/enabled`, { enabled: !s.enabled });
      toast(`${s.name} ${s.enabled ? 'disabled' : 'enabled'}.`);
      reload();
    } catch (e) {
      toast(e.message, 'error');
    }
  });
  const body = schedules.length
    ? h('div', { class: 'table-wrap' }, h('table', {},
      h('thead', {}, h('tr', {}, ['Name', 'Script', 'When', 'Next fires', 'Policies', 'State', ''].map((t) => h('th', {}, t || h('span', { class: 'sr-only' }, 'Actions'))))),
      h('tbody', {}, schedules.map((s) => {
        const toggleButton = h('button', { class: 'btn small', type: 'button' }, s.enabled ? 'Disable' : 'Enable');
        toggleButton.addEventListener('click', () => toggle(s, toggleButton));
        return h('tr', { 'data-schedule': s.name },
          h('td', {}, h('strong', {}, s.name)),
          h('td', {}, h('a', { href: `#/scripts/${encodeURIComponent(scriptOf(s))}` }, scriptOf(s)),
            h('a', { class: 'sub', href: `#/jobs?script=${encodeURIComponent(scriptOf(s))}` }, 'jobs')),
          h('td', {}, h('span', { class: 'mono' }, s.cron), h('span', { class: 'sub' }, s.timeZone || 'UTC')),
          h('td', { class: 'nowrap', 'data-testid': 'next-fires' }, s.nextFires.length
            ? [s.nextFires.map((t, i) => (i === 0 ? h('div', {}, timeEl(t), ' · ', fireTime(t, s.timeZone)) : fireTime(t, s.timeZone, { class: 'sub' }))),
              h('span', { class: 'sub' }, `${s.timeZone || 'UTC'} time`)]
            : h('span', { class: 'muted' }, '—')),
          h('td', { class: 'small' }, `overlap: ${s.overlap || '—'}`, h('span', { class: 'sub' }, `misfire: ${s.misfire || '—'}`)),
          h('td', {}, badge(s.enabled ? 'enabled' : 'disabled')),
          h('td', { class: 'cell-actions' },
            h('button', { class: 'btn small', type: 'button', 'aria-label': `Edit schedule ${s.name}`, onclick: () => edit(s) }, 'Edit'),
            toggleButton,
            h('button', {
              class: 'btn small danger', type: 'button', 'aria-label': `Delete schedule ${s.name}`,
              onclick: async () => {
                if (!await confirmDialog(`Delete schedule ${s.name}?`, 'It stops firing. Jobs it started stay in the history.')) return;
                try {
                  await api.del(`/v1/schedules/${seg(s.name)}`);
                  reload();
                } catch (e) {
                  toast(e.message, 'error');
                }
              },
            }, 'Delete')));
      }))))
    : emptyState('No schedules', scripts.length ? 'Run a script on a clock: every night, every hour, every weekday at 7:30 in your time zone.' : 'Write a script first; then schedule it here.',
      scripts.length ? newButton() : h('a', { class: 'btn', href: '#/scripts' }, 'Go to scripts'));
  mount(ctx.main,
    pageHead('Schedules', { subtitle: 'Cron schedules that start scripts, each in its own time zone.', actions: schedules.length ? newButton() : null }),
    h('section', { class: 'card' }, body));
}
