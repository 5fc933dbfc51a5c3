// ui_model.test.mjs: "New model" in joey's web UI (issue #16) in headless Chromium, as a
// marketer would use it: a model made from one SQLite table in one step.
//
// Starts `joey serve` on a copy of the demo config (its SQLite warehouse in the data
// directory, with an extra "customers" table whose key is a text code), makes an editor
// and a viewer with the CLI, then in Chromium as the editor: the overview's primary "New
// model" action, the form (the ID made from the name, the app's tables, a preview of the
// first rows, the key column and its type guessed from them, the email column guessed),
// a model ID that is taken shown at the ID field in plain words (nothing written), then
// the model created with the keyboard alone: it lands on the new model's page, and its
// records page lists the table's 3 records. The form and the model page at 1280 and
// 360 px: screenshots, axe-core (no serious or critical violation) and no sideways
// scrolling. The viewer gets no "New model" and no form. At the end `joey validate` passes
// on the written directory and `joey plan` plans the new model (with a destination added
// through the API). Screenshots go to <artifacts>/browser-model/.
//
// Environment: as ui.test.mjs (JOEY_BIN, JOEY_SRC, JOEY_CHROMIUM, JOEY_ARTIFACTS).
// Prints "N passed, N failed" last; exits 1 on a failure.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import { JOEY, SRC, CHROMIUM, artifacts, log, sleep, assert, eq, freePort, until, spawnLogged, untilHealthy, apiCall, makeShot, Steps } from './lib.mjs';
import * as inPage from './lib.mjs';

const require = createRequire(import.meta.url);
const AXE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const ART = artifacts('browser-model');
const EDITOR = { name: 'erin', role: 'editor', pw: `erin-${crypto.randomBytes(6).toString('hex')}` };
const VIEWER = { name: 'vic', role: 'viewer', pw: `vic-${crypto.randomBytes(6).toString('hex')}` };
const SIM_KEY = 'test-key';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joey-model.'));
const children = [];
let browser;
let page;
let TOKEN;
let BASE;
let CFG;
let STATE;
const pageErrors = [];

