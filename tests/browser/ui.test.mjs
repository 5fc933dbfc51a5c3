// ui.test.mjs: joey's web UI in headless Chromium, as a person would use it.
//
// Starts the Braze simulator and `joey serve` on a fresh copy of the demo config (its
// SQLite warehouse, no Braze app, no destination, no schedule), then in Chromium: connect
// a Braze app, test the connection, add a destination (a 422 first, then fixed), preview
// the plan, run it and follow it to success, check the simulator got the users with
// the mapped attributes, set a schedule, look a record up, see a failed row and retry
// it, the config error banner, the token form, and that names holding <script> / <img
// onerror> show as text. A screenshot of every page goes to the artifacts directory.
//
// Environment: JOEY_BIN (the joey binary), JOEY_SRC (the source tree), optional
// BRAZE_SIM_BIN (default: braze-sim beside JOEY_BIN), JOEY_CHROMIUM (default
// /usr/bin/chromium), JOEY_ARTIFACTS (default: <dir of JOEY_BIN>/artifacts); screenshots
// go to <artifacts>/browser/. Prints "N passed, N failed" last; exits 1 on a failure.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { chromium } from 'playwright-core';

const JOEY = path.resolve(process.env.JOEY_BIN || 'build/joey');
const SRC = path.resolve(process.env.JOEY_SRC || path.join(path.dirname(new URL(import.meta.url).pathname), '../..'));
const SIM = process.env.BRAZE_SIM_BIN || path.join(path.dirname(JOEY), 'braze-sim');
const CHROMIUM = process.env.JOEY_CHROMIUM || '/usr/bin/chromium';
const ART = path.join(process.env.JOEY_ARTIFACTS || path.join(path.dirname(JOEY), 'artifacts'), 'browser');
const TOKEN = crypto.randomBytes(18).toString('hex');
const SIM_KEY = 'test-key';
const SUB_GROUP = '8f0d3c4e-6a1b-4f5e-9c2d-1a2b3c4d5e6f';
const XSS_GROUP = '<img src=x onerror="window.__xss=1">VIP';
const XSS_FIRST = '<script>window.__xss=2</script>';
const XSS_LAST = '<img src=x onerror="window.__xss=3">';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joey-ui.'));
const children = [];
let passed = 0;
let failed = 0;
let browser;

function log(...a) { console.log(...a); }
function freePort() {
  return new Promise((ok, bad) => {
    const s = net.createServer();
    s.on('error', bad);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => ok(port)); });
  });
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(what, fn, ms = 15000, every = 200) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try { const v = await fn(); if (v) return v; } catch (e) { last = e; }
    await sleep(every);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
}
function start(name, cmd, args, env) {
  const out = fs.openSync(path.join(tmp, `${name}.log`), 'w');
  const p = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', out, out] });
  p.on('exit', (code, sig) => { p.exited = { code, sig }; });
  children.push(p);
  return p;
}
function assert(cond, msg) { if (!cond) throw new Error(msg); }
const canon = (o) => JSON.stringify(o && typeof o === 'object' && !Array.isArray(o) ? Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : 1))) : o);
function eq(a, b, msg) { if (a !== b) throw new Error(`${msg}: expected ${JSON.stringify(b)}, got ${JSON.stringify(a)}`); }

// ---- fixtures: the demo config without Braze, plus names that would run as HTML
function prepareConfig() {
  const cfg = path.join(tmp, 'config');
  fs.cpSync(path.join(SRC, 'examples/demo/config'), cfg, { recursive: true });
  fs.rmSync(path.join(cfg, 'apps/braze.json'));
  fs.rmSync(path.join(cfg, 'destinations'), { recursive: true, force: true });
  fs.rmSync(path.join(cfg, 'schedules'), { recursive: true, force: true });
  fs.writeFileSync(path.join(cfg, 'groups/vip.json'), JSON.stringify({
    id: 'vip', class: 'Group', name: XSS_GROUP, modelId: 'users', rules: [{ propertyId: 'ltv', op: 'gte', match: 300 }],
  }, null, 2));
  const db = path.join(tmp, 'demo.db');
  execFileSync('sqlite3', [db], { input: fs.readFileSync(path.join(SRC, 'examples/demo/demo.sql')) });
  const q = (s) => `'${s.replace(/'/g, "''")}'`;
  execFileSync('sqlite3', [db, `INSERT INTO users VALUES (9,'xss@example.com',${q(XSS_FIRST)},${q(XSS_LAST)},'DE','2023-01-01','2026-11-01T00:00:00Z',1)`]);
  return { cfg, db };
}

