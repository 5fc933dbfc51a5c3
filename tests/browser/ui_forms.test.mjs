// ui_forms.test.mjs: what joey's web UI shows and saves must be what the config says, in
// headless Chromium. Saving a form unchanged writes back what was there:
//   - a source of a model whose key property's ID is not its key (as "New model" makes
//     them: <model>_<column>) keeps its mapping {column: property ID};
//   - a source and a property whose app file is outside joey serve's data directory (the
//     tables and columns are not shown: 403) keep their table, column, sort column and
//     filter columns;
// and the pages say what the data means:
//   - the model page tells a relative rule as the Audiences page does ("within the last
//     30 days"), not the opposite;
//   - the Records page opens when the model last looked at in the tab no longer exists;
//   - a property saved unchanged keeps its filter values as written ("007" stays text);
// and a Braze field a destination's form sets to "not sent" is not mapped again when
// the "only properties whose type fits" filter is switched; and of two tabs editing one
// source, the later save, made to the version it loaded, is refused with a notice
// (If-Match, 412) instead of overwriting the other's change; in the file editor too, whose
// notice says so (it said the change would break the configuration).
//
// The project: the demo config with its SQLite file at the project root (outside the
// data directory data/), plus a model "people" read from data/people.db (inside it)
// whose properties' IDs differ from their keys. An editor and an admin token (the
// test's own checks) are made with the CLI.
//
// Environment: as ui.test.mjs (JOEY_BIN, JOEY_SRC, JOEY_CHROMIUM, JOEY_ARTIFACTS).
// Prints "N passed, N failed" last; exits 1 on a failure.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { chromium } from 'playwright-core';
import { JOEY, SRC, CHROMIUM, artifacts, log, sleep, assert, eq, freePort, spawnLogged, untilHealthy, apiCall, makeShot, Steps } from './lib.mjs';
import * as inPage from './lib.mjs';

const ART = artifacts('browser-forms');
const EDITOR = { name: 'erin', role: 'editor', pw: `erin-${crypto.randomBytes(6).toString('hex')}` };

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joey-forms.'));
const children = [];
let browser;
let page;
let TOKEN;
let BASE;
const pageErrors = [];

