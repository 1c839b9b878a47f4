// The aft web UI: first-admin setup, sign-in, then a shell with a sidebar and one page
// module per route (`#/jobs`, `#/scripts/NAME`, ...). Plain ES modules, no build step.

import { api, ApiError, onUnauthorized, setCsrfToken } from './api.js';
import { brandMark, errorBox, field, h, icon, loading, mount, toast } from './dom.js';

const ROUTES = [
  { pattern: /^$/, page: 'dashboard', nav: 'dashboard' },
  { pattern: /^jobs$/, page: 'jobs', nav: 'jobs' },
  { pattern: /^jobs\/([^/]+)$/, page: 'job', nav: 'jobs', keys: ['id'] },
  { pattern: /^scripts$/, page: 'scripts', nav: 'scripts' },
  { pattern: /^scripts\/([^/]+)$/, page: 'script', nav: 'scripts', keys: ['name'] },
  { pattern: /^vfs$/, page: 'vfs', nav: 'vfs' },
  { pattern: /^secrets$/, page: 'secrets', nav: 'secrets' },
  { pattern: /^apikeys$/, page: 'apikeys', nav: 'apikeys' },
  { pattern: /^schedules$/, page: 'schedules', nav: 'schedules' },
  { pattern: /^schedules\/([^/]+)$/, page: 'schedules', nav: 'schedules', keys: ['name'] },
  { pattern: /^watchers$/, page: 'watchers', nav: 'watchers' },
  { pattern: /^notifications$/, page: 'notifications', nav: 'notifications' },
  { pattern: /^settings$/, page: 'settings', nav: 'settings' },
  { pattern: /^admins$/, page: 'admins', nav: 'admins' },
  { pattern: /^audit$/, page: 'audit', nav: 'audit' },
  { pattern: /^two-factor$/, page: 'two-factor', nav: 'two-factor' },
];

const NAV = [
  { section: 'Operate' },
  { id: 'dashboard', href: '#/', label: 'Dashboard' },
  { id: 'jobs', href: '#/jobs', label: 'Jobs' },
  { id: 'scripts', href: '#/scripts', label: 'Scripts' },
  { section: 'Automate' },
  { id: 'schedules', href: '#/schedules', label: 'Schedules' },
  { id: 'watchers', href: '#/watchers', label: 'Watchers' },
  { id: 'notifications', href: '#/notifications', label: 'Notifications' },
  { section: 'Connect' },
  { id: 'vfs', href: '#/vfs', label: 'VFS Library' },
  { id: 'secrets', href: '#/secrets', label: 'Secrets', role: 'admin' },
  { id: 'apikeys', href: '#/apikeys', label: 'API keys', role: 'admin' },
  { section: 'Service' },
  { id: 'settings', href: '#/settings', label: 'Settings', role: 'admin' },
  { id: 'admins', href: '#/admins', label: 'Admins', role: 'admin' },
  { id: 'audit', href: '#/audit', label: 'Audit trail', role: 'admin' },
  { id: 'two-factor', href: '#/two-factor', label: 'Two-factor sign-in' },
];

const root = document.getElementById('app');
let session = null;
let shell = null;
let cleanup = null;
let generation = 0;
let navPoll = null;
let leaveGuard = null;
let currentHash = window.location.hash;

