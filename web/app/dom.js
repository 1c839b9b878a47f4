// Small DOM helpers. Text always goes in through textContent (never innerHTML), so data
// from the service cannot inject markup; and no style attributes (strict CSP).

/**
 * Make an element: `h('button', {class: 'btn', onclick}, 'Save')`. Attributes starting
 * with `on` become listeners; `class` may be an array; children may be nested arrays,
 * strings, numbers, nodes, or null/false (skipped).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === 'class') {
      el.className = Array.isArray(value) ? value.filter(Boolean).join(' ') : value;
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (key === 'value' || key === 'checked' || key === 'selected' || key === 'disabled' || key === 'indeterminate') {
      el[key] = value;
    } else if (value === true) {
      el.setAttribute(key, '');
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** Replace all children of `el`. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
const ICONS = {
  dashboard: ['M3 13h8V3H3zM13 21h8V11h-8zM3 21h8v-6H3zM13 3v6h8V3z'],
  jobs: ['M4 6h16M4 12h16M4 18h10'],
  scripts: ['M8 8l-4 4 4 4M16 8l4 4-4 4M14 4l-4 16'],
  vfs: ['M4 7c0-1.7 3.6-3 8-3s8 1.3 8 3-3.6 3-8 3-8-1.3-8-3z', 'M4 7v10c0 1.7 3.6 3 8 3s8-1.3 8-3V7', 'M4 12c0 1.7 3.6 3 8 3s8-1.3 8-3'],
  secrets: ['M6 11h12v10H6z', 'M8.5 11V7.5a3.5 3.5 0 0 1 7 0V11'],
  apikeys: ['M15 7a4 4 0 1 1-3.9 4.9L4 19v2h3v-2h2v-2h2l1.1-1.1A4 4 0 0 1 15 7z'],
  schedules: ['M12 7v5l3 2', 'M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18z'],
  watchers: ['M2 12s3.5-7 10-7 10 7 10 7-3.5 7-10 7S2 12 2 12z', 'M12 15a3 3 0 1 0 0-6 3 3 0 0 0 0 6z'],
  notifications: ['M6 16V11a6 6 0 0 1 12 0v5l2 2H4z', 'M10 20a2 2 0 0 0 4 0'],
  settings: ['M4 6h10M18 6h2M4 12h4M12 12h8M4 18h12M20 18h0', 'M16 4v4M10 10v4M18 16v4'],
  admins: ['M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8z', 'M4 21a8 8 0 0 1 16 0'],
  audit: ['M12 3l8 3v6c0 5-3.5 8-8 9-4.5-1-8-4-8-9V6z', 'M9 12l2 2 4-4'],
  'two-factor': ['M8 3h8a2 2 0 0 1 2 2v14a2 2 0 0 1-2 2H8a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z', 'M11 18h2'],
  menu: ['M4 6h16M4 12h16M4 18h16'],
  play: ['M7 4l13 8-13 8z'],
  stop: ['M6 6h12v12H6z'],
  plus: ['M12 5v14M5 12h14'],
  check: ['M5 13l4 4L19 7'],
  save: ['M5 4h11l3 3v13H5z', 'M8 4v5h7V4M8 20v-6h8v6'],
  signout: ['M15 4h4v16h-4M10 16l4-4-4-4M14 12H4'],
  empty: ['M3 7l9-4 9 4-9 4z', 'M3 7v10l9 4 9-4V7', 'M12 11v10'],
  plug: ['M9 7V3M15 7V3M6 7h12v4a6 6 0 0 1-12 0zM12 17v4'],
  refresh: ['M20 11a8 8 0 1 0-2.3 5.7M20 4v7h-7'],
};

/** An inline SVG icon (paths only, no inline styles). */
export function icon(name, cls = 'nav-icon') {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', cls);
  svg.setAttribute('aria-hidden', 'true');
  for (const d of ICONS[name] || []) {
    const path = document.createElementNS(SVG_NS, 'path');
    path.setAttribute('d', d);
    svg.appendChild(path);
  }
  return svg;
}

