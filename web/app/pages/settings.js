// #/settings: every service setting with its description; each saves on its own and
// takes effect at once. Also the nodes of the cluster.

import { api, seg } from '../api.js';
import { busy, errorBox, h, mount, pageHead, shortId, timeEl, toast } from '../dom.js';

/**
 * The control for one setting, from the kind the service gives it: a checkbox for a
 * boolean, a list of the accepted values for a choice, a list of the stored secrets for a
 * `secret` setting, a text field otherwise. Its `read()`
 * gives the value as text and `write(v)` shows one.
 */
function settingControl(s, secrets) {
  const label = { 'aria-label': s.key, 'aria-describedby': `desc-${s.key}` };
  if (s.kind === 'boolean') {
    const box = h('input', { type: 'checkbox', name: s.key, checked: s.value === 'true', ...label });
    return { el: box, read: () => String(box.checked), write: (v) => { box.checked = v === 'true'; } };
  }
  if (s.kind === 'choice' || (s.kind === 'secret' && secrets)) {
    const values = s.kind === 'choice' ? [...(s.choices || [])] : ['', ...secrets];
    // A value set before the list changed (a deleted secret) stays shown, to be replaced.
    if (!values.includes(s.value)) values.push(s.value);
    const select = h('select', { name: s.key, ...label }, values.map((v) => h('option', { value: v, selected: v === s.value },
      v === '' && s.kind === 'secret' ? '(none)' : (s.kind === 'secret' && !secrets.includes(v) ? `${v} (missing)` : v))));
    return { el: select, read: () => select.value, write: (v) => { select.value = v; } };
  }
  // Whole numbers stay a text field (with a numeric keyboard on phones), so whatever is
  // typed reaches the service and its refusal names the accepted range.
  const input = h('input', {
    type: 'text', name: s.key, value: s.value, autocomplete: 'off', ...label,
    inputmode: { integer: 'numeric', url: 'url' }[s.kind] || null,
    title: s.kind === 'integer' && s.min !== undefined ? `a whole number from ${s.min} to ${s.max}` : null,
  });
  return { el: input, read: () => input.value, write: (v) => { input.value = v; } };
}

export default async function settingsPage(ctx) {
  const [settings, nodes, secretList] = await Promise.all([api.get('/v1/settings'), api.get('/v1/nodes').catch(() => null),
    api.get('/v1/secrets').catch(() => null)]);
  if (!ctx.alive()) return;
  const secrets = secretList ? secretList.map((x) => x.name).sort() : null;

  const row = (s) => {
    const { el: control, read, write } = settingControl(s, secrets);
    const save = h('button', { class: 'btn small', type: 'submit', disabled: true, 'aria-label': `Save ${s.key}` }, 'Save');
    const state = h('span', { class: 'muted small' }, s.isDefault ? 'default' : '');
    const message = h('div');
    const form = h('form', { class: 'setting-form', 'data-setting': s.key }, control, save);
    const changed = () => { save.disabled = read() === s.value; };
    control.addEventListener('input', changed);
    control.addEventListener('change', changed);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      await busy(save, async () => {
        try {
          const saved = await api.put(`/v1/settings/${seg(s.key)}`, { value: read() });
          s.value = saved.value;
          write(saved.value);
          s.isDefault = false;
          state.textContent = '';
          mount(message);
          toast(`${s.key} = ${saved.value || '(empty)'}`);
        } catch (err) {
          mount(message, errorBox(err.message));
        }
      });
      changed();
    });
    return h('tr', { 'data-kind': s.kind || 'text' },
      h('td', {}, h('strong', { class: 'mono' }, s.key), h('span', { class: 'sub', id: `desc-${s.key}` }, s.description), message),
      h('td', {}, form),
      h('td', {}, state));
  };

  const nodesCard = nodes ? h('section', { class: 'card' },
    h('div', { class: 'card-head' }, h('h2', {}, 'Nodes')),
    h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Nodes' }, h('table', {},
      h('thead', {}, h('tr', {}, ['Node', 'Host', 'URL', 'Running jobs', 'Last heartbeat'].map((t) => h('th', {}, t)))),
      h('tbody', {}, nodes.map((n) => h('tr', {},
        h('td', { class: 'mono', title: n.id }, shortId(n.id), n.stoppedAt ? h('span', { class: 'sub' }, 'stopped') : null),
        h('td', {}, n.hostname || '—', h('span', { class: 'sub' }, `pid ${n.pid}`)),
        h('td', { class: 'mono small' }, n.url || '—'),
        h('td', { class: 'num' }, n.runningJobs ?? '—'),
        h('td', {}, timeEl(n.heartbeatAt)))))))) : null;

  mount(ctx.main,
    pageHead('Settings', { subtitle: 'Service settings; changes take effect at once on every node.' }),
    h('section', { class: 'card' }, h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Settings' }, h('table', { 'data-testid': 'settings-table' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Setting'), h('th', {}, 'Value'), h('th', {}, h('span', { class: 'sr-only' }, 'State')))),
      h('tbody', {}, settings.map(row))))),
    nodesCard);
}