const start = (name, cmd, args, env) => spawnLogged(tmp, children, name, cmd, args, env);
function joeyEnv(extra = {}) {
  const env = { ...process.env, ASAN_OPTIONS: process.env.ASAN_OPTIONS || 'detect_leaks=0', SIM_BRAZE_KEY: 'test-key', ...extra };
  delete env.JOEY_API_TOKEN;
  delete env.JOEY_ACCOUNTS;
  return env;
}
const joeyCli = (args, input) => execFileSync(JOEY, args, { input, env: joeyEnv(), encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
const api = (method, p, body) => apiCall(BASE, TOKEN, method, p, body);
const shot = makeShot(ART, () => page);
const steps = new Steps({ onFail: async (name) => { if (page) await shot(`FAILED-${name.replace(/[^a-z0-9]+/gi, '-')}`); } });
// each check stands alone: a failed one does not skip the next
const step = (name, fn) => steps.step(name, fn, { always: true });
const main = () => page.locator('main');
const h1 = (text) => inPage.h1(page, text);
const write = (f, o) => fs.writeFileSync(f, JSON.stringify(o, null, 2));

function prepare() {
  const root = path.join(tmp, 'project');
  const cfg = path.join(root, 'config');
  fs.mkdirSync(root);
  fs.cpSync(path.join(SRC, 'examples/demo/config'), cfg, { recursive: true });
  for (const f of ['braze_additive.json', 'braze_enrich.json']) fs.rmSync(path.join(cfg, 'destinations', f));
  fs.rmSync(path.join(cfg, 'schedules'), { recursive: true, force: true });
  // a Braze app nothing is sent to (no run here)
  write(path.join(cfg, 'apps/braze.json'), { id: 'braze', name: 'Braze', class: 'App', type: 'braze', options: { apiKey: '${SIM_BRAZE_KEY}', restEndpoint: 'http://127.0.0.1:9' } });
  // the demo's file stays where the demo keeps it, outside data/: its tables are not shown
  execFileSync('sqlite3', [path.join(root, 'demo.db')], { input: fs.readFileSync(path.join(SRC, 'examples/demo/demo.sql')) });
  fs.mkdirSync(path.join(root, 'data'));
  execFileSync('sqlite3', [path.join(root, 'data/people.db'), "CREATE TABLE people (pid INTEGER, mail TEXT);"
    + "INSERT INTO people VALUES (1,'ana@example.com'),(2,'bo@example.com');"]);
  write(path.join(cfg, 'apps/people_db.json'), { id: 'people_db', name: 'People DB', class: 'App', type: 'sqlite', options: { file: 'data/people.db' } });
  write(path.join(cfg, 'models/people.json'), { id: 'people', name: 'People', class: 'Model', type: 'profile' });
  write(path.join(cfg, 'sources/people_table.json'), {
    id: 'people_table', name: 'People table', class: 'Source', type: 'sqlite-import-table', appId: 'people_db', modelId: 'people',
    options: { table: 'people' }, mapping: { pid: 'people_pid' },
  });
  // the email property sorts first by key: a form that picks by key, or the first, picks it
  write(path.join(cfg, 'properties/people.json'), [
    { id: 'people_pid', class: 'Property', key: 'pid', type: 'integer', unique: true, sourceId: 'people_table', options: { column: 'pid' } },
    { id: 'people_mail', class: 'Property', key: 'mail', type: 'email', unique: true, sourceId: 'people_table', options: { column: 'mail' } },
  ]);
  return cfg;
}

// Press the form's save button; returns when the Data page is back (saved), or throws with the form's diagnostics.
async function saveForm(label) {
  await main().getByRole('button', { name: label }).click();
  const saved = page.getByRole('heading', { level: 1, name: 'Data', exact: true });
  const refused = main().locator('#diagnostics');
  await saved.or(refused).first().waitFor();
  if (await refused.isVisible().catch(() => false)) throw new Error(`not saved: ${(await refused.innerText()).replace(/\s+/g, ' ')}`);
}
async function configObject(cls, id) {
  const r = await api('GET', `/api/v1/config/${cls}/${id}`);
  eq(r.status, 200, `GET /config/${cls}/${id}`);
  return r.body;
}

async function main_() {
  fs.mkdirSync(ART, { recursive: true });
  for (const f of fs.readdirSync(ART)) if (f.endsWith('.png')) fs.rmSync(path.join(ART, f));
  const cfg = prepare();
  fs.mkdirSync(path.join(tmp, 'state'));
  const state = path.join(tmp, 'state/joey.db');
  joeyCli(['user', 'add', EDITOR.name, '--role', EDITOR.role, '--password-stdin', '--config', cfg, '--state', state], `${EDITOR.pw}\n`);
  joeyCli(['user', 'add', 'root', '--role', 'admin', '--password-stdin', '--config', cfg, '--state', state], `root-${crypto.randomBytes(6).toString('hex')}\n`);
  TOKEN = joeyCli(['user', 'token', 'root', '--label', 'forms test', '--config', cfg, '--state', state]).trim();
  const port = await freePort();
  BASE = `http://127.0.0.1:${port}`;
  const serve = start('joey-serve', JOEY, ['serve', '--config', cfg, '--state', state, '--listen', `127.0.0.1:${port}`], joeyEnv());
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
  page.on('dialog', (d) => { pageErrors.push(`unexpected dialog: ${d.message()}`); d.dismiss(); });

  await step('the editor signs in; the demo app\'s tables are not shown (outside the data directory)', async () => {
    await page.goto(`${BASE}/#/`);
    await inPage.signIn(page, EDITOR);
    eq((await api('GET', '/api/v1/apps/demo_db/tables')).status, 403, 'GET /apps/demo_db/tables');
    eq((await api('GET', '/api/v1/apps/people_db/tables')).status, 200, 'GET /apps/people_db/tables');
  });

  await step('a source names its key property by ID: the form shows it and saves it back', async () => {
    await page.goto(`${BASE}/#/data/people/sources/people_table`);
    await h1('Source: People table');
    const maps = page.getByLabel('It matches property', { exact: true });
    await main().locator('#source-preview table').waitFor();
    eq(await maps.locator('option:checked').textContent(), 'pid (the model’s key)', 'the property the key column matches');
    await shot('source-people');
    await saveForm('Save source');
    eq(JSON.stringify((await configObject('sources', 'people_table')).mapping), JSON.stringify({ pid: 'people_pid' }), 'the saved mapping');
  });

  await step('a source whose tables are not shown keeps its table when saved', async () => {
    await page.goto(`${BASE}/#/data/users/sources/users_table`);
    await h1('Source: Users table');
    await main().getByText('Tables not shown').waitFor();
    eq(await page.getByLabel('Table', { exact: true }).inputValue(), 'users', 'the table shown');
    await page.getByLabel('Name', { exact: true }).fill('Users table (renamed)');
    await saveForm('Save source');
    const s = await configObject('sources', 'users_table');
    eq(s.name, 'Users table (renamed)', 'the new name');
    eq(s.options.table, 'users', 'the table');
    eq(JSON.stringify(s.mapping), JSON.stringify({ id: 'user_id' }), 'the mapping');
  });

  await step('a property whose columns are not shown keeps its filter column when saved', async () => {
    const before = await configObject('properties', 'big_purchases');
    eq(before.filters[0].key, 'amount', 'the filter column in the config');
    await page.goto(`${BASE}/#/data/users/properties/big_purchases`);
    await h1('Property: big_purchases');
    await page.getByLabel('Filter 1: column').locator('option').first().waitFor({ state: 'attached' });
    eq(await page.getByLabel('Filter 1: column').inputValue(), 'amount', 'the filter column shown');
    await main().getByText('columns cannot be shown here').waitFor();
    await saveForm('Save property');
    const after = await configObject('properties', 'big_purchases');
    eq(JSON.stringify(after.filters), JSON.stringify(before.filters), 'the saved filters');
    eq(after.options.column, 'id', 'the column');
  });

  await step('a property saved unchanged keeps its filter values as they were written', async () => {
    // before, every value that parsed as a number was saved as one: "007" became 7 and
    // "0x10" 16, which a text column compares differently
    const p = await configObject('properties', 'big_purchases');
    const filters = [{ key: 'amount', op: 'eq', match: '007' }, { key: 'amount', op: 'ne', match: '0x10' },
      { key: 'amount', op: 'gte', match: 100 }, { key: 'amount', op: 'in', match: ['01', 2] }];
    const put = await api('PUT', '/api/v1/config/properties/big_purchases', { ...p, filters });
    eq(put.status, 200, 'PUT the property with text filter values');
    await page.goto(`${BASE}/#/data/users/properties/big_purchases`);
    await h1('Property: big_purchases');
    await page.getByLabel('Filter 4: value').waitFor();
    await saveForm('Save property');
    const after = await configObject('properties', 'big_purchases');
    eq(JSON.stringify(after.filters), JSON.stringify(filters), 'the saved filters');
    // a value typed anew: a number only when it is one as written
    await page.goto(`${BASE}/#/data/users/properties/big_purchases`);
    await h1('Property: big_purchases');
    await page.getByLabel('Filter 1: value').fill('0042');
    await page.getByLabel('Filter 3: value').fill('250');
    await saveForm('Save property');
    const typed = await configObject('properties', 'big_purchases');
    eq(JSON.stringify(typed.filters.map((f) => f.match)), JSON.stringify(['0042', '0x10', 250, ['01', 2]]), 'the typed values');
    const back = await api('PUT', '/api/v1/config/properties/big_purchases', p);
    eq(back.status, 200, 'PUT the property back');
  });

  await step('a property whose columns are not shown keeps its sort column when saved', async () => {
    const before = await configObject('properties', 'last_purchase');
    eq(before.options.sortColumn, 'purchased_at', 'the sort column in the config');
    await page.goto(`${BASE}/#/data/users/properties/last_purchase`);
    await h1('Property: last_purchase');
    await page.getByLabel('Most recent by', { exact: true }).locator('option').first().waitFor({ state: 'attached' });
    eq(await page.getByLabel('Most recent by', { exact: true }).inputValue(), 'purchased_at', 'the sort column shown');
    await main().getByText('columns cannot be shown here').waitFor();
    await saveForm('Save property');
    const after = await configObject('properties', 'last_purchase');
    eq(JSON.stringify(after.options), JSON.stringify(before.options), 'the saved options');
  });

  await step('the model page tells a relative rule as the Audiences page does', async () => {
    await page.goto(`${BASE}/#/models/users`);
    await h1('Users');
    const row = main().locator('#groups + table tbody tr').filter({ hasText: 'Recently active' });
    const words = (await row.locator('td').nth(1).innerText()).trim();
    assert(/within the last 30 days/.test(words), `the rule in words: ${words}`);
    assert(!/ago/.test(words), `the rule in words says "ago" (the opposite): ${words}`);
    await page.goto(`${BASE}/#/audiences`);
    await h1('Audiences');
    const aud = (await main().locator('tr').filter({ hasText: 'Recently active' }).locator('td').nth(1).innerText()).trim();
    eq(words, aud, 'the model page and the Audiences page say the same');
  });

  await step('the Records page opens when the model last looked at no longer exists', async () => {
    await page.evaluate(() => sessionStorage.setItem('joey-last-model', 'gone'));
    await page.goto(`${BASE}/#/records`);
    await h1('Records');
    eq(await page.getByLabel('Model', { exact: true }).inputValue(), 'people', 'the model picked (the first)');
    await main().locator('#records table').waitFor();
  });

  await step('a Braze field set to "not sent" stays so when the type filter is switched', async () => {
    await page.goto(`${BASE}/#/models/users/destinations/braze_sync`);
    await h1('Destination: Braze: all users (sync)');
    const sel = page.locator('#map-first_name');
    eq(await sel.inputValue(), 'first_name', 'the saved mapping');
    await sel.selectOption('');
    await page.getByLabel('Offer only properties whose type fits').uncheck();
    eq(await sel.inputValue(), '', 'first_name after the filter was switched off');
    await page.getByLabel('Offer only properties whose type fits').check();
    eq(await sel.inputValue(), '', 'first_name after the filter was switched on');
    await main().getByRole('button', { name: 'Save changes' }).click();
    await h1('Users');
    const d = await configObject('destinations', 'braze_sync');
    eq(d.mapping.first_name, undefined, 'first_name in the saved mapping');
    eq(d.mapping.last_name, 'last_name', 'last_name in the saved mapping');
  });

  await step('two tabs edit one source: the later save, made to the older version, is refused and says why', async () => {
    const other = await browser.newPage();
    other.on('pageerror', (e) => pageErrors.push(String(e && e.stack ? e.stack : e)));
    try {
      await page.goto(`${BASE}/#/data/users/sources/users_table`);
      await h1('Source: Users table (renamed)');
      await other.goto(`${BASE}/#/data/users/sources/users_table`);
      await inPage.h1(other, 'Source: Users table (renamed)');
      await page.getByLabel('Name', { exact: true }).fill('Renamed in the first tab');
      await saveForm('Save source');
      await other.getByLabel('Name', { exact: true }).fill('Renamed in the second tab');
      await other.locator('main').getByRole('button', { name: 'Save source' }).click();
      const notice = other.locator('main #diagnostics');
      await notice.waitFor();
      const said = (await notice.innerText()).replace(/\s+/g, ' ');
      assert(/changed after you loaded it/.test(said) && /open it again/i.test(said), `the second tab's notice: ${said}`);
      eq((await configObject('sources', 'users_table')).name, 'Renamed in the first tab', 'the name after the refused save');
      // opened again, the second tab saves on top of the first tab's change
      await other.goto(`${BASE}/#/data`);
      await other.goto(`${BASE}/#/data/users/sources/users_table`);
      await inPage.h1(other, 'Source: Renamed in the first tab');
      await other.getByLabel('Name', { exact: true }).fill('Users table (renamed)');
      await other.locator('main').getByRole('button', { name: 'Save source' }).click();
      await inPage.h1(other, 'Data');
      eq((await configObject('sources', 'users_table')).name, 'Users table (renamed)', 'the name after saving again');
    } finally {
      await other.close();
    }
  });

  await step('two tabs edit one file in the file editor: the later save is refused and says why, not that it breaks the config', async () => {
    const other = await browser.newPage();
    other.on('pageerror', (e) => pageErrors.push(String(e && e.stack ? e.stack : e)));
    const at = `${BASE}/#/repair?file=${encodeURIComponent('groups/high_value.json')}`;
    const before = (await configObject('groups', 'high_value')).name;
    try {
      await page.goto(at);
      await page.locator('#repair-text').waitFor();
      await other.goto(at);
      await other.locator('#repair-text').waitFor();
      const text = await page.locator('#repair-text').inputValue();
      await page.locator('#repair-text').fill(text.replace(JSON.stringify(before), JSON.stringify('Named in the first tab')));
      await page.locator('#repair-save').click();
      await page.locator('#repair-result .notice.ok').waitFor();
      await other.locator('#repair-text').fill(text.replace(JSON.stringify(before), JSON.stringify('Named in the second tab')));
      await other.locator('#repair-save').click();
      const notice = other.locator('#repair-result .notice.error');
      await notice.waitFor();
      const said = (await notice.innerText()).replace(/\s+/g, ' ');
      assert(/changed after you loaded it/.test(said) && /open it again/i.test(said), `the second tab's notice: ${said}`);
      assert(!/break the configuration/.test(said), `the second tab's notice blames the text: ${said}`);
      eq((await configObject('groups', 'high_value')).name, 'Named in the first tab', 'the name after the refused save');
    } finally {
      await other.close();
      await api('PUT', '/api/v1/config/groups/high_value', { ...(await configObject('groups', 'high_value')), file: undefined, name: before });
    }
  });

  await step('no script error in the page', async () => {
    assert(!pageErrors.length, `page errors:\n${pageErrors.join('\n')}`);
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
    const p = path.join(tmp, 'joey-serve.log');
    if (fs.existsSync(p)) log(`---- joey-serve.log (last 3000 bytes)\n${fs.readFileSync(p, 'utf8').slice(-3000)}`);
  }
  if (!process.env.JOEY_KEEP_TMP) fs.rmSync(tmp, { recursive: true, force: true });
  log(`screenshots: ${ART}`);
  log(`${steps.passed} passed, ${steps.failed} failed`);
  process.exit(steps.failed ? 1 : 0);
}
