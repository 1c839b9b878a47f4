// The audit trail page and admin roles in a real browser against a real `aft serve`: the
// admin sees who did what (the web UI's own sign-in, a change made from the CLI), filters,
// and checks the chain; a viewer's menu and pages leave out what the role may not do.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { repoRoot, setupAndSignIn, startAft, startBrowser, unexpectedErrors } from './harness.mjs';

const aftBinary = process.env.AFT_BIN || join(repoRoot, 'target', 'debug', 'aft');
const nav = (page, name) => page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name });

/** `aft --data DATA ARGS...` with `input` on standard input; must succeed. */
function aftCli(data, args, input = '') {
  const out = spawnSync(aftBinary, ['--data', data, ...args], { input, encoding: 'utf8' });
  assert.equal(out.status, 0, `aft ${args.join(' ')}: ${out.stdout}${out.stderr}`);
  return out.stdout;
}

describe('audit trail and roles', () => {
  let aft;
  let browser;
  before(async () => {
    aft = await startAft();
    browser = await startBrowser();
  });
  after(async () => {
    await browser?.stop();
    await aft?.stop();
  });

  test('an admin reads and checks the trail; a viewer is shown only what it may do', async () => {
    const { page, errors } = browser;
    await setupAndSignIn(page, aft.url);
    aftCli(aft.data, ['admin', 'add', 'vic', '--role', 'viewer'], 'vic-password');

    await nav(page, 'Audit trail').click();
    await page.getByRole('heading', { name: 'Audit trail' }).waitFor();
    const table = page.getByTestId('audit-table');
    // Newest first: the CLI's admin, the browser's sign-in, the first admin's setup.
    const actions = await table.locator('tbody tr td:nth-child(5)').allTextContents();
    assert.deepEqual(actions, ['admin.created', 'session.created', 'admin.created']);
    const cliRow = table.locator('tbody tr').first();
    assert.match(await cliRow.textContent(), /local.*local.*admin\.created.*vic/s);
    await cliRow.locator('summary').click();
    assert.match(await cliRow.locator('pre').textContent(), /"role": "viewer"/);

    await page.getByTestId('audit-filters').getByLabel('Kind').selectOption('session');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="audit-table"] tbody tr').length === 1);
    assert.match(await table.locator('tbody tr').textContent(), /127\.0\.0\.1.*session\.created/s);

    await page.getByTestId('audit-verify').click();
    await page.getByTestId('audit-verify-result').getByText(/Intact: 3 records/).waitFor();

    // The viewer: no pages of the admin role in the menu, no buttons that change things.
    await nav(page, 'Dashboard').click();
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    await page.getByTestId('sign-out').click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.getByLabel('User name').fill('vic');
    await page.getByLabel('Password', { exact: true }).fill('vic-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    for (const hidden of ['Audit trail', 'Secrets', 'API keys', 'Settings', 'Admins']) {
      assert.equal(await nav(page, hidden).count(), 0, `${hidden} is in a viewer's menu`);
    }
    await nav(page, 'Scripts').click();
    await page.getByRole('heading', { name: 'Scripts', exact: true }).waitFor();
    assert.equal(await page.locator('[data-testid="new-script"]:visible').count(), 0, 'a viewer sees "New script"');
    // Asked for anyway, the server refuses it.
    await page.goto(`${aft.url}/#/audit`);
    await page.getByText(/the viewer role may not call GET \/v1\/audit/).waitFor();

    assert.deepEqual(unexpectedErrors(errors).filter((e) => !/status of 403/.test(e)), []);
  });
});

/** Bytes of a base32 text (RFC 4648, no padding). */
function base32Bytes(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of text.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

/** The code an authenticator app shows now for `secret` (RFC 6238: SHA-1, 6 digits, 30 s). */
async function totpNow(secret) {
  const { createHmac } = await import('node:crypto');
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 1000 / 30)));
  const mac = createHmac('sha1', base32Bytes(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0xf;
  const value = (mac.readUInt32BE(offset) & 0x7fffffff) % 1000000;
  return String(value).padStart(6, '0');
}

describe('two-factor sign-in', () => {
  let aft;
  let browser;
  before(async () => {
    aft = await startAft();
    browser = await startBrowser();
  });
  after(async () => {
    await browser?.stop();
    await aft?.stop();
  });

  test('an admin scans the QR code, confirms a code, and then signs in with one', async () => {
    const { page, errors } = browser;
    const { username, password } = await setupAndSignIn(page, aft.url);
    await nav(page, 'Two-factor sign-in').click();
    await page.getByTestId('two-factor-start').click();
    await page.getByTestId('two-factor-qr').waitFor();
    assert.ok(await page.getByTestId('two-factor-qr').evaluate((img) => img.complete && img.naturalWidth > 0), 'the QR code shows');
    const secret = await page.getByTestId('two-factor-secret').textContent();
    await page.getByLabel('Code from the app').fill(await totpNow(secret));
    await page.getByRole('button', { name: 'Turn on' }).click();
    await page.getByTestId('recovery-codes').waitFor();
    const codes = await page.getByTestId('recovery-codes').locator('li').allTextContents();
    assert.equal(codes.length, 10);

    await page.getByTestId('sign-out').click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.getByLabel('User name').fill(username);
    await page.getByLabel('Password', { exact: true }).fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByLabel('Two-factor code').waitFor();
    await page.getByLabel('Two-factor code').fill(await totpNow(secret));
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByTestId('two-factor-on').waitFor();
    assert.deepEqual(unexpectedErrors(errors), []);
  });
});
