// #/settings: every service setting with its description; each saves on its own and
// takes effect at once. Also the nodes of the cluster.

import { api, seg } from '../api.js';
import { busy, errorBox, h, mount, pageHead, shortId, timeEl, toast } from '../dom.js';

export default async function settingsPage(ctx) {
  const [settings, nodes] = await Promise.all([api.get('/v1/settings'), api.get('/v1/nodes').catch(() => null)]);
  if (!ctx.alive()) return;

  const row = (s) => {
    const isBool = s.value === 'true' || s.value === 'false';
    const control = isBool
      ? h('select', { name: s.key, 'aria-label': s.key }, ['true', 'false'].map((v) => h('option', { value: v, selected: s.value === v }, v === 'true' ? 'on' : 'off')))
      : h('input', { type: 'text', name: s.key, value: s.value, 'aria-label': s.key, autocomplete: 'off' });
    const save = h('button', { class: 'btn small', type: 'submit', disabled: true }, 'Save');
    const state = h('span', { class: 'muted small' }, s.isDefault ? 'default' : '');
    const message = h('div');
    const form = h('form', { class: 'setting-form', 'data-setting': s.key }, control, save);
    const changed = () => { save.disabled = control.value === s.value; };
    control.addEventListener('input', changed);
    control.addEventListener('change', changed);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      await busy(save, async () => {
        try {
          const saved = await api.put(`/v1/settings/${seg(s.key)}`, { value: control.value });
          s.value = saved.value;
          control.value = saved.value;
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
    return h('tr', {},
      h('td', {}, h('strong', { class: 'mono' }, s.key), h('span', { class: 'sub' }, s.description), message),
      h('td', {}, form),
      h('td', {}, state));
  };

  const nodesCard = nodes ? h('section', { class: 'card' },
    h('div', { class: 'card-head' }, h('h2', {}, 'Nodes')),
    h('div', { class: 'table-wrap' }, h('table', {},
      h('thead', {}, h('tr', {}, ['Node', 'Host', 'URL', 'Running jobs', 'Last heartbeat'].map((t) => h('th', {}, t)))),
      h('tbody', {}, nodes.map((n) => h('tr', {},
        h('td', { class: 'mono', title: n.id }, shortId(n.id), n.stoppedAt ? h('span', { class: 'sub' }, 'stopped') : null),
        h('td', {}, n.hostname || '—', h('span', { class: 'sub' }, `pid ${n.pid}`)),
        h('td', { class: 'mono small' }, n.url || '—'),
        h('td', { class: 'num' }, n.runningJobs ?? '—'),
        h('td', {}, timeEl(n.heartbeatAt)))))))) : null;

  mount(ctx.main,
    pageHead('Settings', { subtitle: 'Service settings; changes take effect at once on every node.' }),
    h('section', { class: 'card' }, h('div', { class: 'table-wrap' }, h('table', { 'data-testid': 'settings-table' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Setting'), h('th', {}, 'Value'), h('th', {}, h('span', { class: 'sr-only' }, 'State')))),
      h('tbody', {}, settings.map(row))))),
    nodesCard);
}
