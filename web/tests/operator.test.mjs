// The operator's details of the web UI in a real browser against a real `aft serve`: Halt
// asks first, a running job's duration counts up, the watchers page refreshes itself, every
// time carries its zone (a schedule's fires in its own zone), the phone-width drawer keeps
// focus and closes on Esc, focus is visible, the jobs table fits a phone, and the wording
// ("1 entry", plain paths instead of file: URLs).

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setupAndSignIn, startAft, startBrowser, unexpectedErrors } from './harness.mjs';

const LONG_SCRIPT = `Log("long job started");
while (!HaltSignalReceived) {
    Sleep(200);
}
Log("halted");
`;

const nav = (page, name) => page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name });

/** Call the REST API from the signed-in page, through the UI's own client (CSRF included). */
const call = (page, method, path, body) => page.evaluate(async ([m, p, b]) => {
  const { api } = await import('/api.js');
  return api[m](p, b);
}, [method, path, body]);

const jobStatus = async (page, id) => (await call(page, 'get', `/v1/jobs/${id}`)).status;

describe('operator details', () => {
  let aft;
  let browser;
  const dirs = [];
  before(async () => {
    aft = await startAft();
    browser = await startBrowser();
    await setupAndSignIn(browser.page, aft.url);
    await call(browser.page, 'post', '/v1/scripts', { name: 'long', description: '', body: LONG_SCRIPT });
  });
  after(async () => {
    await browser?.stop();
    await aft?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  const startLong = async (page) => {
    const { jobId } = await call(page, 'post', '/v1/jobs', { scriptName: 'long', params: {} });
    for (let i = 0; i < 100 && await jobStatus(page, jobId) !== 'running'; i += 1) await page.waitForTimeout(100);
    assert.equal(await jobStatus(page, jobId), 'running');
    return jobId;
  };

  test('Halt asks for confirmation on the jobs list and the job page; Cancel sends nothing', async () => {
    const { page } = browser;
    const id = await startLong(page);
    await page.goto(`${aft.url}/#/jobs`);
    const row = page.locator(`tr[data-job-id="${id}"]`);
    await row.getByTestId('halt-job').click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('heading', { name: 'Halt long?' }).waitFor();
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });
    const after = await call(page, 'get', `/v1/jobs/${id}`);
    assert.equal(after.status, 'running', 'Cancel leaves the job running');
    assert.equal(after.haltRequested, false, 'Cancel sends no halt signal');

    // The job page's Halt asks too; confirming halts it.
    await page.goto(`${aft.url}/#/jobs/${id}`);
    await page.getByTestId('halt-job').click();
    await page.getByRole('dialog').getByRole('button', { name: 'Halt job' }).click();
    await page.getByTestId('job-status').locator('[data-status="halted"]').waitFor({ timeout: 20000 });

    // The jobs list: Halt there also confirms before it halts.
    const second = await startLong(page);
    await page.goto(`${aft.url}/#/jobs`);
    await page.locator(`tr[data-job-id="${second}"]`).getByTestId('halt-job').click();
    await page.getByRole('dialog').getByRole('button', { name: 'Halt job' }).click();
    await page.locator(`tr[data-job-id="${second}"][data-status="halted"]`).waitFor({ timeout: 20000 });
    assert.deepEqual(unexpectedErrors(browser.errors), []);
  });

  test('a running job page counts its duration up every second and stops when the job ends; times carry their zone', async () => {
    const { page } = browser;
    const id = await startLong(page);
    await page.goto(`${aft.url}/#/jobs/${id}`);
    const durationEl = page.getByTestId('job-duration');
    await durationEl.waitFor();
    const first = await durationEl.innerText();
    // Two changes without a reload or a status change: it ticks.
    await page.waitForFunction((t) => document.querySelector('[data-testid="job-duration"]').textContent !== t, first, { timeout: 5000 });
    const second = await durationEl.innerText();
    await page.waitForFunction((t) => document.querySelector('[data-testid="job-duration"]').textContent !== t, second, { timeout: 5000 });

    // Absolute times say their zone (the test browser runs in UTC).
    const details = await page.locator('dl.meta').innerText();
    assert.match(details, /QUEUED\s+\S.*\bUTC\b/i, `queued time has its zone: ${details}`);
    assert.match(details, /STARTED\s+\S.*\bUTC\b/i, `started time has its zone: ${details}`);
    assert.match(await page.getByTestId('log-zone').innerText(), /UTC/);
    const lineTitle = await page.getByTestId('job-log').locator('time.ts').first().getAttribute('title');
    assert.match(lineTitle, /UTC/, 'a log line has its full time with the zone as tooltip');

    await call(page, 'del', `/v1/jobs/${id}`);
    await page.getByTestId('job-status').locator('[data-status="halted"]').waitFor({ timeout: 20000 });
    await page.getByTestId('log-state').getByText('Complete').waitFor();
    assert.match(await page.locator('dl.meta').innerText(), /FINISHED\s+\S.*\bUTC\b/i);
    const ended = await durationEl.innerText();
    // Nothing to wait for when it works: give a stopped clock a chance to tick wrongly.
    await page.waitForTimeout(2200);
    assert.equal(await durationEl.innerText(), ended, 'the duration stops when the job ends');
    const stored = await call(page, 'get', `/v1/jobs/${id}`);
    assert.ok(stored.finishedAt, 'the job has ended');
  });

  test("a schedule's next fires show in its own zone with the browser's time as tooltip", async () => {
    const { page } = browser;
    await call(page, 'post', '/v1/schedules', {
      name: 'rome', script: 'long', cron: '30 2 * * *', timeZone: 'Europe/Rome', params: {}, overlap: 'skip', misfire: 'skip',
    });
    await page.goto(`${aft.url}/#/schedules`);
    const fires = page.locator('tr[data-schedule="rome"] [data-testid="fire"]');
    await fires.first().waitFor();
    assert.equal(await fires.count(), 3);
    const next = (await call(page, 'get', '/v1/schedules/rome/next?n=3')).utc;
    for (let i = 0; i < 3; i += 1) {
      const text = await fires.nth(i).innerText();
      // 02:30 in Rome is 01:30 (CET) or 00:30 (CEST) in UTC, the browser's zone here.
      assert.match(text, /02:30 (CET|CEST|GMT\+1|GMT\+2)/, `fire ${i} in the schedule's zone: ${text}`);
      const title = await fires.nth(i).getAttribute('title');
      assert.match(title, /Europe\/Rome/);
      const utcHour = new Date(next[i]).getUTCHours();
      assert.match(title, new RegExp(`your time: .*0${utcHour}:30:00 UTC`), `browser time in the tooltip: ${title}`);
    }
    assert.match(await page.locator('tr[data-schedule="rome"] [data-testid="next-fires"]').innerText(), /Europe\/Rome time/);

    // The dashboard's next fires too.
    await nav(page, 'Dashboard').click();
    const dash = page.locator('[data-testid="fire"][data-zone="Europe/Rome"]').first();
    await dash.waitFor();
    assert.match(await dash.innerText(), /02:30 (CET|CEST|GMT\+1|GMT\+2)/);
    await call(page, 'del', '/v1/schedules/rome');
  });

  test('the watchers page refreshes itself and does not show a halted job as current', async () => {
    const { page } = browser;
    await call(page, 'post', '/v1/scripts', { name: 'waiter', description: '', body: 'Log("waiting");\nWaitForHaltSignal();\n' });
    await page.goto(`${aft.url}/#/watchers`);
    await page.getByRole('heading', { name: 'Watchers', exact: true }).waitFor();
    // Added behind the page's back: it shows up, running, without a reload or a click.
    await call(page, 'post', '/v1/watchers', { name: 'self', script: 'waiter', params: {} });
    const row = page.locator('tr[data-watcher="self"]');
    await row.locator('[data-status="running"]').waitFor({ timeout: 20000 });
    const current = (await call(page, 'get', '/v1/watchers/self')).currentJobId;
    assert.ok(current);
    const currentLink = row.getByTestId('current-job').locator(':scope > a');
    assert.equal(await currentLink.innerText(), current.slice(-8));

    // Its job halted from elsewhere: the page stops listing it as the current job by itself.
    await call(page, 'del', `/v1/jobs/${current}`);
    await page.waitForFunction((short) => {
      const link = document.querySelector('tr[data-watcher="self"] [data-testid="current-job"] > a');
      return !link || link.textContent !== short;
    }, current.slice(-8), { timeout: 20000 });
    assert.equal(await jobStatus(page, current), 'halted');
    await call(page, 'del', '/v1/watchers/self');
    await row.waitFor({ state: 'detached' });
  });

  test("a job's log can be searched, live lines included, and downloaded as text", async () => {
    const { page } = browser;
    await call(page, 'post', '/v1/scripts', {
      name: 'chatty', description: '',
      body: 'Log("alpha one");\nLog("beta two");\nconsole.error("Alpha three");\n',
    });
    const { jobId } = await call(page, 'post', '/v1/jobs', { scriptName: 'chatty', params: {} });
    for (let i = 0; i < 100 && !['succeeded', 'failed'].includes(await jobStatus(page, jobId)); i += 1) await page.waitForTimeout(100);
    await page.goto(`${aft.url}/#/jobs/${jobId}`);
    const log = page.getByTestId('job-log');
    await log.getByText('Alpha three').waitFor();
    const total = await log.locator('.log-line').count();
    await page.getByRole('searchbox', { name: 'Search the log' }).fill('ALPHA');
    await page.getByTestId('log-matches').getByText(`2 of ${total} lines`).waitFor();
    assert.equal(await log.locator('.log-line:visible').count(), 2);
    assert.equal(await log.locator('.log-line:visible', { hasText: 'beta two' }).count(), 0);
    await page.getByRole('searchbox', { name: 'Search the log' }).fill('');
    assert.equal(await log.locator('.log-line:visible').count(), total);
    assert.equal(await page.getByTestId('log-matches').textContent(), '');

    // The download is the whole log as text, named after the job.
    const href = await page.getByRole('link', { name: 'Download log' }).getAttribute('href');
    const file = await page.evaluate(async (url) => {
      const r = await fetch(url);
      return { status: r.status, type: r.headers.get('content-type'), disposition: r.headers.get('content-disposition'), text: await r.text() };
    }, href);
    assert.equal(file.status, 200);
    assert.match(file.type, /^text\/plain/);
    assert.equal(file.disposition, `attachment; filename="job-${jobId}.log"`);
    const lines = file.text.trimEnd().split('\n');
    assert.equal(lines.length, total, file.text);
    assert.match(file.text, /^\d{4}-\d\d-\d\dT[^ ]+ INFO  alpha one$/m);
    assert.match(file.text, /^[^ ]+ ERROR Alpha three$/m);
    assert.deepEqual(unexpectedErrors(browser.errors), []);
  });

  test('wording: "1 entry listed", and paths without file: URLs', async () => {
    const { page } = browser;
    const root = mkdtempSync(join(tmpdir(), 'aft-web-one-'));
    const source = mkdtempSync(join(tmpdir(), 'aft-web-src-'));
    dirs.push(root, source);
    writeFileSync(join(root, 'only.txt'), 'x');
    mkdirSync(join(root, 'in'));
    rmSync(join(root, 'in'), { recursive: true });
    writeFileSync(join(source, 'report.csv'), 'id\n1\n');
    await page.goto(`${aft.url}/#/vfs`);
    await page.getByTestId('new-vfs').click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Name').fill('one');
    await dialog.getByLabel('Type').selectOption('disk');
    await dialog.getByLabel('Root folder').fill(root);
    await page.getByRole('button', { name: 'Add entry' }).click();
    const entry = page.locator('tr[data-vfs="one"]');
    await entry.getByTestId('test-vfs').click();
    const result = page.getByTestId('vfs-test-result');
    await result.getByText(/connection works/).waitFor();
    const text = await result.innerText();
    assert.match(text, /\b1 entry listed/, text);
    assert.doesNotMatch(text, /1 entries/);

    await call(page, 'post', '/v1/scripts', {
      name: 'copy-one', description: '',
      body: `var v = GetVFS("one");\nif (!v.Connect()) throw new Error("connect");\nif (!v.Upload(Param("source") + "/report.csv", "/")) throw new Error("upload");\nv.Close();\n`,
    });
    const { jobId } = await call(page, 'post', '/v1/jobs', { scriptName: 'copy-one', params: { source } });
    await page.goto(`${aft.url}/#/jobs/${jobId}`);
    await page.getByTestId('job-status').locator('[data-status="succeeded"]').waitFor({ timeout: 20000 });
    const transfers = page.getByTestId('transfers-table');
    await transfers.waitFor();
    const shown = await transfers.innerText();
    assert.match(shown, /report\.csv/);
    assert.doesNotMatch(shown, /file:/, `paths are shown plain: ${shown}`);
    assert.match(shown, new RegExp(`${source.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/report\\.csv`), `the local path: ${shown}`);
  });

  test('visible focus on every control of the main pages, dashboard stat cards included', async () => {
    const { page } = browser;
    const tabThrough = async (hash, heading) => {
      await page.goto('about:blank');
      await page.goto(`${aft.url}/${hash}`);
      await page.getByRole('heading', { name: heading, exact: true }).waitFor();
      // Once loaded, the page puts focus on <main> (a landmark, not a control); Tab from there.
      await page.waitForFunction(() => document.activeElement?.id === 'main');
      const seen = [];
      for (let i = 0; i < 40; i += 1) {
        await page.keyboard.press('Tab');
        const info = await page.evaluate(() => {
          const el = document.activeElement;
          if (!el || el === document.body) return null;
          const cs = getComputedStyle(el);
          const ring = (cs.boxShadow && cs.boxShadow !== 'none') || (cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) > 0);
          return { what: `${el.tagName.toLowerCase()}${el.dataset.stat ? `[stat=${el.dataset.stat}]` : ''} ${el.textContent.trim().slice(0, 30)}`, ring };
        });
        if (info) seen.push(info);
      }
      assert.deepEqual(seen.filter((s) => !s.ring).map((s) => s.what), [], `every focused control on ${hash} shows a focus ring`);
      return seen;
    };
    await page.goto(`${aft.url}/#/`);
    await page.locator('[data-stat="running"]').waitFor();
    const dashboard = await tabThrough('#/', 'Dashboard');
    assert.ok(dashboard.some((s) => /stat=running/.test(s.what)), `Tab reaches the stat cards: ${dashboard.map((s) => s.what).join(' | ')}`);
    // The dashboard redraws itself every few seconds: the focused card keeps its focus.
    const card = page.locator('[data-stat="running"]');
    await card.focus();
    const before = await card.elementHandle();
    await page.waitForFunction((el) => !el.isConnected, before, { timeout: 15000 });
    assert.equal(await page.evaluate(() => document.activeElement?.dataset.stat), 'running', 'focus survives the refresh');
    await tabThrough('#/jobs', 'Jobs');
    await tabThrough('#/schedules', 'Schedules');
    await tabThrough('#/vfs', 'VFS Library');
  });

  test('at 390 px: the drawer closes on Esc, traps Tab and gives focus back; the jobs table fits with its Halt button', async () => {
    const { page } = browser;
    await page.setViewportSize({ width: 390, height: 844 });
    try {
      const id = await startLong(page);
      await page.goto(`${aft.url}/#/jobs`);
      const halt = page.locator(`tr[data-job-id="${id}"]`).getByTestId('halt-job');
      await halt.waitFor();
      const fit = await page.evaluate((jobId) => {
        const button = document.querySelector(`tr[data-job-id="${jobId}"] [data-testid="halt-job"]`).getBoundingClientRect();
        const wrap = document.querySelector('[data-testid="jobs-table"]').parentElement;
        return {
          right: button.right, viewport: window.innerWidth,
          pageScroll: document.documentElement.scrollWidth, wrapScroll: wrap.scrollWidth, wrapClient: wrap.clientWidth,
          cells: [...document.querySelectorAll(`tr[data-job-id="${jobId}"] td`)].map((td) => `${Math.round(td.getBoundingClientRect().width)}:${td.textContent.slice(0, 20)}`),
        };
      }, id);
      assert.ok(fit.right <= fit.viewport, `Halt inside the viewport: ${JSON.stringify(fit)}`);
      assert.ok(fit.pageScroll <= fit.viewport, `no horizontal page overflow: ${JSON.stringify(fit)}`);
      assert.ok(fit.wrapScroll <= fit.wrapClient, `the table does not scroll sideways: ${JSON.stringify(fit)}`);
      await call(page, 'del', `/v1/jobs/${id}`);

      const menu = page.getByRole('button', { name: 'Menu' });
      await menu.click();
      assert.equal(await menu.getAttribute('aria-expanded'), 'true');
      const inSidebar = () => page.evaluate(() => document.getElementById('sidebar').contains(document.activeElement));
      await page.waitForFunction(() => document.getElementById('sidebar').contains(document.activeElement), null, { timeout: 2000 })
        .catch(() => {});
      assert.equal(await inSidebar(), true, `opening moves focus into the drawer: ${await page.evaluate(() => document.activeElement?.outerHTML.slice(0, 80))}`);
      const stops = await page.evaluate(() => [...document.querySelectorAll('#sidebar a[href], #sidebar button')].length);
      for (let i = 0; i < stops + 3; i += 1) {
        await page.keyboard.press('Tab');
        assert.equal(await inSidebar(), true, `Tab ${i + 1} stays in the drawer`);
      }
      for (let i = 0; i < 3; i += 1) {
        await page.keyboard.press('Shift+Tab');
        assert.equal(await inSidebar(), true, `Shift+Tab ${i + 1} stays in the drawer`);
      }
      await page.keyboard.press('Escape');
      assert.equal(await menu.getAttribute('aria-expanded'), 'false', 'Esc closes the drawer');
      assert.equal(await page.evaluate(() => document.querySelector('.shell').classList.contains('nav-open')), false);
      assert.equal(await menu.evaluate((el) => el === document.activeElement), true, 'focus is back on the menu button');
      assert.deepEqual(unexpectedErrors(browser.errors), []);
    } finally {
      await page.setViewportSize({ width: 1360, height: 860 });
    }
  });
});