const start = (name, cmd, args, env) => spawnLogged(tmp, children, name, cmd, args, env);
function joeyEnv(extra = {}) {
  const env = { ...process.env, ASAN_OPTIONS: process.env.ASAN_OPTIONS || 'detect_leaks=0', SIM_BRAZE_KEY: SIM_KEY, ...extra };
  delete env.JOEY_API_TOKEN;
  delete env.JOEY_ACCOUNTS;
  return env;
}
const joeyCli = (args, input) => execFileSync(JOEY, args, { input, env: joeyEnv(), encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
const api = (method, p, body) => apiCall(BASE, TOKEN, method, p, body);
const shot = makeShot(ART, () => page);
const steps = new Steps({ onFail: async (name) => { if (page) await shot(`FAILED-${name.replace(/[^a-z0-9]+/gi, '-')}`); } });
const { step } = steps;
const main = () => page.locator('main');
const h1 = (text) => inPage.h1(page, text);
const signIn = (u) => inPage.signIn(page, u);
const signOut = () => inPage.signOut(page);

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
  fs.mkdirSync(root);
  fs.cpSync(path.join(SRC, 'examples/demo/config'), cfg, { recursive: true });
  for (const f of ['braze_additive.json', 'braze_enrich.json']) fs.rmSync(path.join(cfg, 'destinations', f));
  fs.rmSync(path.join(cfg, 'schedules'), { recursive: true, force: true });
  fs.writeFileSync(path.join(cfg, 'apps/braze.json'), JSON.stringify({
    id: 'braze', name: 'Braze', class: 'App', type: 'braze', options: { apiKey: '${SIM_BRAZE_KEY}', restEndpoint: 'http://127.0.0.1:9' },
  }, null, 2));
  fs.mkdirSync(path.join(root, 'data'));
  const db = path.join(root, 'data/demo.db');
  fs.writeFileSync(path.join(cfg, 'apps/demo_db.json'), JSON.stringify({ id: 'demo_db', name: 'Demo warehouse', class: 'App', type: 'sqlite', options: { file: 'data/demo.db' } }, null, 2));
  execFileSync('sqlite3', [db], { input: fs.readFileSync(path.join(SRC, 'examples/demo/demo.sql')) });
  execFileSync('sqlite3', [db, "CREATE TABLE customers (code TEXT, mail TEXT, city TEXT, visits INTEGER);"
    + "INSERT INTO customers VALUES ('c-1','ana@example.com','Oslo',3),('c-2','bo@example.com','Rome',5),('c-3','cy@example.com','Lima',3);"]);
  return cfg;
}

async function main_() {
  fs.mkdirSync(ART, { recursive: true });
  for (const f of fs.readdirSync(ART)) if (f.endsWith('.png')) fs.rmSync(path.join(ART, f));
  CFG = prepare();
  fs.mkdirSync(path.join(tmp, 'state'));
  STATE = path.join(tmp, 'state/joey.db');
  for (const u of [EDITOR, VIEWER]) joeyCli(['user', 'add', u.name, '--role', u.role, '--password-stdin', '--config', CFG, '--state', STATE], `${u.pw}\n`);
  joeyCli(['user', 'add', 'root', '--role', 'admin', '--password-stdin', '--config', CFG, '--state', STATE], `root-${crypto.randomBytes(6).toString('hex')}\n`);
  TOKEN = joeyCli(['user', 'token', 'root', '--label', 'model test', '--config', CFG, '--state', STATE]).trim();
  const port = await freePort();
  BASE = `http://127.0.0.1:${port}`;
  const serve = start('joey-serve', JOEY, ['serve', '--config', CFG, '--state', STATE, '--listen', `127.0.0.1:${port}`], joeyEnv());
  await untilHealthy('joey-serve', serve, BASE, tmp);

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
  const preview = () => page.locator('#new-model-preview table');

  await step('the editor finds "New model" on the overview and opens the form', async () => {
    await page.goto(`${BASE}/#/`);
    await signIn(EDITOR);
    await h1('Overview');
    await main().getByRole('link', { name: 'New model' }).first().click();
    await h1('New model');
    await inPage.checkLabels(page, 'the new model form');
  });

  await step('the form: the ID from the name, the tables, a preview, the key and email columns guessed', async () => {
    await page.getByLabel('Name', { exact: true }).fill('Users again');
    eq(await page.getByLabel('ID', { exact: true }).inputValue(), 'users_again', 'the id made from the name');
    const appSel = page.getByLabel('App', { exact: true });
    eq(await appSel.locator('option').count(), 1, 'only the database app is offered (not Braze)');
    eq((await appSel.locator('option').first().textContent()).trim(), 'Demo warehouse', 'the app by its name');
    await page.getByLabel('Table', { exact: true }).selectOption('customers');
    await preview().locator('caption').filter({ hasText: 'The first 3 rows of customers' }).waitFor();
    eq(await preview().locator('tbody tr').count(), 3, 'preview rows');
    await main().getByText('ana@example.com').waitFor();
    eq(await page.getByLabel('Key column', { exact: true }).inputValue(), 'code', 'the key column guessed (the first column)');
    eq(await page.getByLabel('Key type', { exact: true }).inputValue(), 'string', 'the key type guessed from "c-1", "c-2", ...');
    eq(await page.getByLabel('Email column (optional)').inputValue(), 'mail', 'the email column guessed');
    await page.getByLabel('Key column', { exact: true }).selectOption('visits');
    eq(await page.getByLabel('Key type', { exact: true }).inputValue(), 'integer', 'the type follows the column: 3, 5, 3');
    await page.locator('#key-warning').filter({ hasText: '“3” appears twice in the first rows' }).waitFor();
    await shot('new-model-key-repeats');
    await page.getByLabel('Key column', { exact: true }).selectOption('code');
    eq(await page.getByLabel('Key type', { exact: true }).inputValue(), 'string', 'and back');
    eq(await page.locator('#key-warning').textContent(), '', 'no warning for a key that does not repeat');
    await shot('new-model-form');
  });

  await step('an ID that is taken: said at the ID field in plain words, nothing written', async () => {
    await page.getByLabel('Name', { exact: true }).fill('Users');
    eq(await page.getByLabel('ID', { exact: true }).inputValue(), 'users', 'the id of the demo model');
    const before = fs.readdirSync(path.join(CFG, 'sources')).sort().join(',');
    await page.getByRole('button', { name: 'Create model' }).click();
    await main().locator('#diagnostics').filter({ hasText: 'The change was not saved' }).waitFor();
    await main().locator('[data-field="model.id"] .field-error').filter({ hasText: 'A model with the ID “users” already exists' }).waitFor();
    eq(await page.getByLabel('ID', { exact: true }).getAttribute('aria-invalid'), 'true', 'the ID control is marked invalid');
    eq(fs.readdirSync(path.join(CFG, 'sources')).sort().join(','), before, 'no source file written');
    assert(!fs.existsSync(path.join(CFG, 'properties/users_code.json')), 'no property file written');
    await shot('new-model-taken-id');
  });

  for (const width of [1280, 360]) {
    await step(`the form at ${width} px: screenshot, axe-core, no sideways scrolling`, async () => {
      await page.setViewportSize({ width, height: 900 });
      await sleep(100);
      await shot(`new-model-${width}`);
      await checkPage(`new model form at ${width} px`);
    });
  }
  await page.setViewportSize({ width: 1280, height: 900 });

  await step('the model is created with the keyboard alone and lands on its page', async () => {
    const name = page.getByLabel('Name', { exact: true });
    await name.fill('Customers');
    // the ID was made from the name until now: it follows
    eq(await page.getByLabel('ID', { exact: true }).inputValue(), 'customers', 'the id follows the name');
    await name.focus();
    // Tab through the form to "Create model", then Enter
    let onButton = false;
    for (let i = 0; i < 30 && !onButton; i++) {
      await page.keyboard.press('Tab');
      onButton = await page.evaluate(() => document.activeElement && document.activeElement.textContent === 'Create model');
    }
    assert(onButton, 'Tab reaches "Create model"');
    await page.keyboard.press('Enter');
    await h1('Customers');
    await page.locator('#toast').filter({ hasText: 'Model “Customers” created.' }).waitFor();
    for (const f of ['models/customers.json', 'sources/customers_customers.json', 'properties/customers_code.json', 'properties/customers_mail.json']) {
      assert(fs.existsSync(path.join(CFG, f)), `${f} written`);
    }
    const key = JSON.parse(fs.readFileSync(path.join(CFG, 'properties/customers_code.json'), 'utf8'));
    eq(key.unique, true, 'the key property is unique');
    eq(key.type, 'string', 'the key type as chosen');
    const src = JSON.parse(fs.readFileSync(path.join(CFG, 'sources/customers_customers.json'), 'utf8'));
    eq(JSON.stringify(src.mapping), JSON.stringify({ code: 'customers_code' }), 'the source maps the key column to the key property');
    const m = await api('GET', '/api/v1/models/customers');
    eq(m.status, 200, 'the server has the model');
    eq(m.body.primary_key, 'code', 'its primary key is the key property (by its key)');
    await shot('model-page');
  });

  for (const width of [1280, 360]) {
    await step(`the new model's page at ${width} px: axe-core, no sideways scrolling`, async () => {
      await page.setViewportSize({ width, height: 900 });
      await sleep(100);
      await shot(`model-page-${width}`);
      await checkPage(`model page at ${width} px`);
    });
  }
  await page.setViewportSize({ width: 1280, height: 900 });

  await step('its records page lists the 3 records of the table', async () => {
    await page.goto(`${BASE}/#/records/customers`);
    await h1('Records');
    await until('3 records', async () => (await page.locator('#records tbody tr').count()) === 3, 15000, 100);
    for (const k of ['c-1', 'c-2', 'c-3']) await page.locator('#records').getByRole('link', { name: k, exact: true }).waitFor();
    await shot('records');
  });

  await step('the viewer gets no "New model" and no form', async () => {
    await signOut();
    await signIn(VIEWER);
    await page.goto(`${BASE}/#/`);
    await h1('Overview');
    eq(await main().getByRole('link', { name: 'New model' }).count(), 0, 'no New model on the overview');
    await page.goto(`${BASE}/#/data/models/new`);
    await h1('New model');
    eq(await main().locator('form').count(), 0, 'no form');
    await main().getByText('Needs the editor role', { exact: false }).first().waitFor();
  });

  await step('joey validate passes on the written directory; joey plan plans the new model', async () => {
    const d = await api('POST', '/api/v1/config', { objects: [{ class: 'Destination', id: 'customers_braze', name: 'Customers in Braze',
      type: 'braze-export-users', appId: 'braze', modelId: 'customers', syncMode: 'sync', collection: 'model',
      mapping: { external_id: 'customers_code', email: 'customers_mail' } }] });
    eq(d.status, 201, `a destination for the new model: ${JSON.stringify(d.body)}`);
    joeyCli(['validate', '--config', CFG]);
    const plan = JSON.parse(joeyCli(['plan', '--config', CFG, '--state', STATE, '--destination', 'customers_braze', '--json']));
    eq(plan.destinations[0].counts.create, 3, 'the plan creates the 3 customers');
  });

  await step('no script error in the page', async () => {
    assert(!pageErrors.length, pageErrors.join('\n'));
  }, { always: true });

  await step('joey serve stops cleanly', async () => {
    await browser.close();
    browser = null;
    serve.kill('SIGTERM');
    await until('joey serve to exit', () => serve.exited, 30000, 100);
    const text = fs.readFileSync(path.join(tmp, 'joey-serve.log'), 'utf8');
    assert(!/ERROR: (Address|Leak)Sanitizer|runtime error:/.test(text), `sanitizer report:\n${text.slice(-4000)}`);
    eq(serve.exited.code, 0, 'exit status of joey serve');
  }, { always: true });
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
    const p = path.join(tmp, 'joey-serve.log');
    if (fs.existsSync(p)) log(`---- joey-serve.log (last 3000 bytes)\n${fs.readFileSync(p, 'utf8').slice(-3000)}`);
  }
  if (!process.env.JOEY_KEEP_TMP) fs.rmSync(tmp, { recursive: true, force: true });
  log(`screenshots: ${ART}`);
  log(`${steps.passed} passed, ${steps.failed} failed`);
  process.exit(steps.failed ? 1 : 0);
}