// ---- the API, from the test's side
let BASE;
async function apiGet(p) {
  const r = await fetch(BASE + p, { headers: { Authorization: `Bearer ${TOKEN}` } });
  return { status: r.status, body: await r.json().catch(() => null) };
}
async function apiPost(p, body) {
  const init = { method: 'POST', headers: { Authorization: `Bearer ${TOKEN}` } };
  if (body !== undefined) { init.headers['Content-Type'] = 'application/json'; init.body = JSON.stringify(body); }
  const r = await fetch(BASE + p, init);
  return { status: r.status, body: await r.json().catch(() => null) };
}
let SIM_URL;
async function simUsers() { return (await (await fetch(`${SIM_URL}/_sim/users`)).json()).users; }
async function simPost(p, body) { const r = await fetch(SIM_URL + p, { method: body === undefined ? 'DELETE' : 'POST', headers: { 'Content-Type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) }); return r.status; }

// ---- steps
const pageErrors = [];
let page;
let shotN = 0;
async function shot(name, p = page) {
  shotN += 1;
  const f = path.join(ART, `${String(shotN).padStart(2, '0')}-${name}.png`);
  await p.screenshot({ path: f, fullPage: true });
}
let stopped = false;
async function step(name, fn) {
  if (stopped) { log(`skip ${name} (an earlier step failed)`); return; }
  const t0 = Date.now();
  try {
    await fn();
    passed += 1;
    log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed += 1;
    stopped = true;
    log(`FAIL ${name}: ${e && e.stack ? e.stack : e}`);
    if (page) await shot(`FAILED-${name.replace(/[^a-z0-9]+/gi, '-')}`).catch(() => {});
  }
}
const main = () => page.locator('main');
async function h1(text) { await page.getByRole('heading', { level: 1, name: text, exact: typeof text === 'string' }).waitFor({ timeout: 15000 }); }
async function nav(name) { await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name, exact: true }).click(); }
// Every visible form control has an accessible name (label, aria-label or aria-labelledby).
async function checkLabels(where) {
  const bad = await page.evaluate(() => [...document.querySelectorAll('main input, main select, main textarea')]
    .filter((e) => e.type !== 'hidden' && e.offsetParent !== null)
    .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.getAttribute('aria-labelledby'))
    .map((e) => e.outerHTML.slice(0, 120)));
  assert(!bad.length, `${where}: controls without a label: ${bad.join(' | ')}`);
}
async function noXss() {
  const x = await page.evaluate(() => [window.__xss, document.querySelectorAll('main img, main script').length]);
  eq(x[0], undefined, 'window.__xss (a payload ran)');
  eq(x[1], 0, 'img/script elements injected into the page');
}

async function main_() {
  fs.mkdirSync(ART, { recursive: true });
  for (const f of fs.readdirSync(ART)) if (f.endsWith('.png')) fs.rmSync(path.join(ART, f));
  const { cfg } = prepareConfig();

  // the simulator
  const simPortFile = path.join(tmp, 'sim.port');
  const sim = start('braze-sim', SIM, ['--port', '0', '--port-file', simPortFile, '--api-key', SIM_KEY, '--max-lifetime', '600', '--quiet', '--seed', '7']);
  await until('braze-sim', () => fs.existsSync(simPortFile) && fs.readFileSync(simPortFile, 'utf8').trim(), 10000, 50);
  SIM_URL = `http://127.0.0.1:${fs.readFileSync(simPortFile, 'utf8').trim()}`;
  void sim;

  // joey serve
  const port = await freePort();
  BASE = `http://127.0.0.1:${port}`;
  fs.mkdirSync(path.join(tmp, 'state'));
  const serve = start('joey-serve', JOEY, ['serve', '--config', cfg, '--state', path.join(tmp, 'state/joey.db'), '--listen', `127.0.0.1:${port}`],
    { JOEY_API_TOKEN: TOKEN, ASAN_OPTIONS: process.env.ASAN_OPTIONS || 'detect_leaks=0' });
  await until('joey serve /healthz', async () => {
    if (serve.exited) throw new Error(`joey serve exited ${JSON.stringify(serve.exited)}: ${fs.readFileSync(path.join(tmp, 'joey-serve.log'), 'utf8').slice(-2000)}`);
    const r = await fetch(`${BASE}/healthz`).catch(() => null);
    return r && r.ok;
  }, 20000, 100);

  const userData = fs.mkdtempSync(path.join(tmp, 'chromium-'));
  browser = await chromium.launchPersistentContext(userData, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
  });
  page = browser.pages()[0] || await browser.newPage();
  page.setDefaultTimeout(15000);
  page.on('pageerror', (e) => pageErrors.push(String(e && e.stack ? e.stack : e)));
  page.on('dialog', (d) => { if (/^Delete/.test(d.message())) d.accept(); else { pageErrors.push(`unexpected dialog: ${d.message()}`); d.dismiss(); } });

  let appId;
  await step('the UI code never parses text as HTML (no innerHTML and the like)', async () => {
    const dir = path.join(SRC, 'src/server/ui');
    for (const f of fs.readdirSync(dir).filter((x) => /\.m?js$/.test(x))) {
      const code = fs.readFileSync(path.join(dir, f), 'utf8').split('\n').filter((l) => !/^\s*(\/\/|\*|\/\*)/.test(l)).join('\n');
      const m = code.match(/\b(innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\s*\(|new Function)\b/);
      assert(!m, `${f} uses ${m && m[1]}`);
    }
  });

  await step('overview: a fresh install says to connect Braze first', async () => {
    await page.goto(`${BASE}/`);
    await h1('Overview');
    await main().getByRole('heading', { name: 'Start here: connect Braze' }).waitFor();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Users' }).waitFor();
    await shot('overview-empty');
  });

  await step('create a Braze app (name, API key as a password field, the simulator URL)', async () => {
    await nav('Braze apps');
    await h1('Braze apps');
    await main().getByRole('link', { name: 'Connect a Braze app' }).first().click();
    await h1('Connect a Braze app');
    await page.getByLabel('Name', { exact: true }).fill('Braze (simulator)');
    eq(await page.getByLabel('ID', { exact: true }).inputValue(), 'braze_simulator', 'id filled in from the name');
    const key = page.getByLabel('REST API key');
    eq(await key.getAttribute('type'), 'password', 'the key input type');
    await key.fill(SIM_KEY);
    await page.getByLabel('REST endpoint URL').fill(SIM_URL);
    await checkLabels('app form');
    await shot('app-new');
    await page.getByRole('button', { name: 'Save app' }).click();
    await h1('Braze app: Braze (simulator)');
    appId = 'braze_simulator';
    // the key is kept out of the config directory and never comes back
    const r = await apiGet(`/api/v1/config/apps/${appId}`);
    eq(r.status, 200, 'GET the new app');
    assert(r.body.options.apiKey !== SIM_KEY, `the API answered the secret: ${JSON.stringify(r.body.options)}`);
    const grep = (d) => fs.readdirSync(d, { withFileTypes: true }).some((e) => (e.isDirectory() ? grep(path.join(d, e.name)) : fs.readFileSync(path.join(d, e.name), 'utf8').includes(SIM_KEY)));
    assert(!grep(cfg), 'the API key was written into the config directory');
    eq(await page.getByLabel('REST API key').inputValue(), '****', 'a stored key shows masked');
  });

  await step('test the connection', async () => {
    await page.getByRole('button', { name: 'Test connection' }).click();
    await main().getByText('Connection OK').waitFor();
    await shot('app-tested');
    // saving without touching the key keeps it ("****" is sent back)
    await page.getByLabel('Name', { exact: true }).fill('Braze (simulator)');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await main().getByText('Connection OK').waitFor({ state: 'detached' });
    await page.getByRole('button', { name: 'Test connection' }).click();
    await main().getByText('Connection OK').waitFor();
  });

  await step('model page: sources, properties, groups with member counts', async () => {
    await nav('Users');
    await h1('Users');
    for (const s of ['Braze destinations', 'Sources and schedules', 'Properties', 'Groups', 'Schedules']) await main().getByRole('heading', { name: s, exact: true }).waitFor();
    await main().getByRole('cell', { name: 'High Value' }).waitFor();
    await main().getByText('#Members').or(main().getByRole('columnheader', { name: 'Members' })).first().waitFor();
    await shot('model-before');
  });

  await step('add a destination: a mistake shows the server diagnostics next to the form', async () => {
    await main().getByRole('link', { name: 'Add Braze destination' }).click();
    await h1(/New Braze destination/);
    await page.getByLabel('Name', { exact: true }).fill('Braze: all users');
    // the three sync modes, each explained
    for (const t of ['Create, update and delete', 'never delete', 'already exist in Braze']) await main().getByText(t, { exact: false }).first().waitFor();
    assert(await page.getByRole('radio', { name: /^Sync/ }).isChecked(), 'Sync is the default mode');
    // external_id is pinned to the primary key and cannot be removed
    const pinned = main().locator('tr.pinned');
    await pinned.getByText('user_id').waitFor();
    eq(await pinned.getByRole('button').count(), 0, 'buttons on the external_id row');
    await page.getByLabel('email', { exact: true }).selectOption({ label: 'email (email)' });
    await page.getByLabel('first_name', { exact: true }).selectOption({ label: 'first_name (string)' });
    await page.getByLabel('last_name', { exact: true }).selectOption({ label: 'last_name (string)' });
    await page.getByLabel('country', { exact: true }).selectOption({ label: 'country (string)' });
    // custom attribute: the name defaults to the property key and can be renamed
    await page.getByRole('button', { name: 'Add custom attribute' }).click();
    let row = main().locator('tr.custom-row').nth(0);
    await row.getByLabel('Property', { exact: true }).selectOption({ label: 'ltv (float)' });
    eq(await row.getByLabel('Braze attribute name').inputValue(), 'ltv', 'the default attribute name');
    await row.getByLabel('Braze attribute name').fill('lifetime_value');
    await page.getByRole('button', { name: 'Add custom attribute' }).click();
    row = main().locator('tr.custom-row').nth(1);
    await row.getByLabel('Property', { exact: true }).selectOption({ label: 'purchase_count (integer)' });
    await row.getByLabel('Braze attribute name').fill('$purchases'); // Braze reserves names starting with $
    // a group to a Braze subscription group
    await page.getByRole('button', { name: 'Add group mapping' }).click();
    const g = main().locator('tr.group-row').nth(0);
    await g.getByLabel('Group', { exact: true }).selectOption({ label: 'High Value' });
    await g.getByLabel('Braze subscription group ID').fill(SUB_GROUP);
    await checkLabels('destination form');
    await page.getByRole('button', { name: 'Save destination' }).click();
    const diag = main().locator('#diagnostics');
    await diag.waitFor();
    await diag.getByText('$purchases').first().waitFor();
    eq(await row.getByLabel('Braze attribute name').getAttribute('aria-invalid'), 'true', 'the bad attribute marked invalid');
    await shot('destination-422');
    eq(fs.existsSync(path.join(cfg, 'destinations')) ? fs.readdirSync(path.join(cfg, 'destinations')).length : 0, 0, 'files written by a refused change');
  });

  await step('fix the mistake and save the destination', async () => {
    const row = main().locator('tr.custom-row').nth(1);
    await row.getByLabel('Braze attribute name').fill('purchase_count');
    await shot('destination-form');
    await page.getByRole('button', { name: 'Save destination' }).click();
    await h1('Users');
    await main().getByRole('link', { name: 'Braze: all users' }).first().waitFor();
    const r = await apiGet('/api/v1/config/destinations/braze_all_users');
    eq(r.status, 200, 'GET the destination');
    const d = r.body;
    eq(d.type, 'braze-export-users', 'type');
    eq(d.appId, appId, 'appId');
    eq(d.modelId, 'users', 'modelId');
    eq(d.syncMode, 'sync', 'syncMode');
    eq(d.collection, 'model', 'collection');
    eq(canon(d.mapping), canon({ external_id: 'user_id', email: 'email', first_name: 'first_name', last_name: 'last_name', country: 'country', lifetime_value: 'ltv', purchase_count: 'purchase_count' }), 'mapping');
    eq(canon(d.destinationGroupMemberships), canon({ [SUB_GROUP]: 'high_value' }), 'destinationGroupMemberships');
    await shot('model');
  });

  await step('names and record values holding HTML show as text', async () => {
    await main().getByText(XSS_GROUP, { exact: true }).waitFor();
    await noXss();
  });

  await step('preview the plan before the first run', async () => {
    await main().getByRole('link', { name: 'Preview the plan' }).click();
    await h1(/^Plan/);
    const card = main().locator('section.card[data-destination="braze_all_users"]');
    await card.waitFor({ timeout: 30000 });
    eq((await card.locator('[data-count="create"] .num').textContent()).trim(), '9', 'records to create');
    eq((await card.locator('[data-count="delete"] .num').textContent()).trim(), '0', 'records to delete');
    if (await card.locator('table').count()) await card.getByText(XSS_FIRST).first().waitFor();
    await noXss();
    await shot('plan');
  });

  await step('run now and follow the run live to success', async () => {
    // slow Braze down so that the run lasts a few polls of the page
    eq(await simPost('/_sim/config', { latency_ms: 2500 }), 200, 'simulator latency set');
    await main().getByRole('button', { name: 'Run now' }).click();
    await h1('Runs');
    let sawLive = false;
    await until('a successful run of braze_all_users', async () => {
      if (!sawLive && await page.locator('#live .live-run').count().catch(() => 0)) {
        sawLive = true;
        await page.locator('#live').getByText('Braze: all users').first().waitFor();
        await shot('runs-live').catch(() => {});
      }
      return (await page.locator('#runs-table tr[data-destination="braze_all_users"][data-status="success"]').count()) > 0
        || (await page.locator('#runs-table tr[data-destination="braze_all_users"][data-status="failed"]').count()) > 0;
    }, 60000, 100);
    const row = page.locator('#runs-table tr[data-destination="braze_all_users"]').first();
    eq(await row.getAttribute('data-status'), 'success', 'the run status');
    assert(sawLive, 'the live progress panel never showed while the run went');
    await simPost('/_sim/config', { latency_ms: 0 });
    await shot('runs-after-first');
  });

  await step('the users arrived in Braze with the mapped attributes', async () => {
    const users = await simUsers();
    eq(users.length, 9, 'users in the simulator');
    const ada = users.find((u) => u.external_id === '1');
    assert(ada, 'user 1 missing');
    eq(ada.email, 'ada@example.com', 'email');
    eq(ada.first_name, 'Ada', 'first_name');
    eq(ada.last_name, 'Lovelace', 'last_name');
    eq(ada.country, 'GB', 'country');
    eq(ada.custom_attributes.lifetime_value, 262.5, 'custom attribute lifetime_value');
    eq(ada.custom_attributes.purchase_count, 2, 'custom attribute purchase_count');
    assert((ada.subscription_groups || []).some((s) => s.subscription_group_id === SUB_GROUP && s.subscription_state === 'subscribed'), `user 1 not subscribed: ${JSON.stringify(ada.subscription_groups)}`);
    const alan = users.find((u) => u.external_id === '2');
    assert(!(alan.subscription_groups || []).some((s) => s.subscription_group_id === SUB_GROUP && s.subscription_state === 'subscribed'), 'user 2 (not high value) subscribed');
    const x = users.find((u) => u.external_id === '9');
    eq(x.first_name, XSS_FIRST, 'user 9 first_name');
  });

  await step('edit the destination: the form shows what is saved, a change is written', async () => {
    await nav('Users');
    await h1('Users');
    await main().getByRole('link', { name: 'Edit' }).first().click();
    await h1('Destination: Braze: all users');
    eq(await page.getByLabel('email', { exact: true }).inputValue(), 'email', 'email mapping shown');
    eq(await page.getByLabel('phone', { exact: true }).inputValue(), '', 'phone not mapped');
    const rows = main().locator('tr.custom-row');
    eq(await rows.count(), 2, 'custom attribute rows');
    eq(await rows.nth(0).getByLabel('Braze attribute name').inputValue(), 'lifetime_value', 'custom attribute name');
    eq(await main().locator('tr.group-row').first().getByLabel('Braze subscription group ID').inputValue(), SUB_GROUP, 'subscription group id');
    eq(await page.getByLabel('ID', { exact: true }).getAttribute('readonly'), '', 'the id is read-only');
    await page.getByRole('radio', { name: /^Additive/ }).check();
    await shot('destination-edit');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await h1('Users');
    await main().getByRole('cell', { name: 'Additive' }).waitFor();
    const d = (await apiGet('/api/v1/config/destinations/braze_all_users')).body;
    eq(d.syncMode, 'additive', 'syncMode after the edit');
    eq(d.mapping.lifetime_value, 'ltv', 'mapping kept');
  });

  await step('set the schedule of the model’s source', async () => {
    await nav('Users');
    await h1('Users');
    await main().getByRole('link', { name: /^Set schedule/ }).first().click();
    await h1(/^Schedule/);
    await page.getByRole('radio', { name: /Every N minutes/ }).check();
    await page.getByLabel('Minutes between runs').fill('30');
    await checkLabels('schedule form');
    await shot('schedule-form');
    await page.getByRole('button', { name: /Create schedule|Save schedule/ }).click();
    await h1('Users');
    await main().getByText('every 30 minutes').first().waitFor();
    const s = await apiGet('/api/v1/schedules?model=users');
    const list = Array.isArray(s.body) ? s.body : s.body.items;
    eq(list.length, 1, 'schedules');
    eq(list[0].recurring, true, 'recurring');
    eq(list[0].frequency_ms, 1800000, 'frequency_ms');
    // and change it to a cron expression
    await main().getByRole('link', { name: /^Change schedule/ }).first().click();
    await h1(/^Schedule/);
    await page.getByRole('radio', { name: /cron schedule/ }).check();
    await page.getByLabel('Cron expression (UTC)').fill('0 3 * * *');
    await page.getByRole('button', { name: 'Save schedule' }).click();
    await h1('Users');
    await main().getByText('0 3 * * *').first().waitFor();
    await shot('model-scheduled');
  });

  await step('look a record up by key', async () => {
    await nav('Record lookup');
    await h1('Record lookup');
    await page.getByLabel('Primary key').fill('1');
    await page.getByRole('button', { name: 'Look up' }).click();
    const rec = main().locator('#record');
    await rec.waitFor();
    await rec.getByText('ada@example.com').first().waitFor();
    await rec.getByText('confirmed').first().waitFor();
    await shot('record');
    await page.getByLabel('Primary key').fill('9');
    await page.getByRole('button', { name: 'Look up' }).click();
    await main().getByRole('heading', { name: 'Record “9”' }).waitFor();
    await main().locator('#record').getByText(XSS_FIRST).first().waitFor();
    await main().locator('#record').getByText(XSS_LAST).first().waitFor();
    await noXss();
    await shot('record-html-values');
    await page.getByLabel('Primary key').fill('999');
    await page.getByRole('button', { name: 'Look up' }).click();
    await main().getByText('No record with key “999”').waitFor();
    // not an integer, as the primary key user_id is: the server's message shows
    await page.getByLabel('Primary key').fill('not-a-number');
    await page.getByRole('button', { name: 'Look up' }).click();
    await main().locator('.notice').filter({ hasText: 'not-a-number' }).first().waitFor();
    await shot('record-bad-key');
  });

  await step('a failed row shows with its error, and a retry sends it again', async () => {
    eq(await simPost('/_sim/faults', { action: 'row_error', external_id: '2', type: 'EMAIL_BAD_FORMAT' }), 200, 'fault set');
    execFileSync('sqlite3', ['-cmd', '.timeout 20000', path.join(tmp, 'demo.db'), "UPDATE users SET first_name = 'Alan M.' WHERE id = 2"]);
    await nav('Runs');
    await h1('Runs');
    const before = await page.locator('#runs-table tr[data-destination="braze_all_users"]').count();
    await page.getByRole('button', { name: 'Run everything now' }).click();
    await until('the second run to end', async () => {
      const rows = page.locator('#runs-table tr[data-destination="braze_all_users"]');
      return (await rows.count()) > before && ['success', 'failed'].includes(await rows.first().getAttribute('data-status'));
    }, 60000, 200);
    await nav('Failed rows');
    await h1('Failed rows');
    // the only object of its request failed, so Braze refuses the whole request (400)
    const failedRow = main().locator('tbody tr').filter({ has: page.getByRole('link', { name: '2', exact: true }) });
    await failedRow.first().waitFor();
    const errText = (await failedRow.first().locator('td').nth(3).textContent()).trim();
    assert(/400|EMAIL_BAD_FORMAT|Valid data/i.test(errText), `the error shown: ${errText}`);
    await shot('failed-rows');
    await simPost('/_sim/faults', { action: 'clear' });
    await main().getByRole('button', { name: /Retry failed rows of/ }).first().click();
    await h1('Runs');
    await until('user 2 updated in Braze', async () => (await simUsers()).find((u) => u.external_id === '2').first_name === 'Alan M.', 60000, 300);
    await until('the retry run to finish', async () => {
      const runs = (await apiGet('/api/v1/runs?destination=braze_all_users')).body.items;
      return runs.length && !runs.some((r) => r.status === 'running' || r.status === 'queued') && runs[0].status === 'success';
    }, 30000, 300);
    await nav('Failed rows');
    await h1('Failed rows');
    await main().getByText(/No row is failing now|No failed rows/).waitFor();
    await shot('failed-rows-after-retry');
    // the history still shows the error, marked as gone through
    await page.getByLabel(/Also show rows that went through later/).check();
    await main().locator('tr[data-key="2"][data-failing="false"]').first().waitFor();
  });

  await step('runs page: history, chart of runs over time, run details', async () => {
    await nav('Runs');
    await h1('Runs');
    await until('the retry run to finish', async () => !(await page.locator('#runs-table tr[data-status="running"], #runs-table tr[data-status="queued"]').count()), 30000, 300);
    const bars = await page.locator('svg.runs-chart g.bar').count();
    assert(bars >= 3, `chart bars: ${bars}`);
    assert(await page.locator('#runs-table tbody tr').count() >= 3, 'run rows');
    await shot('runs');
    await page.locator('#runs-table tbody tr').last().getByRole('link').first().click();
    await h1(/^Run #/);
    await main().getByText('success').first().waitFor();
    await shot('run-detail');
    await nav('Overview');
    await h1('Overview');
    await page.locator('svg.runs-chart').waitFor();
    await shot('overview');
  });

  await step('keyboard: skip link, focus moves to the page heading', async () => {
    await page.goto('about:blank');
    await page.goto(`${BASE}/#/`);
    await h1('Overview');
    await page.keyboard.press('Tab');
    eq(await page.evaluate(() => document.activeElement && document.activeElement.id), 'skip-link', 'first Tab stop');
    await page.keyboard.press('Enter');
    eq(await page.evaluate(() => document.activeElement && document.activeElement.id), 'main', 'focus after the skip link');
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Runs' }).focus();
    await page.keyboard.press('Enter');
    await h1('Runs');
    await until('focus on the heading', () => page.evaluate(() => document.activeElement && document.activeElement.tagName === 'H1'), 5000, 50);
  });

  await step('a broken config shows the error banner, and reloading a fixed one clears it', async () => {
    await page.goto(`${BASE}/#/`);
    await h1('Overview');
    const bad = path.join(cfg, 'destinations/broken.json');
    fs.writeFileSync(bad, '{ "id": "broken", "class": "Destination", "type": "braze-export-users", "appId": "no_such_app", "modelId": "users" }');
    const r = await apiPost('/api/v1/reload');
    assert([200, 422].includes(r.status), `reload answered ${r.status}`);
    const banner = page.locator('#config-banner');
    await banner.getByText('The configuration has a problem').waitFor({ timeout: 15000 });
    await banner.getByText('no_such_app').first().waitFor();
    await shot('config-error-banner');
    fs.rmSync(bad);
    await banner.getByRole('button', { name: 'Reload configuration' }).click();
    await banner.waitFor({ state: 'hidden', timeout: 15000 });
  });

  await step('beyond loopback (no token in the page): the token form, kept for the session', async () => {
    const p2 = await browser.newPage();
    p2.on('pageerror', (e) => pageErrors.push(String(e)));
    await p2.route(`${BASE}/`, async (route) => {
      const res = await route.fetch();
      const body = (await res.text()).replace(/(<meta name="joey-token" content=")[^"]*(")/, '$1$2');
      await route.fulfill({ response: res, body });
    });
    await p2.goto(`${BASE}/`);
    await p2.getByRole('heading', { name: 'Enter your API token' }).waitFor();
    await shot('token-form', p2);
    await p2.getByLabel('API token').fill(TOKEN);
    await p2.getByRole('button', { name: 'Continue' }).click();
    await p2.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    eq(await p2.evaluate(() => sessionStorage.getItem('joey-token')), TOKEN, 'token in sessionStorage');
    await p2.close();
  });

  await step('narrow screen: the menu collapses behind a button', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${BASE}/#/models/users`);
    await h1('Users');
    const toggle = page.getByRole('button', { name: 'Menu' });
    await toggle.click();
    eq(await toggle.getAttribute('aria-expanded'), 'true', 'aria-expanded');
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Runs' }).waitFor();
    await shot('mobile-menu');
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  await step('no script errors in the page', async () => {
    await noXss();
    assert(!pageErrors.length, `page errors:\n${pageErrors.join('\n')}`);
  });

  await step('joey serve stops cleanly on SIGTERM (exit 0, no sanitizer report)', async () => {
    await browser.close();
    browser = null;
    serve.kill('SIGTERM');
    await until('joey serve to exit', () => serve.exited, 30000, 100);
    const logText = fs.readFileSync(path.join(tmp, 'joey-serve.log'), 'utf8');
    assert(!/ERROR: (Address|Leak)Sanitizer|runtime error:/.test(logText), `sanitizer report:\n${logText.slice(-4000)}`);
    eq(serve.exited.code, 0, 'exit status of joey serve');
  });
}

try {
  await main_();
} catch (e) {
  failed += 1;
  log(`FAIL setup: ${e && e.stack ? e.stack : e}`);
} finally {
  if (browser) await browser.close().catch(() => {});
  for (const c of children) if (!c.exited) c.kill('SIGTERM');
  await sleep(300);
  for (const c of children) if (!c.exited) c.kill('SIGKILL');
  if (failed) {
    for (const f of ['joey-serve.log', 'braze-sim.log']) {
      const p = path.join(tmp, f);
      if (fs.existsSync(p)) log(`---- ${f} (last 3000 bytes)\n${fs.readFileSync(p, 'utf8').slice(-3000)}`);
    }
  }
  if (!process.env.JOEY_KEEP_TMP) fs.rmSync(tmp, { recursive: true, force: true });
  log(`screenshots: ${ART}`);
  log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
