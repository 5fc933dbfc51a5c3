// ui_audiences.test.mjs: the Audiences and Records pages of joey's web UI in headless
// Chromium (issue #16), as a marketer would use them.
//
// Starts the Braze simulator and `joey serve` on a copy of the demo config (its SQLite
// warehouse, the Braze app pointed at the simulator, one Sync destination, no schedule),
// makes an editor and a viewer with the CLI, runs the destination once through the API
// with the simulator refusing one user (so that user has a failed first attempt), then in
// Chromium as the editor: builds an audience with the rule builder and checks the live
// member count against a count sqlite3 computes from the same data as the rules change
// (a number rule, a relative date rule, all vs any), reads the rules in words, saves
// the audience and finds it in the list and on the model page with its count; searches
// a record by email and opens it (properties, audiences, each destination's state: the
// refused user shows one consistent status, "failed, will retry", and not "outside its
// audience" too); lists an audience's members; and as the viewer, sees the builder read
// only. Screenshots go to <artifacts>/browser-audiences/.
//
// Environment: as ui.test.mjs (JOEY_BIN, JOEY_SRC, BRAZE_SIM_BIN, JOEY_CHROMIUM,
// JOEY_ARTIFACTS). Prints "N passed, N failed" last; exits 1 on a failure.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import { JOEY, SRC, SIM, CHROMIUM, artifacts, log, sleep, assert, eq, freePort, until, spawnLogged, untilHealthy, apiCall, makeShot, Steps } from './lib.mjs';
import * as inPage from './lib.mjs';

const ART = artifacts('browser-audiences');
const AXE = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const EDITOR = { name: 'erin', role: 'editor', pw: `erin-${crypto.randomBytes(6).toString('hex')}` };
const VIEWER = { name: 'vic', role: 'viewer', pw: `vic-${crypto.randomBytes(6).toString('hex')}` };
const SIM_KEY = 'test-key';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joey-aud.'));
const children = [];
let browser;
let page;
let TOKEN;
let BASE;
let SIM_URL;
const pageErrors = [];