/** The brand mark (same drawing as favicon.svg). */
export function brandMark() {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', '0 0 32 32');
  svg.setAttribute('class', 'brand-mark');
  svg.setAttribute('aria-hidden', 'true');
  const rect = document.createElementNS(SVG_NS, 'rect');
  for (const [k, v] of Object.entries({ width: 32, height: 32, rx: 7, fill: '#4f46e5' })) rect.setAttribute(k, v);
  const path = document.createElementNS(SVG_NS, 'path');
  for (const [k, v] of Object.entries({ d: 'M8 20h12l-4 4M24 12H12l4-4', fill: 'none', stroke: '#fff', 'stroke-width': 2.6, 'stroke-linecap': 'round', 'stroke-linejoin': 'round' })) path.setAttribute(k, v);
  svg.append(rect, path);
  return svg;
}

/** A status badge (`queued`, `running`, `failed`, ...). */
export function badge(status, text = status) {
  return h('span', { class: ['badge', status], 'data-status': status }, h('span', { class: 'dot' }), text);
}

/** An error box; `role=alert` so screen readers announce it. */
export function errorBox(message) {
  return h('div', { class: 'alert error', role: 'alert' }, h('div', { class: 'grow' }, message));
}

/** A friendly empty state with an optional action. */
export function emptyState(title, text, action) {
  return h('div', { class: 'empty' }, icon('empty', 'empty-icon'), h('h2', {}, title), h('p', {}, text), action || null);
}

/** A loading placeholder. */
export function loading(text = 'Loading…') {
  return h('div', { class: 'loading' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), text);
}

/** A page heading with optional subtitle, breadcrumb and actions. */
export function pageHead(title, { subtitle, crumbs, actions } = {}) {
  return h('div', { class: 'page-head' },
    h('div', { class: 'titles' },
      crumbs ? h('div', { class: 'crumbs' }, crumbs) : null,
      h('h1', {}, title),
      subtitle ? h('div', { class: 'subtitle' }, subtitle) : null),
    actions ? h('div', { class: 'actions' }, actions) : null);
}

let fieldCounter = 0;
/** A labelled form field around `control` (gets an id if it has none). */
export function field(label, control, help) {
  if (!control.id) control.id = `f${++fieldCounter}`;
  const helpEl = help ? h('div', { class: 'help', id: `${control.id}-help` }, help) : null;
  if (helpEl) control.setAttribute('aria-describedby', helpEl.id);
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control, helpEl);
}

/** Show a short notice in the corner. */
export function toast(message, kind = 'ok') {
  const box = document.getElementById('toasts');
  if (!box) return;
  const el = h('div', { class: ['toast', kind] }, message);
  box.appendChild(el);
  // A burst of actions should not bury the page: keep the newest three.
  while (box.childElementCount > 3) box.firstElementChild.remove();
  setTimeout(() => el.remove(), kind === 'error' ? 7000 : 3500);
}

/** A modal dialog; resolves with the value passed to `close(value)` (undefined on Esc). */
export function dialog(title, buildBody) {
  return new Promise((resolve) => {
    let result;
    const dlg = h('dialog', { 'aria-labelledby': 'dlg-title' });
    const close = (value) => {
      result = value;
      dlg.close();
    };
    const { body, foot } = buildBody(close);
    mount(dlg,
      h('div', { class: 'dialog-head' }, h('h2', { id: 'dlg-title' }, title)),
      h('div', { class: 'dialog-body' }, body),
      h('div', { class: 'dialog-foot' }, foot));
    dlg.addEventListener('close', () => {
      dlg.remove();
      resolve(result);
    });
    document.body.appendChild(dlg);
    dlg.showModal();
  });
}

/** Ask for confirmation; resolves true when confirmed. */
export function confirmDialog(title, text, confirmLabel = 'Delete', danger = true) {
  return dialog(title, (close) => ({
    body: h('p', {}, text),
    foot: [
      h('button', { class: 'btn', type: 'button', onclick: () => close(false) }, 'Cancel'),
      h('button', { class: ['btn', danger ? 'danger solid' : 'primary'], type: 'button', onclick: () => close(true) }, confirmLabel),
    ],
  })).then(Boolean);
}

