// #/apikeys: keys for automation (X-API-Key). Each has an IP allow-list, an optional
// expiry and an optional script scope; the key itself is shown once, at creation.

import { api, seg } from '../api.js';
import { badge, confirmDialog, dialog, emptyState, errorBox, field, fmtTime, h, icon, mount, pageHead, timeEl, toast } from '../dom.js';

function keyState(key) {
  if (key.revokedAt) return 'revoked';
  if (key.expiresAt && new Date(key.expiresAt) <= new Date()) return 'expired';
  return 'active';
}

function createForm(scripts) {
  return dialog('New API key', (close) => {
    const name = h('input', { type: 'text', name: 'key-name', required: true, autocomplete: 'off', placeholder: 'ci-pipeline' });
    const allow = h('textarea', { class: 'plain', name: 'allow', rows: '3', required: true }, '127.0.0.1\n::1');
    const expires = h('input', { type: 'date', name: 'expires' });
    const allScripts = h('input', { type: 'radio', name: 'scope', value: 'all', checked: true });
    const someScripts = h('input', { type: 'radio', name: 'scope', value: 'some' });
    const scriptChecks = scripts.map((s) => h('label', {}, h('input', { type: 'checkbox', value: s.name }), s.name));
    const scriptBox = h('div', { class: 'checks hidden' }, scriptChecks.length ? scriptChecks : h('span', { class: 'muted' }, 'No scripts yet.'));
    const syncScope = () => scriptBox.classList.toggle('hidden', !someScripts.checked);
    allScripts.addEventListener('change', syncScope);
    someScripts.addEventListener('change', syncScope);
    const message = h('div');
    const form = h('form', { class: 'form', id: 'apikey-form' },
      field('Name', name),
      field('Allowed addresses', allow, 'One address or CIDR range per line (or comma-separated), IPv4 or IPv6. Calls from anywhere else are refused, even with the key.'),
      field('Expires', expires, 'Optional: the key stops working at the end of this day (UTC).'),
      h('fieldset', { class: 'field' }, h('legend', { class: 'label' }, 'May start'),
        h('div', { class: 'checks' }, h('label', {}, allScripts, 'Any script'), h('label', {}, someScripts, 'Only these scripts')),
        scriptBox),
      message);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const body = {
        name: name.value.trim(),
        allow: allow.value.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean),
      };
      if (expires.value) body.expiresAt = `${expires.value}T23:59:59Z`;
      if (someScripts.checked) body.scripts = scriptChecks.map((l) => l.querySelector('input')).filter((c) => c.checked).map((c) => c.value);
      try {
        close(await api.post('/v1/apikeys', body));
      } catch (err) {
        mount(message, errorBox(err.message));
      }
    });
    setTimeout(() => name.focus(), 0);
    return {
      body: form,
      foot: [
        h('button', { class: 'btn', type: 'button', onclick: () => close() }, 'Cancel'),
        h('button', { class: 'btn primary', type: 'submit', form: 'apikey-form' }, 'Create key'),
      ],
    };
  });
}

function showOnce(created) {
  return dialog(`API key ${created.name}`, (close) => {
    const keyEl = h('div', { class: 'secret-once', 'data-testid': 'new-api-key', tabindex: '0' }, created.key);
    const copy = h('button', { class: 'btn', type: 'button' }, 'Copy');
    copy.addEventListener('click', async () => {
      try {
        await navigator.clipboard.writeText(created.key);
        copy.textContent = 'Copied';
      } catch {
        window.getSelection().selectAllChildren(keyEl);
        copy.textContent = 'Selected: press Ctrl+C';
      }
    });
    return {
      body: [
        h('div', { class: 'alert warn' }, h('div', { class: 'grow' }, 'Copy the key now: it is shown this once and stored only as a hash.')),
        keyEl,
        h('p', { class: 'muted small' }, 'Use it as: aft start -n SCRIPT -a KEY, or the X-API-Key header of POST /v1/jobs.'),
      ],
      foot: [copy, h('button', { class: 'btn primary', type: 'button', onclick: () => close() }, 'Done')],
    };
  });
}

export default async function apiKeysPage(ctx) {
  const [keys, scripts] = await Promise.all([api.get('/v1/apikeys'), api.get('/v1/scripts').catch(() => [])]);
  if (!ctx.alive()) return;
  const reload = () => ctx.navigate('#/apikeys', { replace: true });
  const add = async () => {
    const created = await createForm(scripts);
    if (created) {
      await showOnce(created);
      reload();
    }
  };
  const newButton = () => h('button', { class: 'btn primary', type: 'button', 'data-testid': 'new-apikey', onclick: add }, icon('plus', 'btn-icon'), 'New API key');
  const body = keys.length
    ? h('div', { class: 'table-wrap' }, h('table', {},
      h('thead', {}, h('tr', {}, ['Name', 'Status', 'Allowed from', 'May start', 'Expires', 'Last used', ''].map((t) => h('th', {}, t || h('span', { class: 'sr-only' }, 'Actions'))))),
      h('tbody', {}, keys.map((k) => {
        const state = keyState(k);
        return h('tr', { 'data-apikey': k.name },
          h('td', {}, h('strong', {}, k.name), h('span', { class: 'sub mono' }, `${k.prefix}…`)),
          h('td', {}, badge(state)),
          h('td', {}, String(k.allowList || '').split(',').filter(Boolean).map((a) => h('span', { class: 'tag' }, a))),
          h('td', {}, k.scripts ? (k.scripts.length ? k.scripts.map((s) => h('span', { class: 'tag' }, s)) : h('span', { class: 'muted' }, 'no script')) : h('span', { class: 'muted' }, 'any script')),
          h('td', { class: 'nowrap', title: fmtTime(k.expiresAt) }, k.expiresAt ? timeEl(k.expiresAt) : h('span', { class: 'muted' }, 'never')),
          h('td', { class: 'nowrap' }, timeEl(k.lastUsedAt)),
          h('td', { class: 'cell-actions' }, state === 'revoked' ? null : h('button', {
            class: 'btn small danger', type: 'button', 'aria-label': `Revoke ${k.name}`,
            onclick: async () => {
              if (!await confirmDialog(`Revoke ${k.name}?`, 'Calls with this key are refused from now on. This cannot be undone.', 'Revoke')) return;
              try {
                await api.del(`/v1/apikeys/${seg(k.id)}`);
                toast(`Revoked ${k.name}.`);
                reload();
              } catch (e) {
                toast(e.message, 'error');
              }
            },
          }, 'Revoke')));
      }))))
    : emptyState('No API keys', 'CI pipelines and other systems start jobs with an API key. Each key works only from the addresses you allow.', newButton());
  mount(ctx.main,
    pageHead('API keys', { subtitle: 'Keys for aft start and the REST API, each with an IP allow-list.', actions: keys.length ? newButton() : null }),
    h('section', { class: 'card' }, body));
}
