// Accessibility: axe-core (npm `axe-core`, WCAG 2.0/2.1 A and AA rules) on every page of
// the web UI (the open menu drawer, dialogs, sign-in and first-admin setup too), in the light
// and the dark theme, at desktop and phone (390 px) width, against a real `aft serve` holding
// one of everything; any violation fails the test.

import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { after, before, describe, test } from 'node:test';
import { setupAndSignIn, startAft, startBrowser, unexpectedErrors } from './harness.mjs';

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];

const call = (page, method, path, body) => page.evaluate(async ([m, p, b]) => {
  const { api } = await import('/api.js');
  return api[m](p, b);
}, [method, path, body]);

/** Run axe on the page as it is; returns the violations as readable lines. */
async function violations(page) {
  // Through CDP, not a <script> tag: the UI's strict CSP would (rightly) refuse one.
  if (!await page.evaluate(() => typeof window.axe === 'object')) await page.evaluate(axeSource);
  const result = await page.evaluate((tags) => window.axe.run(document, {
    runOnly: { type: 'tag', values: tags },
    resultTypes: ['violations'],
  }), TAGS);
  return result.violations.flatMap((v) => v.nodes.map((n) => `${v.id} (${v.impact}): ${n.target.join(' ')}: ${n.failureSummary.replace(/\s+/g, ' ')}`));
}

/** Wait until the page at `hash` has drawn its heading and nothing is still loading. */
async function open(page, url, hash) {
  await page.goto(`${url}/${hash}`);
  await page.locator('main h1').first().waitFor();
  await page.waitForFunction(() => !document.querySelector('main .loading'));
  // Let toasts and transitions settle so the colours axe reads are the final ones.
  await page.evaluate(() => document.getElementById('toasts')?.replaceChildren());
  await page.waitForTimeout(250);
}