const focusKey = (el) => [el.tagName, el.getAttribute('href'), el.dataset.stat, el.getAttribute('aria-label'), el.textContent.trim()].join('|');

/**
 * Redraw part of `container` with `redraw()` without losing keyboard focus: a page that
 * refreshes itself puts focus back on the same link or button (same target and words).
 */
export function keepFocus(container, redraw) {
  const had = container.contains(document.activeElement) && document.activeElement !== container ? focusKey(document.activeElement) : null;
  redraw();
  if (!had || container.contains(document.activeElement)) return;
  const again = [...container.querySelectorAll('a[href], button, [tabindex]')].find((el) => focusKey(el) === had);
  if (again) again.focus({ preventScroll: true });
}

/** Run `work` with `button` disabled and showing a spinner. */
export async function busy(button, work) {
  const children = [...button.childNodes];
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  button.prepend(h('span', { class: 'spinner', 'aria-hidden': 'true' }));
  try {
    return await work();
  } finally {
    button.replaceChildren(...children);
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}

// ---- formatting ----

/**
 * A time as date and time with its zone label ("5 Dec 2026, 18:00:00 UTC"), or '—'. In the
 * browser's zone, or in `timeZone` (an IANA name) when given; a bad zone falls back to the
 * browser's.
 */
export function fmtTime(value, { timeZone, seconds = true } = {}) {
  if (!value) return '—';
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  const opts = { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', timeZoneName: 'short' };
  if (seconds) opts.second = '2-digit';
  try {
    return d.toLocaleString(undefined, timeZone ? { ...opts, timeZone } : opts);
  } catch {
    return d.toLocaleString(undefined, opts);
  }
}

/** The browser's time zone as a short label ("UTC", "CET"), for times shown without one. */
export function zoneLabel(at = new Date()) {
  const part = new Intl.DateTimeFormat(undefined, { timeZoneName: 'short' }).formatToParts(at).find((p) => p.type === 'timeZoneName');
  return part ? part.value : Intl.DateTimeFormat().resolvedOptions().timeZone;
}

/** "1 entry" / "3 entries": `n` with the singular or plural noun. */
export function plural(n, one, many = `${one}s`) {
  return `${n} ${Number(n) === 1 ? one : many}`;
}

/**
 * A path for display: `file:` URLs as the plain path they name (`file:////srv/in/a.csv`
 * shows as `/srv/in/a.csv`, `file:///C:/x` as `C:/x`); anything else unchanged.
 */
export function displayPath(value) {
  if (typeof value !== 'string' || !/^file:/i.test(value)) return value;
  const rest = value.replace(/^file:\/*/i, '');
  return /^[A-Za-z]:/.test(rest) ? rest : `/${rest}`;
}

/** A time as "3 min ago" / "in 2 h". */
export function relTime(value) {
  if (!value) return '—';
  const t = new Date(value).getTime();
  if (Number.isNaN(t)) return String(value);
  const diff = (t - Date.now()) / 1000;
  const abs = Math.abs(diff);
  const units = [[60, 's', 1], [3600, 'min', 60], [86400, 'h', 3600], [Infinity, 'd', 86400]];
  for (const [limit, unit, div] of units) {
    if (abs < limit) {
      const n = Math.max(1, Math.round(abs / div));
      if (abs < 5) return 'just now';
      return diff < 0 ? `${n} ${unit} ago` : `in ${n} ${unit}`;
    }
  }
  return fmtTime(value);
}

/** A `<time>` element showing the relative time, with the exact one as tooltip. */
export function timeEl(value) {
  if (!value) return h('span', { class: 'muted' }, '—');
  return h('time', { datetime: value, title: fmtTime(value) }, relTime(value));
}

/** How long from `start` to `end` (or now), as "1m 05s". */
export function duration(start, end) {
  if (!start) return '—';
  const ms = (end ? new Date(end) : new Date()) - new Date(start);
  if (!(ms >= 0)) return '—';
  if (ms < 1000) return `${ms} ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

/** Bytes as "1.2 MiB". */
export function bytes(n) {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = Number(n);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** The last 8 characters of an id (UUIDv7 ids share their time-based start), for tables. */
export const shortId = (id) => (id ? String(id).slice(-8) : '—');
