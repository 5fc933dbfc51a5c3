// ui_warehouse_source.test.mjs: sources of a Snowflake and a BigQuery app made in joey's
// web UI (issue #16), in headless Chromium, as an editor would make them.
//
// Starts the Braze simulator, warehouse-fake twice (--mode snowflake with a programmatic
// access token, --mode bigquery with a service account; tests/fakes/warehouse.c) and
// `joey serve` on a copy of the demo config with a Snowflake app and a BigQuery app
// pointed at them. Then as the editor: a new source of the Snowflake app lists the
// schema's tables, previews the first rows of USERS (equal to sqlite3's), is saved as
// `snowflake-import-table`; a new source reads "An SQL query" from the Snowflake app,
// is previewed, refused in plain words for a write, and saved as
// `snowflake-import-query`; a new source of the BigQuery app lists the dataset's tables,
// previews `users` (a TIMESTAMP as ISO text) and is saved as `bigquery-import-table`.
//
// Environment: as ui.test.mjs (JOEY_BIN, JOEY_SRC, BRAZE_SIM_BIN, JOEY_CHROMIUM,
// JOEY_ARTIFACTS). Prints "N passed, N failed" last; exits 1 on a failure.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { JOEY, SRC, SIM, CHROMIUM, artifacts, log, sleep, assert, eq, freePort, until, spawnLogged, untilHealthy, makeShot, Steps } from './lib.mjs';
import * as inPage from './lib.mjs';

const ART = artifacts('browser-warehouse-source');
const EDITOR = { name: 'wendy', role: 'editor', pw: `wendy-${crypto.randomBytes(6).toString('hex')}` };
const SIM_KEY = 'test-key';
const FAKE = path.join(path.dirname(JOEY), 'warehouse-fake');
const QUERY = 'SELECT "ID" AS "buyer", "EMAIL" AS "mail" FROM "USERS" WHERE "ID" <= 3 ORDER BY "ID"';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joey-wsrc.'));
const children = [];
let browser;
let page;
let BASE;
let CFG;
let SF_DB;
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
const shot = makeShot(ART, () => page);
const steps = new Steps({ onFail: async (name) => { if (page) await shot(`FAILED-${name.replace(/[^a-z0-9]+/gi, '-')}`); } });
const { step } = steps;
const main = () => page.locator('main');
const h1 = (text) => inPage.h1(page, text);
const sqlite = (db, q) => execFileSync('sqlite3', [db, q], { encoding: 'utf8' }).trim();
const readSource = (id) => JSON.parse(fs.readFileSync(path.join(CFG, `sources/${id}.json`), 'utf8'));

async function startFake(name, args) {
  const portFile = path.join(tmp, `${name}.port`);
  start(name, FAKE, ['--db-dir', path.join(tmp, 'wh'), '--public-key', path.join(tmp, 'pub.pem'), '--port-file', portFile,
    '--max-lifetime', '600', '--quiet', ...args]);
  await until(name, () => fs.existsSync(portFile) && fs.readFileSync(portFile, 'utf8').trim(), 10000, 50);
  return `http://127.0.0.1:${fs.readFileSync(portFile, 'utf8').trim()}`;
}

