// ui_query_source.test.mjs: a query source in joey's web UI (issue #16), in headless
// Chromium, as an editor would make one.
//
// Starts the Braze simulator and `joey serve` on a copy of the demo config (its SQLite
// warehouse in the data directory, the Braze app pointed at the simulator), and a query
// source written as a file (the case that lost its query when saved: the old form
// dropped options.query). Then as the editor: opens that source and saves it unchanged:
// the file keeps its query; creates a source that reads "An SQL query", previews it
// (columns and first rows equal sqlite3's), sees a write attempt refused in plain words
// with the database's message behind a toggle (and the database unchanged), picks the
// key column from the query's columns, saves it (`sqlite-import-query` with
// options.query on disk), reopens it and finds the query kept; makes a property of it
// whose column list and sample values come from the query; axe-core (no serious or
// critical violation) and no sideways scrolling on the form at 1280 and 360 px; a viewer
// cannot preview (403). Screenshots go to <artifacts>/browser-query-source/.
//
// Environment: as ui.test.mjs (JOEY_BIN, JOEY_SRC, BRAZE_SIM_BIN, JOEY_CHROMIUM,
// JOEY_ARTIFACTS). Prints "N passed, N failed" last; exits 1 on a failure.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { JOEY, SRC, SIM, CHROMIUM, artifacts, log, sleep, assert, eq, freePort, until, spawnLogged, untilHealthy, apiCall, makeShot, Steps } from './lib.mjs';
import * as inPage from './lib.mjs';

const require = createRequire(import.meta.url);
const AXE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const ART = artifacts('browser-query-source');
const EDITOR = { name: 'quinn', role: 'editor', pw: `quinn-${crypto.randomBytes(6).toString('hex')}` };
const VIEWER = { name: 'vera', role: 'viewer', pw: `vera-${crypto.randomBytes(6).toString('hex')}` };
const SIM_KEY = 'test-key';
const QUERY = 'SELECT customer AS buyer, SUM(total) AS spend, COUNT(*) AS orders\nFROM orders\nGROUP BY customer\nORDER BY customer';
const OLD_QUERY = 'SELECT user_id, MAX(amount) AS biggest FROM purchases GROUP BY user_id';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joey-qsrc.'));
const children = [];
let browser;
let page;
let TOKEN;
let BASE;
let SIM_URL;
let DB;
let CFG;
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
const signIn = (u) => inPage.signIn(page, u);
const signOut = () => inPage.signOut(page);
const checkLabels = (where) => inPage.checkLabels(page, where);
function sql(q) { return execFileSync('sqlite3', ['-cmd', '.timeout 20000', DB, q], { encoding: 'utf8' }).trim(); }
const readSource = (id) => JSON.parse(fs.readFileSync(path.join(CFG, `sources/${id}.json`), 'utf8'));