/** Parse the hash into a path and query. */
function currentRoute() {
  const raw = window.location.hash.replace(/^#\/?/, '');
  const [path, qs = ''] = raw.split('?');
  const query = Object.fromEntries(new URLSearchParams(qs));
  for (const route of ROUTES) {
    const m = route.pattern.exec(path.replace(/\/$/, ''));
    if (m) {
      const params = {};
      (route.keys || []).forEach((k, i) => { params[k] = decodeURIComponent(m[i + 1]); });
      return { ...route, params, query, path };
    }
  }
  return { page: null, nav: null, params: {}, query, path };
}

/** Go to `hash` (e.g. `#/jobs/ID`); `replace` keeps the history entry. */
export function navigate(hash, { replace = false } = {}) {
  if (replace) {
    window.history.replaceState(null, '', hash);
    route();
  } else if (window.location.hash === hash) {
    route();
  } else {
    window.location.hash = hash;
  }
}

async function route() {
  if (!session) return;
  if (leaveGuard && window.location.hash !== currentHash && leaveGuard()
    && !window.confirm('This page has unsaved changes. Leave without saving?')) {
    // Stay: put the address back without routing again.
    window.history.replaceState(null, '', currentHash);
    return;
  }
  leaveGuard = null;
  currentHash = window.location.hash;
  if (!shell) buildShell();
  const r = currentRoute();
  generation += 1;
  const mine = generation;
  if (cleanup) {
    try { cleanup(); } catch { /* a page's cleanup must not break navigation */ }
    cleanup = null;
  }
  for (const a of shell.nav.querySelectorAll('a[data-nav]')) {
    if (a.dataset.nav === r.nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  shell.root.classList.remove('nav-open');
  shell.root.querySelector('[aria-controls="sidebar"]')?.setAttribute('aria-expanded', 'false');
  const main = shell.main;
  if (!r.page) {
    mount(main, h('div', { class: 'page-head' }, h('div', { class: 'titles' }, h('h1', {}, 'Not found'))),
      errorBox(`There is no page at “#/${r.path}”.`), h('p', {}, h('a', { href: '#/' }, 'Back to the dashboard')));
    return;
  }
  // Re-rendering the same page (a filter change) should keep keyboard focus on the control.
  const focusedName = main.contains(document.activeElement) ? document.activeElement.getAttribute('name') : null;
  mount(main, loading());
  const ctx = {
    main,
    params: r.params,
    query: r.query,
    session,
    navigate,
    alive: () => mine === generation,
    /** `dirty()` says whether leaving would lose work; the user is asked first. */
    guardLeave: (dirty) => { leaveGuard = dirty; },
    onCleanup: (fn) => {
      const previous = cleanup;
      cleanup = () => { if (previous) previous(); fn(); };
    },
  };
  try {
    const module = await import(`./pages/${r.page}.js`);
    if (!ctx.alive()) return;
    await module.default(ctx);
    if (!ctx.alive()) return;
    document.title = `${main.querySelector('h1')?.textContent || 'aft'} · aft`;
    const again = focusedName && main.querySelector(`[name="${CSS.escape(focusedName)}"]`);
    if (again) again.focus();
    else if (!main.contains(document.activeElement)) main.focus({ preventScroll: true });
  } catch (e) {
    if (!ctx.alive()) return;
    if (e instanceof ApiError && e.status === 401) return;
    const title = e instanceof ApiError && e.status === 404 ? 'Not found' : 'Something went wrong';
    mount(main, h('div', { class: 'page-head' }, h('div', { class: 'titles' }, h('h1', {}, title))),
      errorBox(e.message || String(e)),
      h('p', {}, h('a', { href: `#/${r.nav === 'dashboard' ? '' : r.nav}` }, 'Back')));
  }
}

/** Roles from least to most; the server refuses what a role may not do, the UI hides it. */
const ROLES = ['viewer', 'operator', 'admin'];

/** Whether the signed-in admin's role reaches `role`. */
function roleAtLeast(role) {
  return ROLES.indexOf(session?.role || 'admin') >= ROLES.indexOf(role);
}

function buildShell() {
  // Pages a role may not open are left out of the menu (and a section left empty), and
  // app.css hides the buttons of changes it may not make (by body[data-role]).
  document.body.dataset.role = session.role || 'admin';
  const visible = NAV.filter((item, i) => {
    if (!item.section) return !item.role || roleAtLeast(item.role);
    const next = NAV.slice(i + 1).find((n) => n.section || !n.role || roleAtLeast(n.role));
    return Boolean(next && !next.section);
  });
  const navLinks = visible.map((item) => (item.section
    ? h('div', { class: 'nav-section' }, item.section)
    : h('a', { href: item.href, 'data-nav': item.id }, icon(item.id), h('span', {}, item.label),
      item.id === 'jobs' ? h('span', { class: 'nav-count hidden', 'data-running-count': '', title: 'running jobs' }) : null)));
  const nav = h('nav', { class: 'nav', 'aria-label': 'Main' }, navLinks);
  const signOut = h('button', { class: 'btn ghost small', type: 'button', title: 'Sign out', 'data-testid': 'sign-out', onclick: signOutClicked },
    icon('signout', 'btn-icon'), h('span', { class: 'sr-only' }, 'Sign out'));
  const sidebar = h('aside', { class: 'sidebar', id: 'sidebar' },
    h('a', { class: 'brand', href: '#/' }, brandMark(), h('span', {}, 'aft'), h('small', {}, 'file transfer')),
    nav,
    h('div', { class: 'sidebar-foot' }, h('span', { class: 'avatar', 'aria-hidden': 'true' }, (session.username || '?').slice(0, 2)),
      h('span', { class: 'who', title: `Signed in as ${session.username}` }, session.username), signOut));
  const main = h('main', { class: 'main', id: 'main', tabindex: '-1' });
  const menuButton = h('button', { class: 'btn ghost', type: 'button', 'aria-controls': 'sidebar', 'aria-expanded': 'false', 'aria-label': 'Menu' }, icon('menu', 'btn-icon'));
  const topbar = h('header', { class: 'topbar' }, menuButton, h('a', { class: 'brand', href: '#/' }, brandMark(), 'aft'));
  const skip = h('button', { class: 'skip-link', type: 'button', onclick: () => main.focus() }, 'Skip to content');
  const rootEl = h('div', { class: 'shell' }, skip, sidebar, h('div', {}, topbar, main));
  // The drawer (phone width): Esc closes it and focus goes back to the menu button; while
  // open, Tab and Shift+Tab cycle inside it instead of wandering behind it.
  const drawerOpen = () => rootEl.classList.contains('nav-open') && menuButton.offsetParent !== null;
  const closeDrawer = () => {
    rootEl.classList.remove('nav-open');
    menuButton.setAttribute('aria-expanded', 'false');
    menuButton.focus();
  };
  menuButton.addEventListener('click', () => {
    const open = rootEl.classList.toggle('nav-open');
    menuButton.setAttribute('aria-expanded', String(open));
    if (open) nav.querySelector('a')?.focus();
  });
  rootEl.addEventListener('keydown', (e) => {
    if (!drawerOpen() || document.querySelector('dialog[open]')) return;
    if (e.key === 'Escape') {
      e.preventDefault();
      closeDrawer();
    } else if (e.key === 'Tab') {
      const stops = [...sidebar.querySelectorAll('a[href], button:not([disabled])')].filter((el) => el.offsetParent !== null);
      if (!stops.length) return;
      const first = stops[0];
      const last = stops[stops.length - 1];
      const at = stops.indexOf(document.activeElement);
      if (at === -1 || (e.shiftKey && at === 0) || (!e.shiftKey && at === stops.length - 1)) {
        e.preventDefault();
        (e.shiftKey ? last : first).focus();
      }
    }
  });
  mount(root, rootEl);
  shell = { root: rootEl, nav, main };
  pollRunning();
}

async function pollRunning() {
  clearTimeout(navPoll);
  if (!shell) return;
  try {
    const page = await api.get('/v1/jobs?status=running&limit=1000');
    const badgeEl = shell?.nav.querySelector('[data-running-count]');
    if (badgeEl) {
      const n = page.jobs.length;
      badgeEl.textContent = String(n);
      badgeEl.classList.toggle('hidden', n === 0);
    }
  } catch { /* the page shows errors; the counter just waits */ }
  navPoll = setTimeout(pollRunning, document.hidden ? 15000 : 4000);
}

async function signOutClicked() {
  try {
    await api.del('/v1/session');
  } catch (e) {
    toast(e.message, 'error');
  }
  endSession();
  renderSignIn({ notice: 'You are signed out.' });
}

function endSession() {
  session = null;
  leaveGuard = null;
  shell = null;
  setCsrfToken(null);
  clearTimeout(navPoll);
  if (cleanup) {
    try { cleanup(); } catch { /* ignore */ }
    cleanup = null;
  }
}

function authCard(title, lead, form) {
  return h('div', { class: 'auth' },
    h('main', { class: 'card auth-card', id: 'main' },
      h('div', { class: 'brand' }, brandMark(), h('span', {}, 'aft')),
      h('h1', {}, title),
      h('p', { class: 'lead' }, lead),
      form));
}

function renderSetup() {
  document.title = 'Create the first admin · aft';
  const username = h('input', { type: 'text', name: 'username', autocomplete: 'username', required: true, value: 'admin' });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'new-password', required: true, minlength: '8' });
  const confirm = h('input', { type: 'password', name: 'confirm', autocomplete: 'new-password', required: true });
  const message = h('div');
  const submit = h('button', { class: 'btn primary', type: 'submit' }, 'Create admin');
  const form = h('form', { class: 'form', 'data-testid': 'setup-form' },
    field('User name', username),
    field('Password', password, 'At least 8 characters.'),
    field('Repeat password', confirm),
    message, submit);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    mount(message);
    if (password.value.length < 8) {
      mount(message, errorBox('Choose a password of at least 8 characters.'));
      password.focus();
      return;
    }
    if (password.value !== confirm.value) {
      mount(message, errorBox('The two passwords differ.'));
      confirm.focus();
      return;
    }
    submit.disabled = true;
    try {
      await api.post('/v1/setup', { username: username.value.trim(), password: password.value });
      renderSignIn({ username: username.value.trim(), notice: 'Admin created. Sign in with the new password.' });
    } catch (err) {
      mount(message, errorBox(err.message));
      submit.disabled = false;
    }
  });
  mount(root, authCard('Welcome to aft', 'No admin exists yet. Create the first one to start.', form));
  username.focus();
  username.select();
}