const start = (name, cmd, args, env) => spawnLogged(tmp, children, name, cmd, args, env);
function joeyEnv(extra = {}) {
  const env = { ...process.env, ASAN_OPTIONS: process.env.ASAN_OPTIONS || 'detect_leaks=0', ...extra };
  delete env.JOEY_API_TOKEN;
  delete env.JOEY_ACCOUNTS;
  return env;
}
function joeyCli(args, input) {
  return execFileSync(JOEY, args, { input, env: joeyEnv(), encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}
const api = (method, p, body) => apiCall(BASE, TOKEN, method, p, body);
const shot = makeShot(ART, () => page);
const steps = new Steps({ onFail: async (name) => { if (page) await shot(`FAILED-${name.replace(/[^a-z0-9]+/gi, '-')}`); } });
const { step } = steps;
const main = () => page.locator('main');
const h1 = (text) => inPage.h1(page, text);
const nav = (name) => inPage.nav(page, name);
const signIn = (u) => inPage.signIn(page, u);
const signOut = () => inPage.signOut(page);
const checkLabels = (where) => inPage.checkLabels(page, where);

// ---- the independent counts: sqlite3 on the same warehouse, the same rules
let DB;
let CFG;
function sql(q) { return execFileSync('sqlite3', ['-cmd', '.timeout 20000', DB, q], { encoding: 'utf8' }).trim(); }
const LTV = '(SELECT COALESCE(SUM(amount), 0) FROM purchases p WHERE p.user_id = u.id)';
// relative_gt 30 days: now - 30 days < last_login_at <= now (ISO text compares in order)
const RECENT = "(u.last_login_at > strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-30 days') AND u.last_login_at <= strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))";
const countWhere = (w) => Number(sql(`SELECT COUNT(*) FROM users u WHERE ${w}`));

function prepare() {
  const root = path.join(tmp, 'project');
  const cfg = path.join(root, 'config');
  CFG = cfg;
  fs.mkdirSync(root);
  fs.cpSync(path.join(SRC, 'examples/demo/config'), cfg, { recursive: true });
  for (const f of ['braze_additive.json', 'braze_enrich.json']) fs.rmSync(path.join(cfg, 'destinations', f));
  fs.rmSync(path.join(cfg, 'schedules'), { recursive: true, force: true });
  fs.writeFileSync(path.join(cfg, 'apps/braze.json'), JSON.stringify({
    id: 'braze', name: 'Braze', class: 'App', type: 'braze', options: { apiKey: '${SIM_BRAZE_KEY}', restEndpoint: SIM_URL },
  }, null, 2));
  // the warehouse in the data directory (data/ of the project root: joey serve shows its
  // tables); a second database beside the config, outside it, is never shown
  fs.mkdirSync(path.join(root, 'data'));
  DB = path.join(root, 'data/demo.db');
  fs.writeFileSync(path.join(cfg, 'apps/demo_db.json'), JSON.stringify({ id: 'demo_db', name: 'Demo warehouse', class: 'App', type: 'sqlite', options: { file: 'data/demo.db' } }, null, 2));
  fs.writeFileSync(path.join(cfg, 'apps/legacy.json'), JSON.stringify({ id: 'legacy', name: 'Legacy warehouse', class: 'App', type: 'sqlite', options: { file: 'legacy.db' } }, null, 2));
  execFileSync('sqlite3', [path.join(root, 'legacy.db'), "CREATE TABLE secrets (v TEXT); INSERT INTO secrets VALUES ('do-not-show')"]);
  execFileSync('sqlite3', [DB], { input: fs.readFileSync(path.join(SRC, 'examples/demo/demo.sql')) });
  // the demo's big spenders are all recently active: a recent user who bought nothing and
  // a big spender gone quiet tell "all" from "any"
  const recent = new Date(Date.now() - 2 * 86400000).toISOString().replace(/\.\d+Z$/, 'Z');
  sql(`INSERT INTO users VALUES (9,'zoe@example.com','Zoe','Zed','FR','2024-01-01','${recent}',1), (10,'yan@example.com','Yan','Yu','FR','2024-01-01','2025-01-01T00:00:00Z',0);
       INSERT INTO purchases (user_id, item, amount, purchased_at) VALUES (10,'car',5000,'2025-01-01T00:00:00Z');
       CREATE TABLE orders (order_id INTEGER PRIMARY KEY, customer INTEGER, total REAL, placed_at TEXT);
       INSERT INTO orders VALUES (1, 1, 20.5, '2026-01-01'), (2, 1, 4.5, '2026-02-01'), (3, 3, 99, '2026-03-01'), (4, 5, 12, '2026-03-02')`);
  return cfg;
}

async function main_() {
  fs.mkdirSync(ART, { recursive: true });
  for (const f of fs.readdirSync(ART)) if (f.endsWith('.png')) fs.rmSync(path.join(ART, f));
  const simPortFile = path.join(tmp, 'sim.port');
  start('braze-sim', SIM, ['--port', '0', '--port-file', simPortFile, '--api-key', SIM_KEY, '--max-lifetime', '600', '--quiet', '--seed', '7']);
  await until('braze-sim', () => fs.existsSync(simPortFile) && fs.readFileSync(simPortFile, 'utf8').trim(), 10000, 50);
  SIM_URL = `http://127.0.0.1:${fs.readFileSync(simPortFile, 'utf8').trim()}`;
  const cfg = prepare();
  fs.mkdirSync(path.join(tmp, 'state'));
  const stateFile = path.join(tmp, 'state/joey.db');
  for (const u of [EDITOR, VIEWER]) joeyCli(['user', 'add', u.name, '--role', u.role, '--password-stdin', '--config', cfg, '--state', stateFile], `${u.pw}\n`);
  joeyCli(['user', 'add', 'root', '--role', 'admin', '--password-stdin', '--config', cfg, '--state', stateFile], `root-${crypto.randomBytes(6).toString('hex')}\n`);
  TOKEN = joeyCli(['user', 'token', 'root', '--label', 'audiences test', '--config', cfg, '--state', stateFile]).trim();
  const port = await freePort();
  BASE = `http://127.0.0.1:${port}`;
  const serve = start('joey-serve', JOEY, ['serve', '--config', cfg, '--state', stateFile, '--listen', `127.0.0.1:${port}`],
    joeyEnv({ JOEY_ALLOW_ENDPOINTS: SIM_URL, SIM_BRAZE_KEY: SIM_KEY }));
  await untilHealthy('joey-serve', serve, BASE, tmp);

  await step('a first run, with Braze refusing Grace (user 3): she has a failed first attempt', async () => {
    const f = await fetch(`${SIM_URL}/_sim/faults`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ action: 'row_error', external_id: '3', type: 'EMAIL_BAD_FORMAT' }) });
    eq(f.status, 200, 'simulator fault set');
    eq((await api('POST', '/api/v1/runs', { destination: 'braze_sync' })).status, 202, 'run requested');
    await until('the run to finish', async () => {
      const r = await api('GET', '/api/v1/runs?destination=braze_sync');
      const run = (r.body.items || []).find((x) => x.id);
      return run && run.status !== 'running' && run.status !== 'queued';
    }, 30000);
    const rec = await api('GET', '/api/v1/records/users/3');
    const d = rec.body.destinations[0];
    eq(d.pending, true, 'Grace pending');
    eq(d.confirmed, false, 'Grace never confirmed');
    eq(d.in_scope, true, 'Grace is in the destination\'s scope (collection: model), whatever the placeholder state row says');
    eq(d.next, 'retry', 'what happens next');
  });

  const userData = fs.mkdtempSync(path.join(tmp, 'chromium-'));
  browser = await chromium.launchPersistentContext(userData, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
  });
  page = browser.pages()[0] || await browser.newPage();
  page.setDefaultTimeout(15000);
  page.on('pageerror', (e) => pageErrors.push(String(e && e.stack ? e.stack : e)));
  page.on('dialog', (d) => { if (/^Delete/.test(d.message())) d.accept(); else { pageErrors.push(`unexpected dialog: ${d.message()}`); d.dismiss(); } });

  const count = () => page.locator('#group-count');
  async function countIs(n, what) {
    await until(`the live count to show ${n} (${what})`, async () => (await count().getAttribute('data-state')) === 'done' && (await count().getAttribute('data-count')) === String(n), 15000, 100);
  }
  const rule = (i) => page.locator(`li.rule-row[data-rule="${i}"]`);

  await step('the editor builds an audience: the live count follows the rules and equals sqlite3\'s count', async () => {
    await page.goto(`${BASE}/#/audiences`);
    await signIn(EDITOR);
    await h1('Audiences');
    await main().getByText('Ltv is at least 100').first().waitFor(); // the demo's High Value, in words
    await shot('audiences');
    await main().getByRole('link', { name: 'New audience of Users' }).click();
    await h1('New audience of Users');
    await page.getByLabel('Name', { exact: true }).fill('Big spenders, recently active');
    eq(await page.getByLabel('ID', { exact: true }).inputValue(), 'big_spenders_recently_active', 'the id made from the name');
    await rule(0).getByLabel('Rule 1: property').selectOption('ltv');
    await rule(0).getByLabel('Rule 1: condition').selectOption('gte');
    await rule(0).getByLabel('Rule 1: value').fill('100');
    const high = countWhere(`${LTV} >= 100`);
    assert(high > 0 && high < 8, `the demo data has some high-value users: ${high}`);
    await countIs(high, 'ltv >= 100');
    await main().locator('.rule-words').filter({ hasText: 'Ltv is at least 100' }).waitFor();
    eq(await page.locator('#group-sample tbody tr').count(), high, 'sample rows');
    await rule(0).getByLabel('Rule 1: value').fill('1000');
    await countIs(countWhere(`${LTV} >= 1000`), 'ltv >= 1000');
    await rule(0).getByLabel('Rule 1: value').fill('100');
    await countIs(high, 'ltv >= 100 again');
    await page.getByRole('button', { name: 'Add a rule' }).click();
    await rule(1).getByLabel('Rule 2: property').selectOption('last_login_at');
    await rule(1).getByLabel('Rule 2: condition').selectOption('relative_gt');
    await rule(1).getByLabel('Rule 2: how many').fill('30');
    await rule(1).getByLabel('Rule 2: unit').selectOption('days');
    await main().locator('.rule-words').filter({ hasText: 'Last login at is within the last 30 days' }).waitFor();
    const both = countWhere(`${LTV} >= 100 AND ${RECENT}`);
    await countIs(both, 'ltv >= 100 and recent');
    await shot('builder-all');
    await page.getByLabel('Members match').selectOption('any');
    const either = countWhere(`${LTV} >= 100 OR ${RECENT}`);
    assert(either !== both, `the demo data tells all from any: ${both} vs ${either}`);
    await countIs(either, 'ltv >= 100 or recent');
    await main().locator('#group-words').filter({ hasText: 'Any of: Ltv is at least 100; or Last login at is within the last 30 days.' }).waitFor();
    await shot('builder-any');
    await page.getByLabel('Members match').selectOption('all');
    await countIs(both, 'back to all');
    await checkLabels('the rule builder');
  });

  await step('a rule the config would refuse shows why, and no count', async () => {
    await rule(0).getByLabel('Rule 1: value').fill('');
    await until('the count to say it cannot count', async () => (await count().getAttribute('data-state')) === 'error');
    await main().locator('#diagnostics').waitFor();
    await shot('builder-invalid');
    await rule(0).getByLabel('Rule 1: value').fill('100');
    await countIs(countWhere(`${LTV} >= 100 AND ${RECENT}`), 'fixed');
  });

  await step('saving writes the audience as Grouparoo JSON; it shows in the list and on the model page with its count', async () => {
    await page.getByRole('button', { name: 'Create audience' }).click();
    await h1('Audiences');
    await main().getByRole('link', { name: 'Big spenders, recently active' }).waitFor();
    const file = path.join(CFG, 'groups/big_spenders_recently_active.json');
    const saved = JSON.parse(fs.readFileSync(file, 'utf8'));
    eq(saved.class, 'Group', 'class');
    eq(saved.modelId, 'users', 'modelId');
    eq(saved.matchType, 'all', 'matchType');
    eq(JSON.stringify(saved.rules), JSON.stringify([{ propertyId: 'ltv', op: 'gte', match: 100 },
      { propertyId: 'last_login_at', op: 'relative_gt', relativeMatchNumber: 30, relativeMatchUnit: 'days' }]), 'rules');
    const want = countWhere(`${LTV} >= 100 AND ${RECENT}`);
    await until('the group to be counted', async () => {
      const g = (await api('GET', '/api/v1/groups?model=users')).body.find((x) => x.id === 'big_spenders_recently_active');
      return g && g.member_count === want;
    }, 20000);
    await page.goto(`${BASE}/#/models/users`);
    await h1('Users');
    await main().getByRole('row').filter({ hasText: 'Big spenders, recently active' }).getByText(String(want), { exact: true }).first().waitFor();
    await shot('model-with-audience');
    // and it opens again in the builder, rules as saved
    await page.goto(`${BASE}/#/audiences/users/big_spenders_recently_active`);
    await h1('Audience: Big spenders, recently active');
    eq(await rule(1).getByLabel('Rule 2: how many').inputValue(), '30', 'relative number');
    await countIs(want, 'the saved audience');
  });

  await step('search a record by email; its page shows properties, audiences, one status per destination and its history', async () => {
    await nav('Records');
    await h1('Records');
    await page.getByLabel('Find a record').fill('grace@example.com');
    await page.getByRole('button', { name: 'Search' }).click();
    await h1('Record “3”');
    const rec = main().locator('#record');
    await rec.getByText('grace@example.com').first().waitFor();
    await rec.locator('#record-groups').getByText('High Value').waitFor();
    const card = rec.locator('[data-destination="braze_sync"]');
    await card.getByText('failed, will retry (attempt 1)').waitFor();
    eq(await card.locator('.badge').count(), 1, 'one status badge for the destination');
    eq(await card.getByText(/outside/).count(), 0, '"outside its audience" beside "failed, will retry"');
    await card.getByText('What the next run sends').waitFor();
    await rec.locator('#record-history li[data-what="failed"]').getByText(/EMAIL_BAD_FORMAT|email/i).first().waitFor();
    await checkLabels('record page');
    await shot('record-grace');
    // Ada was sent: up to date
    await nav('Records');
    await page.getByLabel('Find a record').fill('1');
    await page.getByRole('button', { name: 'Search' }).click();
    await h1('Record “1”');
    await main().locator('[data-destination="braze_sync"]').getByText('up to date').waitFor();
    // an email typed where a key is expected: no "HTTP 400", the search finds her
    await page.goto(`${BASE}/#/records/users/${encodeURIComponent('ada@example.com')}`);
    await h1('Record “1”');
  });

  // the record's history as a timeline (issue #16): without a sync log, what the state
  // store knows, and one line saying the sync log keeps the full history. Records are
  // opened through the search, as a marketer does (a hash typed over a page still
  // rendering can be overtaken by that render).
  const openRecord = async (key) => {
    const menu = page.getByRole('button', { name: 'Menu' }); // a narrow screen: the navigation is behind it
    if (await menu.isVisible() && (await menu.getAttribute('aria-expanded')) !== 'true') await menu.click();
    await nav('Records');
    await h1('Records');
    await page.getByLabel('Find a record').fill(key);
    await page.getByRole('button', { name: 'Search' }).click();
    await h1(`Record “${key}”`);
  };
  for (const width of [1280, 360]) {
    await step(`a record's history as a timeline at ${width} px: in words, newest first, no serious axe violation`, async () => {
      await page.setViewportSize({ width, height: 900 });
      await openRecord('3');
      const items = main().locator('#record-history ol.timeline > li');
      await items.first().waitFor();
      eq(await items.first().getAttribute('data-what'), 'pending', 'the newest item: the retry that waits');
      await items.first().getByText(/Waiting to be sent again to/).waitFor();
      const failed = main().locator('#record-history li[data-what="failed"]');
      await failed.getByText(/Failed to send to/).waitFor();
      await failed.getByRole('link', { name: /^run \d+$/ }).waitFor();
      await main().locator('#history-no-log').getByText(/Turning on the sync log \(a destination setting\) keeps the full history/).waitFor();
      await openRecord('1');
      const sent = main().locator('#record-history li[data-what="sent"]');
      await sent.getByText(/Sent to and confirmed by/).waitFor();
      await sent.getByRole('link', { name: /^run \d+$/ }).waitFor();
      await sent.locator('time').waitFor();
      await openRecord('3');
      await main().locator('#record-history ol.timeline > li').first().waitFor();
      await page.evaluate(AXE);
      const bad = await page.evaluate(async () => {
        // eslint-disable-next-line no-undef
        const r = await axe.run(document, { resultTypes: ['violations'] });
        return r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id}: ${v.help}`);
      });
      assert(!bad.length, `axe violations: ${bad.join('; ')}`);
      const wide = await page.evaluate(() => document.scrollingElement.scrollWidth <= window.innerWidth);
      assert(wide, `the record page scrolls sideways at ${width} px`);
      await shot(`record-history-${width}`);
    });
  }
  await page.setViewportSize({ width: 1280, height: 900 });

  await step('list an audience\'s members, paged', async () => {
    await nav('Records');
    await h1('Records');
    await page.getByLabel('In audience').selectOption('high_value');
    await page.getByRole('button', { name: 'Search' }).click();
    const rows = main().locator('#records tbody tr');
    await until('the members', async () => (await rows.count()) === countWhere(`${LTV} >= 100`));
    await shot('records-high-value');
  });

  await step('create a source: pick the app and the table, see its first rows and the key column', async () => {
    await nav('Data');
    await h1('Data');
    await main().getByRole('link', { name: 'Add a source to Users' }).click();
    await h1('New source of Users');
    await page.getByLabel('Name', { exact: true }).fill('Orders');
    await page.getByLabel('App').selectOption('legacy');
    await main().getByText('Tables not shown').waitFor(); // outside the data directory
    eq(await main().getByText('do-not-show').count(), 0, 'a value of a file outside the data directory');
    await page.getByLabel('App').selectOption('demo_db');
    await page.getByLabel('Table', { exact: true }).selectOption('orders');
    const prev = page.locator('#source-preview');
    await prev.getByRole('columnheader', { name: 'order_id' }).waitFor();
    await prev.getByRole('cell', { name: '20.5' }).waitFor();
    eq(await page.getByLabel('Key column').inputValue(), 'order_id', 'the key column guessed');
    await page.getByLabel('Key column').selectOption('customer');
    await page.getByLabel('It matches property').selectOption('user_id');
    await checkLabels('the source form');
    await shot('source-form');
    await page.getByRole('button', { name: 'Create source' }).click();
    await h1('Data');
    await main().getByRole('link', { name: 'Orders' }).waitFor();
    const saved = JSON.parse(fs.readFileSync(path.join(CFG, 'sources/orders.json'), 'utf8'));
    eq(JSON.stringify([saved.class, saved.type, saved.appId, saved.modelId, saved.options, saved.mapping]),
      JSON.stringify(['Source', 'sqlite-import-table', 'demo_db', 'users', { table: 'orders' }, { customer: 'user_id' }]), 'the source as saved');
  });

  await step('create a property: a column with sample values, an aggregation, a filter, a type', async () => {
    await main().getByRole('link', { name: 'Add a property to Users' }).click();
    await h1('New property of Users');
    await page.getByLabel('Key', { exact: true }).fill('big_order_total');
    await page.getByLabel('Source').selectOption('orders');
    await page.getByLabel('Column').selectOption('total');
    await main().locator('#column-samples').filter({ hasText: 'Sample values: “20.5”, “4.5”' }).waitFor();
    await page.getByLabel('Value per record').selectOption('sum');
    await page.getByLabel('Type').selectOption('float');
    await page.getByRole('button', { name: 'Add a filter' }).click();
    await page.getByLabel('Filter 1: column').selectOption('total');
    await page.getByLabel('Filter 1: condition').selectOption('gte');
    await page.getByLabel('Filter 1: value').fill('10');
    await checkLabels('the property form');
    await shot('property-form');
    await page.getByRole('button', { name: 'Create property' }).click();
    await h1('Data');
    await main().getByRole('link', { name: 'big_order_total' }).waitFor();
    const want = Number(sql('SELECT SUM(total) FROM orders WHERE customer = 1 AND total >= 10'));
    const rec = await api('GET', '/api/v1/records/users/1');
    eq(rec.body.properties.big_order_total, want, 'the new property of record 1, as sqlite3 sums it');
    await shot('data');
  });

  await step('the viewer sees the builder read only', async () => {
    await signOut();
    await signIn(VIEWER);
    await page.goto(`${BASE}/#/audiences/users/high_value`);
    await h1('Audience: High Value');
    await main().getByText('Read only.').waitFor();
    assert(await page.getByRole('button', { name: 'Save audience' }).isDisabled(), 'Save is disabled for a viewer');
    const r = await page.evaluate(async () => {
      const s = await (await fetch('/api/v1/session')).json();
      const x = await fetch('/api/v1/models/users/groups/preview', { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': s.csrf }, body: JSON.stringify({ group: { rules: [] } }) });
      return x.status;
    });
    eq(r, 403, 'a viewer\'s preview');
    assert(!pageErrors.length, `page errors:\n${pageErrors.join('\n')}`);
  });

  await step('joey serve stops cleanly', async () => {
    await browser.close();
    browser = null;
    serve.kill('SIGTERM');
    await until('joey serve to exit', () => serve.exited, 30000, 100);
    const text = fs.readFileSync(path.join(tmp, 'joey-serve.log'), 'utf8');
    assert(!/ERROR: (Address|Leak)Sanitizer|runtime error:/.test(text), `sanitizer report:\n${text.slice(-4000)}`);
    eq(serve.exited.code, 0, 'exit status of joey serve');
  });
}

try {
  await main_();
} catch (e) {
  steps.failed += 1;
  log(`FAIL setup: ${e && e.stack ? e.stack : e}`);
} finally {
  if (browser) await browser.close().catch(() => {});
  for (const c of children) if (!c.exited) c.kill('SIGTERM');
  await sleep(300);
  for (const c of children) if (!c.exited) c.kill('SIGKILL');
  if (steps.failed) {
    for (const f of ['joey-serve.log', 'braze-sim.log']) {
      const p = path.join(tmp, f);
      if (fs.existsSync(p)) log(`---- ${f} (last 3000 bytes)\n${fs.readFileSync(p, 'utf8').slice(-3000)}`);
    }
  }
  if (!process.env.JOEY_KEEP_TMP) fs.rmSync(tmp, { recursive: true, force: true });
  log(`screenshots: ${ART}`);
  log(`${steps.passed} passed, ${steps.failed} failed`);
  process.exit(steps.failed ? 1 : 0);
}
