// Integrity and history in a real browser against a real `aft serve`: "used by" links on
// scripts, secrets and VFS entries; deleting something in use is refused with its users and
// "Delete anyway" disables them; a schedule or watcher whose script is gone shows as broken
// (its list and the dashboard); script versions with a diff and a restore; the job page
// names the version it ran; the retry policy form; "Run now" and the last result on the
// scripts list. It also saves the docs' screenshots of a script's versions with a diff, at
// desktop and phone width (only from a run whose checks passed).

import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { screenshotDir, setupAndSignIn, startAft, startBrowser, unexpectedErrors } from './harness.mjs';

const MOVER_V1 = `// Opens the partner entry only when asked.
if (Param("go") == "yes") {
    var remote = GetVFS("partner");
}
Log("checked");
`;
const MOVER_V2 = `// Opens the partner entry only when asked.
if (Param("go") == "yes") {
    var remote = GetVFS("partner");
}
Log("checked twice");
`;

/** Call the REST API from the signed-in page, through the UI's own client (CSRF included). */
const call = (page, method, path, body) => page.evaluate(async ([m, p, b]) => {
  const { api } = await import('/api.js');
  return api[m](p, b);
}, [method, path, body]);

describe('integrity, versions and history', () => {
  let aft;
  let browser;
  let passed = 0;
  before(async () => {
    aft = await startAft();
    browser = await startBrowser();
    const { page } = browser;
    await setupAndSignIn(page, aft.url);
    await call(page, 'put', '/v1/secrets/partnerPass', { value: 'hunter2' });
    await call(page, 'post', '/v1/vfs', { name: 'partner', type: 'sftp', settings: { Host: '127.0.0.1:2222', User: 'u', PassFromSecret: 'partnerPass' } });
    await call(page, 'post', '/v1/scripts', { name: 'mover', description: '', body: MOVER_V1 });
    await call(page, 'post', '/v1/scripts', { name: 'spare', description: '', body: 'Log("spare");\n' });
    await call(page, 'post', '/v1/schedules', { name: 'nightly', script: 'mover', cron: '0 3 * * *' });
    await call(page, 'post', '/v1/watchers', { name: 'inbox', script: 'mover' });
  });
  after(async () => {
    await browser?.stop();
    await aft?.stop();
  });

  test('the scripts list shows versions, users and the last result, and runs a script now', async () => {
    const { page } = browser;
    await page.goto(`${aft.url}/#/scripts`);
    const row = page.locator('tr[data-script="spare"]');
    await row.getByText('never run').waitFor();
    assert.match(await row.innerText(), /v1/);
    const moverUsers = page.locator('tr[data-script="mover"] [data-testid="script-used-by"]');
    await moverUsers.locator('[data-used-by="schedule/nightly"]').waitFor();
    await moverUsers.locator('[data-used-by="watcher/inbox"]').waitFor();

    await row.getByRole('button', { name: 'Run now: spare' }).click();
    await page.waitForURL(/#\/jobs\/[0-9a-f-]+$/);
    const jobId = decodeURIComponent(page.url().split('#/jobs/')[1]);
    await page.getByTestId('job-status').locator('[data-status="succeeded"]').waitFor({ timeout: 20000 });
    await page.getByTestId('script-version').getByText('v1').waitFor();

    await page.goto(`${aft.url}/#/scripts`);
    const last = page.locator('tr[data-script="spare"] [data-testid="last-result"]');
    await last.locator('[data-status="succeeded"]').waitFor();
    assert.equal(await last.locator('a').getAttribute('href'), `#/jobs/${encodeURIComponent(jobId)}`);
    assert.deepEqual(unexpectedErrors(browser.errors), []);
    passed += 1;
  });

  test('a save keeps a version; the diff shows the change; restore makes a new version', async () => {
    const { page } = browser;
    await page.goto(`${aft.url}/#/scripts/mover`);
    await page.getByTestId('script-used-by').locator('[data-used-by="schedule/nightly"]').waitFor();
    await page.locator('[data-testid="versions-table"] tr[data-version="1"]').waitFor();

    await page.getByTestId('editor-input').fill(MOVER_V2);
    await page.getByTestId('save-script').click();
    await page.locator('[data-testid="versions-table"] tr[data-version="2"]').waitFor();
    // Compare v1 with v2 (the defaults: the one before and the newest).
    assert.equal(await page.getByTestId('diff-from').inputValue(), '1');
    assert.equal(await page.getByTestId('diff-to').inputValue(), '2');
    await page.getByTestId('show-diff').click();
    const diff = page.getByTestId('diff');
    await diff.waitFor();
    assert.equal(await diff.locator('tr[data-op="-"]').count(), 1);
    assert.equal(await diff.locator('tr[data-op="+"]').count(), 1);
    assert.match(await diff.locator('tr[data-op="-"]').innerText(), /Log\("checked"\);/);
    assert.match(await diff.locator('tr[data-op="+"]').innerText(), /checked twice/);

    // Restore v1: a new version 3 with v1's source, in the editor and in the store.
    await page.locator('tr[data-version="1"]').getByRole('button', { name: 'Restore version 1' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Restore' }).click();
    await page.locator('[data-testid="versions-table"] tr[data-version="3"]').waitFor();
    assert.equal(await page.getByTestId('editor-input').inputValue(), MOVER_V1);
    const stored = await call(page, 'get', '/v1/scripts/mover');
    assert.equal(stored.body, MOVER_V1);
    assert.equal(stored.version, 3);
    assert.deepEqual(unexpectedErrors(browser.errors), []);
    passed += 1;
  });

  test('the retry policy form saves the policy and keeps the rest of it', async () => {
    const { page } = browser;
    await call(page, 'put', '/v1/scripts/spare/policy', { chain: { onSuccess: ['mover'], onFailure: [] } });
    await page.goto(`${aft.url}/#/scripts/spare`);
    const form = page.getByTestId('retry-form');
    await form.waitFor();
    await form.getByTestId('retry-enabled').check();
    await form.getByLabel('Attempts').fill('4');
    await form.getByLabel('Backoff').selectOption('fixed');
    await form.getByLabel('First wait (seconds)').fill('30');
    await form.getByLabel('Only exit codes').fill('75, 76');
    await form.getByTestId('save-policy').click();
    await page.getByText('Retry policy of spare saved.').waitFor();
    const policy = await call(page, 'get', '/v1/scripts/spare/policy');
    assert.equal(policy.retry.attempts, 4);
    assert.equal(policy.retry.backoff, 'fixed');
    assert.equal(policy.retry.delayMs, 30000);
    assert.deepEqual(policy.retry.exitCodes, [75, 76]);
    assert.deepEqual(policy.chain.onSuccess, ['mover'], 'the chain is kept');

    // Turning it off removes the retry policy only.
    await form.getByTestId('retry-enabled').uncheck();
    await form.getByTestId('save-policy').click();
    await page.getByText('spare no longer retries.').waitFor();
    const off = await call(page, 'get', '/v1/scripts/spare/policy');
    assert.equal(off.retry ?? null, null);
    assert.deepEqual(off.chain.onSuccess, ['mover']);
    assert.deepEqual(unexpectedErrors(browser.errors), []);
    passed += 1;
  });

  test('secrets and VFS entries show their users; a delete in use is refused until "Delete anyway"', async () => {
    const { page } = browser;
    await page.goto(`${aft.url}/#/secrets`);
    const secretRow = page.locator('tr[data-secret="partnerPass"]');
    await secretRow.locator('[data-used-by="vfs/partner"]').waitFor();
    await secretRow.getByRole('button', { name: 'Delete secret partnerPass' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
    const inUse = page.getByTestId('in-use-dialog');
    await inUse.locator('[data-used-by="vfs/partner"]').waitFor();
    await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
    const secrets = await call(page, 'get', '/v1/secrets');
    assert.ok(secrets.some((s) => s.name === 'partnerPass'), 'Cancel keeps the secret');

    await page.goto(`${aft.url}/#/vfs`);
    const vfsRow = page.locator('tr[data-vfs="partner"]');
    await vfsRow.locator('[data-used-by="script/mover"]').waitFor();
    await vfsRow.getByRole('button', { name: 'Delete partner' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
    await page.getByTestId('in-use-dialog').locator('[data-used-by="watcher/inbox"]').waitFor();
    await page.getByTestId('delete-anyway').click();
    await page.getByText('Deleted VFS entry partner. Disabled watcher/inbox.').waitFor();
    await vfsRow.waitFor({ state: 'detached' });
    const inbox = await call(page, 'get', '/v1/watchers/inbox');
    assert.equal(inbox.enabled, false, 'the watcher using it was disabled');
    assert.deepEqual(unexpectedErrors(browser.errors), []);
    passed += 1;
  });

  test('deleting a script in use disables its schedule, which then shows as broken', async () => {
    const { page } = browser;
    await page.goto(`${aft.url}/#/scripts/mover`);
    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
    await page.getByTestId('in-use-dialog').locator('[data-used-by="schedule/nightly"]').waitFor();
    await page.getByTestId('delete-anyway').click();
    await page.waitForURL(/#\/scripts$/);
    const nightly = await call(page, 'get', '/v1/schedules/nightly');
    assert.equal(nightly.enabled, false);

    await page.goto(`${aft.url}/#/schedules`);
    await page.locator('tr[data-schedule="nightly"] [data-testid="broken"]').waitFor();
    await page.goto(`${aft.url}/#/watchers`);
    await page.locator('tr[data-watcher="inbox"] [data-testid="broken"]').waitFor();
    await page.goto(`${aft.url}/#/`);
    const broken = page.getByTestId('broken-list');
    await broken.locator('[data-broken="schedule/nightly"]').waitFor();
    await broken.locator('[data-broken="watcher/inbox"]').waitFor();
    assert.deepEqual(unexpectedErrors(browser.errors), []);
    passed += 1;
  });

  test("screenshots for the docs: a script's versions and a diff, desktop and phone", async () => {
    const { page } = browser;
    const v1 = 'var files = ListFiles("/data/out", "*.csv");\nLog("sending " + files.length);\n';
    const v2 = 'var files = ListFiles("/data/out", "*.csv");\nif (files.length == 0) {\n    Exit(0);\n}\nLog("sending " + files.length + " files");\n';
    await call(page, 'post', '/v1/scripts', { name: 'send-reports', description: 'Nightly CSV upload', body: v1 });
    await call(page, 'put', '/v1/scripts/send-reports', { body: v2 });
    const taken = [];
    for (const [suffix, size] of [['', { width: 1360, height: 860 }], ['-phone', { width: 390, height: 844 }]]) {
      await page.setViewportSize(size);
      await page.goto(`${aft.url}/#/scripts/send-reports`);
      await page.locator('[data-testid="versions-table"] tr[data-version="2"]').waitFor();
      await page.getByTestId('show-diff').click();
      await page.getByTestId('diff').waitFor();
      await page.evaluate(() => document.getElementById('toasts')?.replaceChildren());
      const card = page.locator('section.card', { has: page.getByTestId('versions') });
      taken.push([`script-versions${suffix}.png`, await card.screenshot()]);
    }
    await page.setViewportSize({ width: 1360, height: 860 });
    assert.equal(taken.length, 2);
    if (passed === 5) {
      mkdirSync(screenshotDir, { recursive: true });
      for (const [name, png] of taken) writeFileSync(join(screenshotDir, name), png);
    }
  });
});