describe('accessibility (axe-core, WCAG 2.1 AA)', () => {
  let aft;
  let browser;
  let pages;
  let scratch;
  before(async () => {
    aft = await startAft();
    browser = await startBrowser();
    const { page } = browser;
    await setupAndSignIn(page, aft.url);
    scratch = mkdtempSync(`${tmpdir()}/aft-a11y-`);
    // One of everything, so each page shows its tables, badges and actions, not an empty state.
    await call(page, 'post', '/v1/scripts', { name: 'hello', description: 'says hello', body: 'Log("hello");\n' });
    await call(page, 'post', '/v1/scripts', { name: 'broken', description: '', body: 'throw new Error("on purpose");\n' });
    await call(page, 'post', '/v1/scripts', { name: 'waiter', description: '', body: 'WaitForHaltSignal();\n' });
    const ok = (await call(page, 'post', '/v1/jobs', { scriptName: 'hello', params: {} })).jobId;
    const bad = (await call(page, 'post', '/v1/jobs', { scriptName: 'broken', params: {} })).jobId;
    for (const id of [ok, bad]) {
      for (let i = 0; i < 200 && ['queued', 'running'].includes((await call(page, 'get', `/v1/jobs/${id}`)).status); i += 1) await page.waitForTimeout(100);
    }
    await call(page, 'put', '/v1/secrets/partner-pass', { value: 'x' });
    await call(page, 'post', '/v1/vfs', { name: 'local', type: 'disk', settings: { Root: scratch } });
    await call(page, 'post', '/v1/schedules', { name: 'nightly', script: 'hello', cron: '0 2 * * *', timeZone: 'Europe/Rome', params: {}, overlap: 'skip', misfire: 'skip' });
    // A schedule with a slot history (fired slots with their jobs), then stopped.
    await call(page, 'post', '/v1/schedules', { name: 'often', script: 'hello', cron: '* * * * * *', timeZone: 'UTC', params: {}, overlap: 'skip', misfire: 'skip' });
    for (let i = 0; i < 200 && !(await call(page, 'get', '/v1/schedules/often/slots')).some((x) => x.jobStatus === 'succeeded'); i += 1) await page.waitForTimeout(100);
    await call(page, 'put', '/v1/schedules/often/enabled', { enabled: false });
    await call(page, 'post', '/v1/watchers', { name: 'inbox', script: 'waiter', params: {} });
    await call(page, 'post', '/v1/apikeys', { name: 'ci', allow: ['127.0.0.1'] });
    await call(page, 'post', '/v1/admins', { username: 'ops', password: 'operator pass', role: 'operator' });
    pages = [
      ['dashboard', '#/'], ['jobs', '#/jobs'], ['job (succeeded)', `#/jobs/${ok}`], ['job (failed)', `#/jobs/${bad}`],
      ['scripts', '#/scripts'], ['script', '#/scripts/hello'], ['schedules', '#/schedules'], ['schedule', '#/schedules/nightly'], ['schedule history', '#/schedules/often'],
      ['watchers', '#/watchers'], ['secrets', '#/secrets'], ['vfs', '#/vfs'], ['settings', '#/settings'], ['admins', '#/admins'],
      ['apikeys', '#/apikeys'], ['audit', '#/audit'], ['notifications', '#/notifications'], ['two-factor', '#/two-factor'],
    ];
  });
  after(async () => {
    await browser?.stop();
    await aft?.stop();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  for (const scheme of ['light', 'dark']) {
    for (const [label, width, height] of [['desktop', 1360, 860], ['phone', 390, 844]]) {
      test(`every page, ${scheme} theme, ${label} width`, async () => {
        const { page } = browser;
        await page.setViewportSize({ width, height });
        await page.emulateMedia({ colorScheme: scheme });
        const found = [];
        for (const [name, hash] of pages) {
          await open(page, aft.url, hash);
          for (const v of await violations(page)) found.push(`${name}: ${v}`);
        }
        if (label === 'phone') {
          // The open drawer too: its links are the phone's only way around.
          await open(page, aft.url, '#/');
          await page.getByRole('button', { name: 'Menu' }).click();
          await page.locator('.shell.nav-open .sidebar').waitFor();
          await page.waitForTimeout(300);
          for (const v of await violations(page)) found.push(`menu drawer: ${v}`);
          await page.keyboard.press('Escape');
        }
        assert.deepEqual(found, [], `axe-core violations:\n${found.join('\n')}`);
        assert.deepEqual(unexpectedErrors(browser.errors), []);
      });
    }
  }

  test('open dialogs (a form and a confirmation), light and dark, desktop and phone', async () => {
    const { page } = browser;
    const found = [];
    for (const scheme of ['light', 'dark']) {
      for (const [width, height] of [[1360, 860], [390, 844]]) {
        await page.setViewportSize({ width, height });
        await page.emulateMedia({ colorScheme: scheme });
        await open(page, aft.url, '#/schedules');
        await page.getByRole('button', { name: 'New schedule' }).click();
        await page.getByRole('dialog').getByLabel('Cron expression').waitFor();
        for (const v of await violations(page)) found.push(`new schedule dialog ${scheme} ${width}px: ${v}`);
        await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
        await page.getByRole('dialog').waitFor({ state: 'detached' });
        await page.getByRole('button', { name: 'Delete schedule nightly' }).click();
        await page.getByRole('dialog').getByRole('heading', { name: 'Delete schedule nightly?' }).waitFor();
        for (const v of await violations(page)) found.push(`confirmation ${scheme} ${width}px: ${v}`);
        await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
        await page.getByRole('dialog').waitFor({ state: 'detached' });
      }
    }
    assert.deepEqual(found, [], `axe-core violations:\n${found.join('\n')}`);
  });

  test('the sign-in and first-admin setup pages, light and dark, desktop and phone', async () => {
    // Last, as it signs this browser out: the sign-in page as a visitor sees it.
    const { context } = browser;
    const page = await context.newPage();
    await context.clearCookies();
    const found = [];
    try {
      for (const scheme of ['light', 'dark']) {
        for (const [width, height] of [[1360, 860], [390, 844]]) {
          await page.setViewportSize({ width, height });
          await page.emulateMedia({ colorScheme: scheme });
          await page.goto(aft.url);
          await page.getByRole('heading', { name: 'Sign in' }).waitFor();
          for (const v of await violations(page)) found.push(`sign-in ${scheme} ${width}px: ${v}`);
        }
      }
      // And the first-admin setup page of a service that has none yet.
      const fresh = await startAft();
      try {
        for (const scheme of ['light', 'dark']) {
          for (const [width, height] of [[1360, 860], [390, 844]]) {
            await page.setViewportSize({ width, height });
            await page.emulateMedia({ colorScheme: scheme });
            await page.goto(fresh.url);
            await page.getByRole('heading', { name: 'Welcome to aft' }).waitFor();
            for (const v of await violations(page)) found.push(`setup ${scheme} ${width}px: ${v}`);
          }
        }
      } finally {
        await fresh.stop();
      }
    } finally {
      await page.close();
    }
    assert.deepEqual(found, [], `axe-core violations:\n${found.join('\n')}`);
  });
});