// axe-core in the page: no serious or critical violation; and no sideways scrolling.
async function checkPage(label) {
  await page.evaluate(AXE);
  const res = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`);
  });
  assert(!res.length, `${label}: axe violations:\n  ${res.join('\n  ')}`);
  const w = await page.evaluate(() => [document.scrollingElement.scrollWidth, window.innerWidth]);
  assert(w[0] <= w[1], `${label}: the page scrolls sideways (${w[0]} px wide in a ${w[1]} px window)`);
}

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
  fs.mkdirSync(path.join(root, 'data'));
  DB = path.join(root, 'data/demo.db');
  fs.writeFileSync(path.join(cfg, 'apps/demo_db.json'), JSON.stringify({ id: 'demo_db', name: 'Demo warehouse', class: 'App', type: 'sqlite', options: { file: 'data/demo.db' } }, null, 2));
  execFileSync('sqlite3', [DB], { input: fs.readFileSync(path.join(SRC, 'examples/demo/demo.sql')) });
  sql(`CREATE TABLE orders (order_id INTEGER PRIMARY KEY, customer INTEGER, total REAL, placed_at TEXT);
       INSERT INTO orders VALUES (1, 1, 20.5, '2026-01-01'), (2, 1, 4.5, '2026-02-01'), (3, 3, 99, '2026-03-01'), (4, 5, 12, '2026-03-02')`);
  // a query source written by hand: opening and saving it in the UI must keep its query
  fs.writeFileSync(path.join(cfg, 'sources/biggest.json'), JSON.stringify({
    id: 'biggest', name: 'Biggest purchase', class: 'Source', type: 'sqlite-import-query', appId: 'demo_db', modelId: 'users',
    options: { query: OLD_QUERY }, mapping: { user_id: 'user_id' },
  }, null, 2));
  return cfg;
}

async function main_() {
  fs.mkdirSync(ART, { recursive: true });
  for (const f of fs.readdirSync(ART)) if (f.endsWith('.png')) fs.rmSync(path.join(ART, f));
  const simPortFile = path.join(tmp, 'sim.port');
  start('braze-sim', SIM, ['--port', '0', '--port-file', simPortFile, '--api-key', SIM_KEY, '--max-lifetime', '600', '--quiet']);
  await until('braze-sim', () => fs.existsSync(simPortFile) && fs.readFileSync(simPortFile, 'utf8').trim(), 10000, 50);
  SIM_URL = `http://127.0.0.1:${fs.readFileSync(simPortFile, 'utf8').trim()}`;
  const cfg = prepare();
  fs.mkdirSync(path.join(tmp, 'state'));
  const stateFile = path.join(tmp, 'state/joey.db');
  for (const u of [EDITOR, VIEWER]) joeyCli(['user', 'add', u.name, '--role', u.role, '--password-stdin', '--config', cfg, '--state', stateFile], `${u.pw}\n`);
  joeyCli(['user', 'add', 'root', '--role', 'admin', '--password-stdin', '--config', cfg, '--state', stateFile], `root-${crypto.randomBytes(6).toString('hex')}\n`);
  TOKEN = joeyCli(['user', 'token', 'root', '--label', 'query source test', '--config', cfg, '--state', stateFile]).trim();
  const port = await freePort();
  BASE = `http://127.0.0.1:${port}`;
  const serve = start('joey-serve', JOEY, ['serve', '--config', cfg, '--state', stateFile, '--listen', `127.0.0.1:${port}`],
    joeyEnv({ JOEY_ALLOW_ENDPOINTS: SIM_URL, SIM_BRAZE_KEY: SIM_KEY }));
  await untilHealthy('joey-serve', serve, BASE, tmp);

  const userData = fs.mkdtempSync(path.join(tmp, 'chromium-'));
  browser = await chromium.launchPersistentContext(userData, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
  });
  page = browser.pages()[0] || await browser.newPage();
  page.setDefaultTimeout(20000);
  page.on('pageerror', (e) => pageErrors.push(String(e && e.stack ? e.stack : e)));
  await page.goto(`${BASE}/`);
  await signIn(EDITOR);

  await step('an existing query source opens with its query shown, previewed, and saved unchanged keeps it', async () => {
    await page.goto(`${BASE}/#/data/users/sources/biggest`);
    await h1('Source: Biggest purchase');
    assert(await page.getByLabel('An SQL query').isChecked(), '"An SQL query" is chosen');
    eq(await page.getByLabel('SQL query', { exact: true }).inputValue(), OLD_QUERY, 'the query shown');
    assert(await page.getByLabel('Table', { exact: true }).isHidden(), 'no table picker for a query source');
    const prev = page.locator('#source-preview');
    await prev.getByRole('columnheader', { name: 'biggest' }).waitFor();
    eq(await page.getByLabel('Key column').inputValue(), 'user_id', 'the saved key column');
    await page.getByRole('button', { name: 'Save source' }).click();
    await h1('Data');
    const saved = readSource('biggest');
    eq(JSON.stringify([saved.type, saved.options, saved.mapping]),
      JSON.stringify(['sqlite-import-query', { query: OLD_QUERY }, { user_id: 'user_id' }]), 'the source after an unchanged save');
  });

  await step('a new source reads an SQL query: Preview shows its columns and first rows as sqlite3 reads them', async () => {
    await main().getByRole('link', { name: 'Add a source to Users' }).click();
    await h1('New source of Users');
    await page.getByLabel('Name', { exact: true }).fill('Order totals');
    await page.getByLabel('App').selectOption('demo_db');
    await page.getByLabel('An SQL query').check();
    assert(await page.getByLabel('Table', { exact: true }).isHidden(), 'the table picker is hidden');
    await page.getByLabel('SQL query', { exact: true }).fill(QUERY);
    await page.getByRole('button', { name: 'Preview' }).click();
    const prev = page.locator('#source-preview');
    await prev.getByText('rows the query returns').waitFor();
    const heads = await prev.locator('th').allTextContents();
    eq(JSON.stringify(heads), JSON.stringify(['buyer', 'spend', 'orders']), 'the columns');
    const cells = await prev.locator('tbody tr').evaluateAll((rows) => rows.map((r) => [...r.cells].map((c) => c.textContent).join('|')));
    const want = sql(QUERY.replace(/\n/g, ' ')).split('\n');
    eq(JSON.stringify(cells), JSON.stringify(want), 'the rows, as sqlite3 reads them');
    const opts = await page.getByLabel('Key column').locator('option').allTextContents();
    eq(JSON.stringify(opts), JSON.stringify(['buyer', 'spend', 'orders']), 'key column choices: the query\'s columns');
  });

  await step('a query that writes is refused in plain words, the database\'s message behind a toggle, nothing changed', async () => {
    const before = sql('SELECT COUNT(*), SUM(total) FROM orders');
    await page.getByLabel('SQL query', { exact: true }).fill('DELETE FROM orders');
    await page.getByRole('button', { name: 'Preview' }).click();
    const note = page.locator('#source-preview [role=alert]');
    await note.getByText('The query cannot be previewed').waitFor();
    await note.getByText('The database could not run this query').waitFor();
    const det = note.locator('details');
    assert(!(await det.evaluate((d) => d.open)), 'the database\'s words are behind a toggle');
    await det.locator('summary').click();
    await det.getByText('syntax error').waitFor();
    await shot('query-refused');
    eq(sql('SELECT COUNT(*), SUM(total) FROM orders'), before, 'the orders table');
  });

  await step('pick the key column from the query, save: sqlite-import-query with the query on disk', async () => {
    await page.getByLabel('SQL query', { exact: true }).fill(QUERY);
    await page.getByRole('button', { name: 'Preview' }).click();
    await page.locator('#source-preview').getByText('rows the query returns').waitFor();
    await page.getByLabel('Key column').selectOption('buyer');
    await page.getByLabel('It matches property').selectOption('user_id');
    await checkLabels('the query source form');
    for (const width of [1280, 360]) {
      await page.setViewportSize({ width, height: 900 });
      await checkPage(`the query source form at ${width} px`);
      await shot(`query-source-${width}`);
    }
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.getByRole('button', { name: 'Create source' }).click();
    await h1('Data');
    await main().getByRole('link', { name: 'Order totals' }).waitFor();
    const saved = readSource('order_totals');
    eq(JSON.stringify([saved.class, saved.type, saved.appId, saved.modelId, saved.options, saved.mapping]),
      JSON.stringify(['Source', 'sqlite-import-query', 'demo_db', 'users', { query: QUERY }, { buyer: 'user_id' }]), 'the source as saved');
  });

  await step('reopened, the source shows its query, previewed, and its key column', async () => {
    await main().getByRole('link', { name: 'Order totals' }).click();
    await h1('Source: Order totals');
    assert(await page.getByLabel('An SQL query').isChecked(), '"An SQL query" is chosen');
    eq(await page.getByLabel('SQL query', { exact: true }).inputValue(), QUERY, 'the query kept');
    await page.locator('#source-preview').getByRole('columnheader', { name: 'spend' }).waitFor();
    eq(await page.getByLabel('Key column').inputValue(), 'buyer', 'the key column');
    await shot('query-source-reopened');
    await page.goto(`${BASE}/#/data`);
    await h1('Data');
  });

  await step('a property of the query source: its columns and sample values come from the query', async () => {
    await main().getByRole('link', { name: 'Add a property to Users' }).click();
    await h1('New property of Users');
    await page.getByLabel('Key', { exact: true }).fill('order_spend');
    await page.getByLabel('Source').selectOption('order_totals');
    await until('the query\'s columns', async () => JSON.stringify(await page.getByLabel('Column').locator('option').allTextContents()) === JSON.stringify(['buyer', 'spend', 'orders']));
    await page.getByLabel('Column').selectOption('spend');
    await main().locator('#column-samples').filter({ hasText: 'Sample values: “25.0”, “99.0”, “12.0”' }).waitFor();
    await page.getByLabel('Type').selectOption('float');
    await checkLabels('the property form');
    await shot('property-of-query-source');
    await page.getByRole('button', { name: 'Create property' }).click();
    await h1('Data');
    await main().getByRole('link', { name: 'order_spend' }).waitFor();
    const rec = await api('GET', '/api/v1/records/users/3');
    eq(rec.body.properties.order_spend, 99, 'the new property of record 3');
  });

  await step('a viewer cannot preview a query (403)', async () => {
    await signOut();
    await signIn(VIEWER);
    const r = await page.evaluate(async () => {
      const s = await (await fetch('/api/v1/session')).json();
      const x = await fetch('/api/v1/apps/demo_db/preview', { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': s.csrf }, body: JSON.stringify({ query: 'SELECT 1' }) });
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
