// #/schedules: cron schedules (with a time zone each) that start stored scripts, with
// their next fire times, overlap and misfire policies, last result and a Run now button.
// #/schedules/NAME: one schedule and its slot history (fired, skipped, missed, failed),
// each fired slot linked to its job; it refreshes itself.

import { api, ApiError, seg } from '../api.js';
import { brokenBadge } from '../broken.js';
import { badge, busy, confirmDialog, dialog, emptyState, errorBox, field, fmtTime, h, icon, keepFocus, mount, pageHead, shortId, timeEl, toast } from '../dom.js';

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
export function fireTime(at, timeZone, attrs = {}, { seconds = false } = {}) {
  const zone = timeZone || 'UTC';
  return h('span', { ...attrs, 'data-testid': 'fire', 'data-zone': zone, title: `${zone}; your time: ${fmtTime(at)}` },
    fmtTime(at, { timeZone: zone, seconds }));
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

/** The newest decided slot of each schedule (`GET /v1/schedules/{name}/slots?limit=1`). */
async function withLastSlot(schedules) {
  return Promise.all(schedules.map(async (s) => {
    try {
      const [last] = await api.get(`/v1/schedules/${seg(s.name)}/slots?limit=1`);
      return { ...s, lastResult: last || null };
    } catch {
      return { ...s, lastResult: null };
    }
  }));
}

/**
 * What a slot came to: the slot's own status, and for a fired one its job's status with a
 * link to the job ("fired · succeeded").
 */
function slotResult(slot) {
  if (!slot) return h('span', { class: 'muted' }, 'not fired yet');
  const parts = [badge(slot.status)];
  if (slot.jobId) {
    parts.push(' ', h('a', { href: `#/jobs/${encodeURIComponent(slot.jobId)}`, 'data-testid': 'slot-job', title: `job ${slot.jobId}` },
      slot.jobStatus ? badge(slot.jobStatus) : `job ${shortId(slot.jobId)}`));
  }
  return h('span', { class: 'slot-result', 'data-testid': 'last-result' }, parts);
}

/** Queue a job of the schedule's script with its parameters now, as its next slot would. */
async function runNow(s, button, ctx) {
  await busy(button, async () => {
    try {
      const { jobId } = await api.post('/v1/jobs', { scriptName: scriptOf(s), params: s.params || {} });
      toast(`${scriptOf(s)} queued.`);
      ctx.navigate(`#/jobs/${encodeURIComponent(jobId)}`);
    } catch (e) {
      toast(e.message, 'error');
    }
  });
}

export default async function schedulesPage(ctx) {
  if (ctx.params.name) return schedulePage(ctx);
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
  const [scripts, withNext] = await Promise.all([api.get('/v1/scripts').catch(() => []), withNextFires(await withLastSlot(schedules))]);
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
      h('thead', {}, h('tr', {}, ['Name', 'Script', 'When', 'Next fires', 'Last result', 'Policies', 'State', ''].map((t) => h('th', {}, t || h('span', { class: 'sr-only' }, 'Actions'))))),
      h('tbody', {}, schedules.map((s) => {
        const toggleButton = h('button', { class: 'btn small', type: 'button' }, s.enabled ? 'Disable' : 'Enable');
        toggleButton.addEventListener('click', () => toggle(s, toggleButton));
        const runButton = h('button', { class: 'btn small', type: 'button', 'data-testid': 'run-schedule', 'aria-label': `Run now: schedule ${s.name}` }, icon('play', 'btn-icon'), 'Run now');
        runButton.addEventListener('click', () => runNow(s, runButton, ctx));
        return h('tr', { 'data-schedule': s.name },
          h('td', {}, h('a', { href: `#/schedules/${encodeURIComponent(s.name)}`, 'data-testid': 'schedule-link' }, h('strong', {}, s.name)),
            h('a', { class: 'sub', href: `#/schedules/${encodeURIComponent(s.name)}` }, 'history')),
          h('td', {}, h('a', { href: `#/scripts/${encodeURIComponent(scriptOf(s))}` }, scriptOf(s)), brokenBadge(scriptOf(s), scripts),
            h('a', { class: 'sub', href: `#/jobs?script=${encodeURIComponent(scriptOf(s))}` }, 'jobs')),
          h('td', {}, h('span', { class: 'mono' }, s.cron), h('span', { class: 'sub' }, s.timeZone || 'UTC')),
          h('td', { class: 'nowrap', 'data-testid': 'next-fires' }, s.nextFires.length
            ? [s.nextFires.map((t, i) => (i === 0 ? h('div', {}, timeEl(t), ' · ', fireTime(t, s.timeZone)) : fireTime(t, s.timeZone, { class: 'sub' }))),
              h('span', { class: 'sub' }, `${s.timeZone || 'UTC'} time`)]
            : h('span', { class: 'muted' }, '—')),
          h('td', { class: 'nowrap' }, slotResult(s.lastResult), s.lastResult ? h('span', { class: 'sub' }, timeEl(s.lastResult.slotTime)) : null),
          h('td', { class: 'small' }, `overlap: ${s.overlap || '—'}`, h('span', { class: 'sub' }, `misfire: ${s.misfire || '—'}`)),
          h('td', {}, badge(s.enabled ? 'enabled' : 'disabled')),
          h('td', { class: 'cell-actions' },
            runButton,
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

/** #/schedules/NAME: the schedule, its next fires and its slot history, refreshed every few seconds. */
async function schedulePage(ctx) {
  const path = `/v1/schedules/${seg(ctx.params.name)}`;
  const load = async () => {
    const [schedule, slots] = await Promise.all([api.get(path), api.get(`${path}/slots?limit=100`)]);
    const [withNext] = await withNextFires([schedule]);
    return { schedule: withNext, slots };
  };
  let { schedule, slots } = await load();
  // null when they cannot be listed (then nothing is said about the script being gone).
  const scripts = await api.get('/v1/scripts').catch(() => null);
  if (!ctx.alive()) return;
  let timer = null;
  ctx.onCleanup(() => clearTimeout(timer));
  const reload = () => ctx.navigate(`#/schedules/${encodeURIComponent(schedule.name)}`, { replace: true });

  const slotRows = () => slots.map((slot) => h('tr', { 'data-slot': slot.slotTime, 'data-status': slot.status },
    h('td', { class: 'nowrap' }, fireTime(slot.slotTime, schedule.timeZone, {}, { seconds: true })),
    h('td', {}, badge(slot.status), slot.detail ? h('span', { class: 'sub', 'data-testid': 'slot-detail' }, slot.detail) : null),
    h('td', { class: 'nowrap' }, slot.jobId
      ? h('a', { href: `#/jobs/${encodeURIComponent(slot.jobId)}`, 'data-testid': 'slot-job', title: `job ${slot.jobId}` },
        slot.jobStatus ? badge(slot.jobStatus) : null, ' ', h('span', { class: 'mono' }, shortId(slot.jobId)))
      : h('span', { class: 'muted' }, '—')),
    h('td', { class: 'nowrap hide-sm' }, timeEl(slot.decidedAt))));
  const counts = () => ['fired', 'skipped', 'missed', 'failed'].map((st) => `${slots.filter((x) => x.status === st).length} ${st}`).join(' · ');

  const history = h('section', { class: 'card', 'data-testid': 'slot-history' });
  const lastResultDd = h('dd', {}, slotResult(slots[0]));
  const drawHistory = () => mount(history,
    h('div', { class: 'card-head' }, h('h2', {}, 'Slot history'), h('span', { class: 'muted small', 'data-testid': 'slot-counts' }, counts())),
    slots.length
      ? h('div', { class: 'table-wrap' }, h('table', { 'data-testid': 'slots-table' },
        h('caption', { class: 'sr-only' }, `Slots of schedule ${schedule.name}, newest first`),
        h('thead', {}, h('tr', {}, [`Slot (${schedule.timeZone || 'UTC'})`, 'Outcome', 'Job', 'Decided'].map((t, i) => h('th', { scope: 'col', class: i > 2 ? 'hide-sm' : null }, t)))),
        h('tbody', {}, slotRows())))
      : emptyState('No slots yet', schedule.enabled ? 'Its first slot is decided when it comes due.' : 'It is disabled: no slot comes due.'));

  const runButton = h('button', { class: 'btn', type: 'button', 'data-testid': 'run-schedule' }, icon('play', 'btn-icon'), 'Run now');
  runButton.addEventListener('click', () => runNow(schedule, runButton, ctx));
  const toggleButton = h('button', { class: 'btn', type: 'button' }, schedule.enabled ? 'Disable' : 'Enable');
  toggleButton.addEventListener('click', () => busy(toggleButton, async () => {
    try {
      await api.put(`${path}/enabled`, { enabled: !schedule.enabled });
      toast(`${schedule.name} ${schedule.enabled ? 'disabled' : 'enabled'}.`);
      reload();
    } catch (e) {
      toast(e.message, 'error');
    }
  }));
  const editButton = h('button', {
    class: 'btn', type: 'button',
    onclick: async () => {
      if (await scheduleForm(scripts || [], schedule)) {
        toast(`${schedule.name} saved.`);
        reload();
      }
    },
  }, 'Edit');
  const scriptGone = scripts !== null && !scripts.some((x) => x.name.toLowerCase() === scriptOf(schedule).toLowerCase());
  mount(ctx.main,
    pageHead(`Schedule ${schedule.name}`, {
      crumbs: [h('a', { href: '#/schedules' }, 'Schedules'), ' / '],
      subtitle: [h('span', { class: 'mono' }, schedule.cron), ` in ${schedule.timeZone || 'UTC'}`],
      actions: [runButton, editButton, toggleButton],
    }),
    scriptGone ? h('div', { class: 'alert warn', role: 'status' }, h('div', { class: 'grow' }, `Its script ${scriptOf(schedule)} no longer exists: its slots fail until it is edited to start another.`)) : null,
    h('section', { class: 'card' }, h('div', { class: 'card-body' }, h('dl', { class: 'meta' },
      h('div', {}, h('dt', {}, 'Script'), h('dd', {}, h('a', { href: `#/scripts/${encodeURIComponent(scriptOf(schedule))}` }, scriptOf(schedule)))),
      h('div', {}, h('dt', {}, 'State'), h('dd', {}, badge(schedule.enabled ? 'enabled' : 'disabled'))),
      h('div', {}, h('dt', {}, 'Policies'), h('dd', {}, `overlap: ${schedule.overlap}; misfire: ${schedule.misfire}`)),
      h('div', {}, h('dt', {}, 'Last result'), lastResultDd),
      h('div', { 'data-testid': 'next-fires' }, h('dt', {}, `Next fires (${schedule.timeZone || 'UTC'})`),
        h('dd', {}, schedule.nextFires.length ? schedule.nextFires.map((t) => h('div', {}, fireTime(t, schedule.timeZone))) : '—')),
      h('div', {}, h('dt', {}, 'Parameters'), h('dd', { class: 'mono small' }, Object.keys(schedule.params || {}).length ? JSON.stringify(schedule.params) : '—'))))),
    history);
  drawHistory();

  const refresh = async () => {
    try {
      const next = await load();
      if (!ctx.alive()) return;
      if (JSON.stringify(next.slots) !== JSON.stringify(slots)) {
        ({ slots } = next);
        schedule = { ...schedule, nextFires: next.schedule.nextFires };
        keepFocus(history, drawHistory);
        mount(lastResultDd, slotResult(slots[0]));
      }
    } catch { /* the next round tries again; a deleted schedule shows on navigation */ }
    if (ctx.alive()) timer = setTimeout(refresh, document.hidden ? 15000 : 4000);
  };
  timer = setTimeout(refresh, 4000);
}
