// Test harness: a real `aft serve` (target/debug/aft) on a free loopback port with a
// temporary data directory, and Debian's chromium driven by playwright-core.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
/** The repository root. */
export const repoRoot = resolve(here, '..', '..');
/** Where the tests save screenshots for the docs. */
export const screenshotDir = join(repoRoot, 'docs', 'img');
const aftBinary = process.env.AFT_BIN || join(repoRoot, 'target', 'debug', 'aft');
const chromiumPath = process.env.AFT_CHROMIUM || '/usr/bin/chromium';

function freePort() {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.unref();
    server.on('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });
}

/** Start `aft serve` on a free port with a fresh data dir; resolves once it answers. */
export async function startAft() {
  if (!existsSync(aftBinary)) {
    throw new Error(`${aftBinary} is missing: build it with 'cargo build -p aft' (ci/test.sh does), or set AFT_BIN`);
  }
  const data = mkdtempSync(join(tmpdir(), 'aft-web-'));
  const port = await freePort();
  const url = `https://127.0.0.1:${port}`;
  const child = spawn(aftBinary, ['--data', data, 'serve', '--listen', `127.0.0.1:${port}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn' },
  });
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  const exited = new Promise((ok) => child.on('exit', (code) => ok(code)));
  const deadline = Date.now() + 30000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`aft serve exited with ${child.exitCode}:\n${output}`);
    if (/listening on/.test(output)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`aft serve did not start within 30 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    data,
    output: () => output,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(data, { recursive: true, force: true });
    },
  };
}

/**
 * Launch chromium with a fresh profile; `errors` collects console errors and page
 * errors of every page so tests can assert there were none (CSP violations included).
 */
export async function startBrowser() {
  if (!existsSync(chromiumPath)) {
    throw new Error(`${chromiumPath} is missing: install Debian's chromium (ci/install.sh reads ci/peers/chromium.apt)`);
  }
  const profile = mkdtempSync(join(tmpdir(), 'aft-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
    ignoreHTTPSErrors: true,
    viewport: { width: 1360, height: 860 },
    deviceScaleFactor: 1,
    colorScheme: 'light',
    locale: 'en-GB',
    timezoneId: 'UTC',
  });
  const errors = [];
  const watch = (page) => {
    page.on('console', (msg) => {
      if (msg.type() === 'error' || /Content[- ]Security[- ]Policy/i.test(msg.text())) errors.push(`console: ${msg.text()}`);
    });
    page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  };
  context.pages().forEach(watch);
  context.on('page', watch);
  context.setDefaultTimeout(15000);
  const page = context.pages()[0] || await context.newPage();
  return {
    context,
    page,
    errors,
    async stop() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Console errors that are not faults: failed requests the UI expects and shows itself. */
export function unexpectedErrors(errors) {
  return errors.filter((e) => !/Failed to load resource: the server responded with a status of (401|404|409)/.test(e));
}

/** Create the first admin on the setup page and sign in with it. */
export async function setupAndSignIn(page, url, { username = 'admin', password = 'correct horse battery' } = {}) {
  await page.goto(url);
  await page.getByRole('heading', { name: 'Welcome to aft' }).waitFor();
  await page.getByLabel('User name').fill(username);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByLabel('Repeat password').fill(password);
  await page.getByRole('button', { name: 'Create admin' }).click();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
  return { username, password };
}