async function prepare(simUrl) {
  fs.mkdirSync(path.join(tmp, 'wh'));
  SF_DB = path.join(tmp, 'wh/SHOP.db');
  sqlite(SF_DB, `CREATE TABLE "USERS" ("ID" NUMBER(38,0), "EMAIL" VARCHAR); CREATE TABLE "ORDERS" ("USER_ID" NUMBER(38,0));
    INSERT INTO "USERS" VALUES (1, 'ann@example.com'), (2, 'bob@example.com'), (3, NULL), (4, 'di@example.com')`);
  sqlite(path.join(tmp, 'wh/crm.db'), `CREATE TABLE users (id INT64, signup TIMESTAMP);
    INSERT INTO users VALUES (1, '2024-01-02 03:04:05.678'), (2, NULL)`);
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  fs.writeFileSync(path.join(tmp, 'pub.pem'), publicKey.export({ type: 'spki', format: 'pem' }));
  const sfUrl = await startFake('sf-fake', ['--account', 'xy12345', '--user', 'joey', '--token', 'good-pat']);
  const bqUrl = await startFake('bq-fake', ['--mode', 'bigquery', '--client-email', 'joey@proj-1.iam.gserviceaccount.com', '--project', 'proj-1']);
  const root = path.join(tmp, 'project');
  CFG = path.join(root, 'config');
  fs.mkdirSync(root);
  fs.cpSync(path.join(SRC, 'examples/demo/config'), CFG, { recursive: true });
  for (const f of ['braze_additive.json', 'braze_enrich.json']) fs.rmSync(path.join(CFG, 'destinations', f));
  fs.rmSync(path.join(CFG, 'schedules'), { recursive: true, force: true });
  fs.mkdirSync(path.join(root, 'data'));
  execFileSync('sqlite3', [path.join(root, 'data/demo.db')], { input: fs.readFileSync(path.join(SRC, 'examples/demo/demo.sql')) });
  const app = (o) => fs.writeFileSync(path.join(CFG, `apps/${o.id}.json`), JSON.stringify({ class: 'App', ...o }, null, 2));
  app({ id: 'braze', name: 'Braze', type: 'braze', options: { apiKey: '${SIM_BRAZE_KEY}', restEndpoint: simUrl } });
  app({ id: 'demo_db', name: 'Demo warehouse', type: 'sqlite', options: { file: 'data/demo.db' } });
  app({ id: 'snow', name: 'Snowflake', type: 'snowflake', options: { account: 'xy12345', username: 'joey', password: '${E2E_SF_TOKEN}', warehouse: 'compute_wh', database: 'shop', endpoint: sfUrl } });
  app({ id: 'bq', name: 'BigQuery', type: 'bigquery', options: { project_id: 'proj-1', dataset: 'crm', client_email: 'joey@proj-1.iam.gserviceaccount.com', private_key: '${E2E_BQ_KEY}', endpoint: bqUrl } });
  return { E2E_SF_TOKEN: 'good-pat', E2E_BQ_KEY: privateKey.export({ type: 'pkcs8', format: 'pem' }) };
}

// A new source of Users: name, app, and (for a table) the table whose first rows show.
async function newSource(name, appId) {
  await page.goto(`${BASE}/#/data`);
  await h1('Data');
  await main().getByRole('link', { name: 'Add a source to Users' }).click();
  await h1('New source of Users');
  await page.getByLabel('Name', { exact: true }).fill(name);
  await page.getByLabel('App').selectOption(appId);
}
const previewRows = () => page.locator('#source-preview tbody tr').evaluateAll((rows) => rows.map((r) => [...r.cells].map((c) => c.textContent).join('|')));

