// History where it happens, and pickers for fixed choices, in a real browser against a real
// `aft serve`: a schedule's page lists its slots (fired with the job's outcome and a link
// to it, skipped), the schedules list shows each schedule's last result and runs one now;
// settings with fixed choices are picked, not typed (smtp-tls, a secret's name, a boolean).
// It also saves the docs' screenshots of the dashboard, a job and a schedule's history at
// desktop and phone width (only from a run whose checks passed).

import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { screenshotDir, setupAndSignIn, startAft, startBrowser, unexpectedErrors } from './harness.mjs';

const call = (page, method, path, body) => page.evaluate(async ([m, p, b]) => {
  const { api } = await import('/api.js');
  return api[m](p, b);
}, [method, path, body]);

const REPORT = `Log("nightly report for " + Param("region"));
for (var i = 1; i <= 5; i++) {
    Log("region " + Param("region") + ": batch " + i + " of 5 sent");
}
SetResult("5 batches");
`;

describe('history and pickers', () => {
  let aft;
  let browser;
  let passed = 0;
  before(async () => {
    aft = await startAft();
    browser = await startBrowser();
    await setupAndSignIn(browser.page, aft.url);
    const { page } = browser;
    await call(page, 'post', '/v1/scripts', { name: 'report', description: 'the nightly report', body: REPORT });
    await call(page, 'post', '/v1/scripts', { name: 'waiter', description: '', body: 'WaitForHaltSignal();\n' });
  });
  after(async () => {
    await browser?.stop();
    await aft?.stop();
  });

  test("a schedule's page shows its slots: fired with the job's outcome and link, skipped while one runs", async () => {
    const { page } = browser;
    // Every second, on a script that never ends by itself: the first slot fires, the next
    // ones are skipped (overlap: skip) while its job runs.
    await call(page, 'post', '/v1/schedules', { name: 'busy', script: 'waiter', cron: '* * * * * *', timeZone: 'UTC', params: {}, overlap: 'skip', misfire: 'skip' });
    await page.goto(`${aft.url}/#/schedules`);
    await page.locator('tr[data-schedule="busy"]').getByTestId('schedule-link').click();
    await page.getByRole('heading', { name: 'Schedule busy' }).waitFor();
    const history = page.getByTestId('slot-history');
    // The page refreshes itself: fired and skipped slots appear without a reload.
    await history.locator('tr[data-status="fired"]').first().waitFor({ timeout: 20000 });
    await history.locator('tr[data-status="skipped"]').first().waitFor({ timeout: 20000 });
    const fired = history.locator('tr[data-status="fired"]').first();
    const jobLink = fired.getByTestId('slot-job');
    const href = await jobLink.getAttribute('href');
    const jobId = decodeURIComponent(href.replace('#/jobs/', ''));
    const slots = await call(page, 'get', '/v1/schedules/busy/slots');
    const slot = slots.find((s) => s.jobId === jobId);
    assert.ok(slot, `the linked job is a slot's job: ${JSON.stringify(slots)}`);
    assert.equal(slot.status, 'fired');
    assert.equal(slot.jobStatus, 'running', 'the slot says how its job is doing');
    assert.match(await fired.innerText(), /running/);
    assert.match(await page.getByTestId('slot-counts').innerText(), /[1-9]\d* fired · [1-9]\d* skipped/);

    // Stopping it: the list shows its last result; its job ends halted, and the history says so.
    await call(page, 'put', '/v1/schedules/busy/enabled', { enabled: false });
    await call(page, 'del', `/v1/jobs/${jobId}`);
    await page.waitForFunction((id) => [...document.querySelectorAll('[data-testid="slot-history"] [data-testid="slot-job"]')]
      .some((a) => a.getAttribute('href') === `#/jobs/${id}` && a.querySelector('[data-status="halted"]')), jobId, { timeout: 20000 });
    await jobLink.click();
    await page.getByTestId('job-status').locator('[data-status="halted"]').waitFor();
    assert.ok(page.url().endsWith(`#/jobs/${jobId}`));
    assert.deepEqual(unexpectedErrors(browser.errors), []);
    passed += 1;
  });

  test("a slot that could not fire shows as failed with the reason, and the page says the script is gone", async () => {
    const { page } = browser;
    await call(page, 'post', '/v1/scripts', { name: 'doomed', description: '', body: 'Log("x");\n' });
    await call(page, 'post', '/v1/schedules', { name: 'orphan', script: 'doomed', cron: '* * * * * *', timeZone: 'UTC', params: {}, overlap: 'skip', misfire: 'skip', enabled: false });
    // Deleted past its user (which that disables), then the schedule turned back on.
    await call(page, 'del', '/v1/scripts/doomed?force=true');
    await call(page, 'put', '/v1/schedules/orphan/enabled', { enabled: true });
    await page.goto(`${aft.url}/#/schedules/orphan`);
    const failed = page.getByTestId('slot-history').locator('tr[data-status="failed"]').first();
    await failed.waitFor({ timeout: 20000 });
    const detail = await failed.getByTestId('slot-detail').innerText();
    assert.match(detail, /doomed/, `the reason names the script: ${detail}`);
    assert.equal(await failed.getByTestId('slot-job').count(), 0, 'a failed slot has no job');
    await page.getByText('Its script doomed no longer exists').waitFor();
    await call(page, 'put', '/v1/schedules/orphan/enabled', { enabled: false });
    passed += 1;
  });

  test('the schedules list: last result beside each schedule, and Run now with its parameters', async () => {
    const { page } = browser;
    await call(page, 'post', '/v1/schedules', { name: 'nightly', script: 'report', cron: '0 2 * * *', timeZone: 'Europe/Rome', params: { region: 'eu' }, overlap: 'skip', misfire: 'skip' });
    await page.goto(`${aft.url}/#/schedules`);
    const nightly = page.locator('tr[data-schedule="nightly"]');
    await nightly.waitFor();
    assert.match(await nightly.getByText('not fired yet').innerText(), /not fired yet/);
    // The last result of `busy`: its newest slot (skipped, or fired with its job).
    const last = page.locator('tr[data-schedule="busy"] [data-testid="last-result"]');
    const newest = (await call(page, 'get', '/v1/schedules/busy/slots?limit=1'))[0];
    assert.equal(await last.locator(':scope > [data-status]').first().getAttribute('data-status'), newest.status);

    await nightly.getByRole('button', { name: 'Run now: schedule nightly' }).click();
    await page.getByTestId('job-status').locator('[data-status="succeeded"]').waitFor({ timeout: 20000 });
    const jobId = decodeURIComponent(page.url().split('#/jobs/')[1]);
    const job = await call(page, 'get', `/v1/jobs/${jobId}`);
    assert.equal(job.scriptName, 'report');
    assert.deepEqual(job.params, { region: 'eu' }, 'Run now passes the schedule\'s parameters');
    assert.equal(job.result, '5 batches');
    passed += 1;
  });

  test('settings with fixed choices are picked: smtp-tls, the SMTP password secret, a boolean', async () => {
    const { page } = browser;
    await call(page, 'put', '/v1/secrets/smtp-pass', { value: 'x' });
    await call(page, 'put', '/v1/secrets/other-pass', { value: 'y' });
    await page.goto(`${aft.url}/#/settings`);
    // smtp-tls: a list of exactly the values the service accepts.
    const tls = page.locator('form[data-setting="smtp-tls"]');
    const tlsSelect = tls.getByRole('combobox', { name: 'smtp-tls' });
    await tlsSelect.waitFor();
    assert.deepEqual(await tlsSelect.locator('option').allInnerTexts(), ['starttls', 'tls', 'none']);
    await tlsSelect.selectOption('tls');
    await tls.getByRole('button', { name: /Save/ }).click();
    await page.getByText('smtp-tls = tls').waitFor();
    // The password secret: the stored secrets, and none.
    const secret = page.locator('form[data-setting="smtp-password-secret"]');
    const secretSelect = secret.getByRole('combobox', { name: 'smtp-password-secret' });
    assert.deepEqual(await secretSelect.locator('option').allInnerTexts(), ['(none)', 'other-pass', 'smtp-pass']);
    await secretSelect.selectOption('smtp-pass');
    await secret.getByRole('button', { name: /Save/ }).click();
    await page.getByText('smtp-password-secret = smtp-pass').waitFor();
    // A boolean: a checkbox.
    const fsync = page.locator('form[data-setting="local-fsync"]');
    const box = fsync.getByRole('checkbox', { name: 'local-fsync' });
    assert.equal(await box.isChecked(), true);
    await box.uncheck();
    await fsync.getByRole('button', { name: /Save/ }).click();
    await page.getByText('local-fsync = false').waitFor();

    const settings = Object.fromEntries((await call(page, 'get', '/v1/settings')).map((s) => [s.key, s]));
    assert.equal(settings['smtp-tls'].value, 'tls');
    assert.equal(settings['smtp-password-secret'].value, 'smtp-pass');
    assert.equal(settings['local-fsync'].value, 'false');
    // The pickers come from the kinds the service gives, not from a list in the page.
    assert.equal(settings['smtp-tls'].kind, 'choice');
    assert.equal(settings['smtp-password-secret'].kind, 'secret');
    assert.equal(settings['local-fsync'].kind, 'boolean');
    await page.reload();
    assert.equal(await page.locator('form[data-setting="smtp-tls"] select').inputValue(), 'tls');
    assert.equal(await page.locator('form[data-setting="local-fsync"] input[type=checkbox]').isChecked(), false);
    passed += 1;
  });

  test("screenshots for the docs: the dashboard, a job and a schedule's history, desktop and phone", async () => {
    const { page } = browser;
    // A schedule with a history worth a picture: a few fired slots with their jobs.
    await call(page, 'post', '/v1/schedules', { name: 'eu-report', script: 'report', cron: '* * * * * *', timeZone: 'Europe/Rome', params: { region: 'eu' }, overlap: 'skip', misfire: 'skip' });
    for (let i = 0; i < 200; i += 1) {
      const slots = await call(page, 'get', '/v1/schedules/eu-report/slots');
      if (slots.filter((s) => s.jobStatus === 'succeeded').length >= 4) break;
      await page.waitForTimeout(100);
    }
    await call(page, 'put', '/v1/schedules/eu-report/enabled', { enabled: false });
    const [slot] = (await call(page, 'get', '/v1/schedules/eu-report/slots')).filter((s) => s.jobStatus === 'succeeded');
    assert.ok(slot, 'the schedule ran its script');
    const shots = [
      ['dashboard', '#/', () => page.locator('[data-stat="running"]').waitFor()],
      ['job', `#/jobs/${slot.jobId}`, () => page.getByTestId('log-state').getByText('Complete').waitFor()],
      ['schedule-history', '#/schedules/eu-report', () => page.getByTestId('slots-table').waitFor()],
    ];
    const taken = [];
    for (const [width, height, suffix] of [[1360, 860, ''], [390, 844, '-phone']]) {
      await page.setViewportSize({ width, height });
      for (const [name, hash, ready] of shots) {
        await page.goto(`${aft.url}/${hash}`);
        await ready();
        await page.waitForFunction(() => !document.querySelector('main .loading'));
        await page.evaluate(() => document.getElementById('toasts')?.replaceChildren());
        taken.push([`${name}${suffix}.png`, await page.screenshot()]);
      }
    }
    await page.setViewportSize({ width: 1360, height: 860 });
    // The dashboard's desktop picture is e2e.test.mjs's dashboard.png; the rest are these.
    if (passed === 4) {
      mkdirSync(screenshotDir, { recursive: true });
      for (const [name, png] of taken) {
        if (name !== 'dashboard.png') writeFileSync(join(screenshotDir, name), png);
      }
    }
    assert.equal(taken.length, 6);
  });
});
