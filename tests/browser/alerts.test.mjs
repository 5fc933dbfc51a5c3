// alerts.test.mjs: the Alerts pages of joey's web UI in headless Chromium.
//
// Makes an admin and a viewer with the CLI, starts a webhook receiver (node:http on
// 127.0.0.1) and `joey serve` on a copy of the demo config, then: the admin opens
// Alerts from the navigation, creates a webhook alert with the form (a missing secret
// first: the form says so; then saved), sends a test message (the receiver gets one
// POST whose HMAC-SHA256 signature verifies with the secret typed in), sees it listed as
// sent; the form shows the secret and the URL only as ****, changing the URL without
// typing the secret again is refused; the page text never holds the secret or the URL.
// The viewer sees the alert but cannot create, change or test one. Every form control
// has a label; no page error. Prints "N passed, N failed"; exits 1 on a failure.
import { spawn, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { JOEY, SRC, CHROMIUM, log, sleep, assert, freePort, until as untilEvery, Steps, signIn, checkLabels } from './lib.mjs';

const ADMIN = { name: 'ada', role: 'admin', pw: `ada-${crypto.randomBytes(6).toString('hex')}` };
const VIEWER = { name: 'vera', role: 'viewer', pw: `vera-${crypto.randomBytes(6).toString('hex')}` };
const SECRET = `whsec-${crypto.randomBytes(10).toString('hex')}`;
const URL_TOKEN = `tok${crypto.randomBytes(8).toString('hex')}`;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joey-ui-alerts.'));
const children = [];
let browser;
let page;
const pageErrors = [];
const until = (what, fn, ms = 15000, every = 150) => untilEvery(what, fn, ms, every);
function joeyEnv(extra = {}) {
  const env = { ...process.env, ASAN_OPTIONS: process.env.ASAN_OPTIONS || 'detect_leaks=0', ...extra };
  delete env.JOEY_API_TOKEN;
  return env;
}
const steps = new Steps({ timed: false });
const { step } = steps;

async function main() {
  // the receiver
  const got = [];
  const recv = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => { got.push({ url: req.url, headers: req.headers, body: Buffer.concat(chunks) }); res.writeHead(200); res.end('ok'); });
  });
  await new Promise((r) => recv.listen(0, '127.0.0.1', r));
  const hook = `http://127.0.0.1:${recv.address().port}/hook/${URL_TOKEN}`;

  // config, accounts, serve
  const cfg = path.join(tmp, 'config');
  fs.cpSync(path.join(SRC, 'examples/demo/config'), cfg, { recursive: true });
  fs.rmSync(path.join(cfg, 'schedules'), { recursive: true, force: true }); // no runs against a Braze that is not there
  execFileSync('sqlite3', [path.join(tmp, 'demo.db')], { input: fs.readFileSync(path.join(SRC, 'examples/demo/demo.sql')) });
  const stateFile = path.join(tmp, 'state/joey.db');
  fs.mkdirSync(path.dirname(stateFile));
  for (const u of [ADMIN, VIEWER]) {
    execFileSync(JOEY, ['user', 'add', u.name, '--role', u.role, '--password-stdin', '--config', cfg, '--state', stateFile],
      { input: `${u.pw}\n`, env: joeyEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
  }
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const out = fs.openSync(path.join(tmp, 'serve.log'), 'w');
  const serve = spawn(JOEY, ['serve', '--config', cfg, '--state', stateFile, '--listen', `127.0.0.1:${port}`],
    { env: joeyEnv({ JOEY_ALLOW_ENDPOINTS: 'http://127.0.0.1:*', BRAZE_API_KEY: 'demo-key' }), stdio: ['ignore', out, out] });
  serve.on('exit', (code) => { serve.exited = { code }; });
  children.push(serve);
  await until('joey serve', async () => {
    if (serve.exited) throw new Error(fs.readFileSync(path.join(tmp, 'serve.log'), 'utf8').slice(-2000));
    const r = await fetch(`${base}/healthz`).catch(() => null);
    return r && r.ok;
  }, 20000, 100);

  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  const ctxA = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await ctxA.newPage();
  page.setDefaultTimeout(15000);
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('dialog', (d) => d.accept());

  await step('the admin opens Alerts from the navigation', async () => {
    await page.goto(`${base}/`);
    await signIn(page, ADMIN);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Alerts', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Alerts' }).waitFor();
    await page.getByText('No alerts yet').waitFor();
  });

  await step('the form asks for what is missing, then saves a webhook alert', async () => {
    await page.getByRole('link', { name: 'New alert' }).click();
    await page.getByRole('heading', { level: 1, name: 'New alert' }).waitFor();
    await checkLabels(page, 'new alert');
    await page.getByLabel('Name', { exact: true }).fill('Ops hook');
    await page.getByLabel('URL', { exact: true }).fill(hook);
    await page.getByLabel('A run failed').check();
    await page.getByLabel('No successful run for longer than', { exact: true }).check();
    await page.getByLabel('No successful run for longer than: value').fill('6h');
    await page.getByRole('button', { name: 'Save alert' }).click();
    // no secret: the server's validation names the field (in the technical detail behind
    // the toggle) and says what is missing in words
    await page.locator('#diagnostics').waitFor();
    const diag = await page.locator('#diagnostics').textContent();
    assert(diag.includes('options.secret') && /secret/i.test(await page.locator('#diagnostics').innerText()), `diagnostics: ${diag}`);
    await page.getByLabel('Signing secret').fill(SECRET);
    await page.getByRole('button', { name: 'Save alert' }).click();
    await page.getByRole('heading', { level: 1, name: 'Alert: Ops hook' }).waitFor();
    const stored = fs.readFileSync(path.join(cfg, 'alerts/ops_hook.json'), 'utf8');
    assert(!stored.includes(SECRET) && !stored.includes(URL_TOKEN) && stored.includes('${JOEY_SECRET_ALERT_OPS_HOOK_SECRET}'), `config file: ${stored}`);
    assert(stored.includes('"noSuccessFor": "6h"'), `noSuccessFor: ${stored}`);
  });

  await step('a test message reaches the receiver, signed, and is listed as sent', async () => {
    await page.getByRole('button', { name: 'Send test message' }).click();
    await page.getByText('Test message sent.').waitFor();
    await until('the receiver', () => got.length === 1);
    const r = got[0];
    const want = `sha256=${crypto.createHmac('sha256', SECRET).update(r.body).digest('hex')}`;
    assert(r.headers['x-joey-signature'] === want, `signature ${r.headers['x-joey-signature']} != ${want}`);
    const ev = JSON.parse(r.body);
    assert(ev.event === 'alert.test' && ev.alert.name === 'Ops hook' && String(ev.timestamp) === r.headers['x-joey-timestamp'], JSON.stringify(ev));
    await page.locator('main table').filter({ hasText: 'test' }).getByText('sent', { exact: true }).first().waitFor();
  });

  await step('secrets show only as ****; a new URL without the secret typed again is refused', async () => {
    await page.reload();
    await page.getByRole('heading', { level: 1, name: 'Alert: Ops hook' }).waitFor();
    for (const label of ['URL', 'Signing secret']) {
      const v = await page.getByLabel(label, { exact: true }).inputValue();
      assert(v === '****', `${label} shows ${v}`);
    }
    const text = await page.locator('body').innerText();
    assert(!text.includes(SECRET) && !text.includes(URL_TOKEN), 'the page text holds a secret');
    await page.getByLabel('URL', { exact: true }).fill(`${hook}x`);
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByText('type the secret again').first().waitFor();
  });

  await step('the list shows the alert with its channel and triggers', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Alerts', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Alerts' }).waitFor();
    const row = page.locator('main table').first().locator('tr', { hasText: 'Ops hook' });
    await row.getByText('Webhook (signed JSON)').waitFor();
    await row.getByText('run failed, no success for 6h').waitFor();
    await checkLabels(page, 'alerts list');
  });

  await step('a viewer sees the alert but may not create, change or test it', async () => {
    const ctxV = await browser.newContext();
    const p = await ctxV.newPage();
    p.on('pageerror', (e) => pageErrors.push(String(e)));
    await p.goto(`${base}/#/alerts`);
    await signIn(p, VIEWER);
    await p.getByRole('heading', { level: 1, name: 'Alerts' }).waitFor();
    assert(await p.getByRole('link', { name: 'New alert' }).count() === 0, 'a viewer sees "New alert"');
    assert(await p.getByRole('button', { name: /Send test/ }).first().isDisabled(), 'Send test is enabled for a viewer');
    await p.getByRole('link', { name: 'Ops hook', exact: true }).click();
    await p.getByRole('heading', { level: 1, name: 'Alert: Ops hook' }).waitFor();
    await p.getByText('Read only.').waitFor();
    assert(await p.getByLabel('Name', { exact: true }).isDisabled(), 'the name is editable for a viewer');
    const r = await p.evaluate(async () => {
      const s = await (await fetch('/api/v1/session')).json();
      return (await fetch('/api/v1/alerts/ops_hook/test', { method: 'POST', headers: { 'X-CSRF-Token': s.csrf } })).status;
    });
    assert(r === 403, `the API let a viewer test: ${r}`);
    await ctxV.close();
  });

  await step('no page error', async () => { assert(!pageErrors.length, pageErrors.join('\n')); });
}

try {
  await main();
} catch (e) {
  steps.failed += 1;
  log(`FAIL setup: ${e && e.stack ? e.stack : e}`);
} finally {
  if (browser) await browser.close().catch(() => {});
  for (const c of children) if (!c.exited) c.kill('SIGTERM');
  await sleep(300);
  for (const c of children) if (!c.exited) c.kill('SIGKILL');
  if (steps.failed && fs.existsSync(path.join(tmp, 'serve.log'))) log(`---- serve.log\n${fs.readFileSync(path.join(tmp, 'serve.log'), 'utf8').slice(-3000)}`);
  fs.rmSync(tmp, { recursive: true, force: true });
  log(`${steps.passed} passed, ${steps.failed} failed`);
  process.exit(steps.failed ? 1 : 0);
}