async function main_() {
  fs.mkdirSync(ART, { recursive: true });
  for (const f of fs.readdirSync(ART)) if (f.endsWith('.png')) fs.rmSync(path.join(ART, f));
  if (!fs.existsSync(FAKE)) { log(`skipped: ${FAKE} is not built`); return; }
  const simPortFile = path.join(tmp, 'sim.port');
  start('braze-sim', SIM, ['--port', '0', '--port-file', simPortFile, '--api-key', SIM_KEY, '--max-lifetime', '600', '--quiet']);
  await until('braze-sim', () => fs.existsSync(simPortFile) && fs.readFileSync(simPortFile, 'utf8').trim(), 10000, 50);
  const secrets = await prepare(`http://127.0.0.1:${fs.readFileSync(simPortFile, 'utf8').trim()}`);
  fs.mkdirSync(path.join(tmp, 'state'));
  const stateFile = path.join(tmp, 'state/joey.db');
  joeyCli(['user', 'add', EDITOR.name, '--role', EDITOR.role, '--password-stdin', '--config', CFG, '--state', stateFile], `${EDITOR.pw}\n`);
  const port = await freePort();
  BASE = `http://127.0.0.1:${port}`;
  const serve = start('joey-serve', JOEY, ['serve', '--config', CFG, '--state', stateFile, '--listen', `127.0.0.1:${port}`],
    joeyEnv({ JOEY_ALLOW_ENDPOINTS: 'http://127.0.0.1:*', SIM_BRAZE_KEY: SIM_KEY, ...secrets }));
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
  await inPage.signIn(page, EDITOR);

  await step('Snowflake: the schema\'s tables are offered, USERS previewed as sqlite3 reads it, saved as snowflake-import-table', async () => {
    await newSource('Snow users', 'snow');
    await until('the Snowflake tables', async () => JSON.stringify(await page.getByLabel('Table', { exact: true }).locator('option').allTextContents()) === JSON.stringify(['ORDERS', 'USERS']));
    await page.getByLabel('Table', { exact: true }).selectOption('USERS');
    await page.locator('#source-preview').getByText('The first 4 rows of USERS').waitFor();
    eq(JSON.stringify(await page.locator('#source-preview th').allTextContents()), JSON.stringify(['ID', 'EMAIL']), 'the columns');
    const want = sqlite(SF_DB, 'SELECT "ID", "EMAIL" FROM "USERS"').split('\n');
    eq(JSON.stringify((await previewRows()).map((r) => r.replace(/\|∅$/, '|'))), JSON.stringify(want), 'the rows, as sqlite3 reads them');
    await page.getByLabel('Key column').selectOption('ID');
    await page.getByLabel('It matches property').selectOption('user_id');
    await shot('snowflake-table-source');
    await page.getByRole('button', { name: 'Create source' }).click();
    await h1('Data');
    const saved = readSource('snow_users');
    eq(JSON.stringify([saved.type, saved.appId, saved.options, saved.mapping]),
      JSON.stringify(['snowflake-import-table', 'snow', { table: 'USERS' }, { ID: 'user_id' }]), 'the source as saved');
  });

  await step('Snowflake: an SQL query previewed, a write refused in plain words, saved as snowflake-import-query', async () => {
    await newSource('Snow buyers', 'snow');
    await page.getByLabel('An SQL query').check();
    await page.getByLabel('SQL query', { exact: true }).fill('DELETE FROM "USERS"');
    await page.getByRole('button', { name: 'Preview' }).click();
    await page.locator('#source-preview [role=alert]').getByText('The database could not run this query').waitFor();
    eq(sqlite(SF_DB, 'SELECT COUNT(*) FROM "USERS"'), '4', 'the USERS table after the refused write');
    await page.getByLabel('SQL query', { exact: true }).fill(QUERY);
    await page.getByRole('button', { name: 'Preview' }).click();
    await page.locator('#source-preview').getByText('rows the query returns').waitFor();
    eq(JSON.stringify(await page.locator('#source-preview th').allTextContents()), JSON.stringify(['buyer', 'mail']), 'the query\'s columns');
    eq((await previewRows()).length, 3, 'the query\'s rows');
    await page.getByLabel('Key column').selectOption('buyer');
    await page.getByLabel('It matches property').selectOption('user_id');
    await page.getByRole('button', { name: 'Create source' }).click();
    await h1('Data');
    const saved = readSource('snow_buyers');
    eq(JSON.stringify([saved.type, saved.appId, saved.options, saved.mapping]),
      JSON.stringify(['snowflake-import-query', 'snow', { query: QUERY }, { buyer: 'user_id' }]), 'the source as saved');
  });

  await step('BigQuery: the dataset\'s tables are offered, users previewed (a TIMESTAMP as ISO text), saved as bigquery-import-table', async () => {
    await newSource('BQ users', 'bq');
    await until('the BigQuery tables', async () => JSON.stringify(await page.getByLabel('Table', { exact: true }).locator('option').allTextContents()) === JSON.stringify(['users']));
    await page.locator('#source-preview').getByText('The first 2 rows of users').waitFor();
    const rows = await previewRows();
    assert(rows[0].startsWith('1|2024-01-02T03:04:05.678'), `the first row: ${rows[0]}`);
    await page.getByLabel('Key column').selectOption('id');
    await page.getByLabel('It matches property').selectOption('user_id');
    await shot('bigquery-table-source');
    await page.getByRole('button', { name: 'Create source' }).click();
    await h1('Data');
    const saved = readSource('bq_users');
    eq(JSON.stringify([saved.type, saved.appId, saved.options]), JSON.stringify(['bigquery-import-table', 'bq', { table: 'users' }]), 'the source as saved');
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
    for (const f of ['joey-serve.log', 'sf-fake.log', 'bq-fake.log']) {
      const p = path.join(tmp, f);
      if (fs.existsSync(p)) log(`---- ${f} (last 3000 bytes)\n${fs.readFileSync(p, 'utf8').slice(-3000)}`);
    }
  }
  if (!process.env.JOEY_KEEP_TMP) fs.rmSync(tmp, { recursive: true, force: true });
  log(`screenshots: ${ART}`);
  log(`${steps.passed} passed, ${steps.failed} failed`);
  process.exit(steps.failed ? 1 : 0);
}