function renderSignIn({ username: name = '', notice = '', error = '' } = {}) {
  document.title = 'Sign in · aft';
  const username = h('input', { type: 'text', name: 'username', autocomplete: 'username', required: true, value: name });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const message = h('div', {}, error ? errorBox(error) : notice ? h('div', { class: 'alert info', role: 'status' }, notice) : null);
  const submit = h('button', { class: 'btn primary', type: 'submit' }, 'Sign in');
  // Shown once the service says this admin signs in with a two-factor code.
  const code = h('input', { type: 'text', name: 'code', autocomplete: 'one-time-code', inputmode: 'numeric' });
  const codeField = field('Two-factor code', code, 'From your authenticator app, or one of your recovery codes.');
  codeField.hidden = true;
  const form = h('form', { class: 'form', 'data-testid': 'signin-form' },
    field('User name', username), field('Password', password), codeField, message, submit);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    submit.disabled = true;
    try {
      const body = { username: username.value.trim(), password: password.value };
      if (!codeField.hidden) body.code = code.value.trim();
      const s = await api.post('/v1/session', body, { quiet401: true });
      startSession(s);
    } catch (err) {
      if (/two-factor code required/.test(err.message)) {
        codeField.hidden = false;
        mount(message, h('div', { class: 'alert info', role: 'status' }, 'Enter the code of your authenticator app.'));
        code.focus();
      } else {
        mount(message, errorBox(err.message));
        if (codeField.hidden) password.value = '';
        (codeField.hidden ? password : code).focus();
      }
      code.value = '';
      submit.disabled = false;
    }
  });
  mount(root, authCard('Sign in', 'Administer scripts, jobs and connections.', form));
  (name ? password : username).focus();
}

function startSession(s) {
  session = s;
  setCsrfToken(s.csrfToken);
  shell = null;
  currentHash = window.location.hash;
  route();
}

onUnauthorized(() => {
  if (!session) return;
  const username = session.username;
  endSession();
  renderSignIn({ username, error: 'Your session has ended. Sign in again to go on where you were.' });
});

window.addEventListener('hashchange', route);

async function boot() {
  mount(root, loading('Connecting to aft…'));
  try {
    const setup = await api.get('/v1/setup');
    if (!setup.adminExists) {
      renderSetup();
      return;
    }
    try {
      startSession(await api.get('/v1/session', { quiet401: true }));
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) renderSignIn();
      else throw e;
    }
  } catch (e) {
    mount(root, h('div', { class: 'auth' }, h('div', { class: 'card auth-card' }, errorBox(e.message),
      h('button', { class: 'btn', type: 'button', onclick: boot }, 'Try again'))));
  }
}

boot();
