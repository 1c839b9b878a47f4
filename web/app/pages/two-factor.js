// #/two-factor: set up two-factor sign-in for the signed-in admin — scan the QR code with an
// authenticator app, confirm with its code, keep the recovery codes shown once.

import { api } from '../api.js';
import { busy, errorBox, field, h, mount, pageHead } from '../dom.js';

export default async function twoFactorPage(ctx) {
  const session = await api.get('/v1/session');
  if (!ctx.alive()) return;
  const head = pageHead('Two-factor sign-in', { subtitle: 'A code from an authenticator app at each sign-in, besides the password.' });
  if (session.twoFactor) {
    mount(ctx.main, head, h('section', { class: 'card' }, h('div', { class: 'card-body' },
      h('p', { 'data-testid': 'two-factor-on' }, 'Two-factor sign-in is on for ', h('strong', {}, session.username), '.'),
      h('p', { class: 'muted' }, 'Lost the phone? An admin can turn it off (aft admin reset-2fa NAME), then set it up again here.'))));
    return;
  }
  const body = h('div', { class: 'card-body' });
  const start = h('button', { class: 'btn primary', type: 'button', 'data-testid': 'two-factor-start' }, 'Set up');
  start.addEventListener('click', () => busy(start, async () => {
    try {
      showEnrolment(await api.post('/v1/session/two-factor', {}));
    } catch (e) {
      mount(body, errorBox(e.message), start);
    }
  }));
  mount(body, h('p', {}, 'Sign-in will ask for the code your authenticator app shows, and accept a recovery code instead.'), start);

  function showEnrolment(enrolment) {
    const code = h('input', { type: 'text', name: 'code', autocomplete: 'one-time-code', inputmode: 'numeric', required: true });
    const message = h('div');
    const confirm = h('button', { class: 'btn primary', type: 'submit' }, 'Turn on');
    const form = h('form', { class: 'form', 'data-testid': 'two-factor-confirm' },
      field('Code from the app', code), message, confirm);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      busy(confirm, async () => {
        try {
          const on = await api.put('/v1/session/two-factor', { code: code.value.trim() });
          mount(body,
            h('div', { class: 'alert info', role: 'status' }, 'Two-factor sign-in is on. Keep these recovery codes somewhere safe: each signs you in once without the app, and they are not shown again.'),
            h('ul', { class: 'recovery-codes', 'data-testid': 'recovery-codes' }, on.recoveryCodes.map((c) => h('li', {}, c))));
        } catch (err) {
          mount(message, errorBox(err.message));
          code.select();
        }
      });
    });
    mount(body,
      h('p', {}, 'Scan this with the authenticator app, or type the secret into it:'),
      h('img', { class: 'qr-code', src: enrolment.qrCode, alt: 'QR code of the two-factor secret', 'data-testid': 'two-factor-qr' }),
      h('p', {}, h('code', { 'data-testid': 'two-factor-secret' }, enrolment.secret)),
      form);
    code.focus();
  }

  mount(ctx.main, head, h('section', { class: 'card' }, body));
}
