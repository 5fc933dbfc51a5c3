// ui_product.test.mjs: the web UI as a marketer uses it (issue #16), in headless Chromium:
// safety (no sync mode preselected; a change that removes Braze users shows its impact
// and needs a confirmation; the mass-delete guard holds the run, says who may approve,
// and an editor approves it; a Braze key Braze refuses is saved only by "Save anyway"),
// clarity (a run with one refused row is amber "completed with 1 failed row"; the failed
// row is explained, with no Retry where retrying cannot help; the live run panel counts
// requests and slow-downs while the run goes, is announced, and stays as a summary; a
// finished run keeps its trigger and records read; config errors root cause first, and a
// config broken at start opens in repair mode where an editor fixes the file), and every
// page at 1280 px and 360 px wide: no sideways scrolling, and no serious or critical
// axe-core violation. Screenshots of every page and width go to <artifacts>/browser-product/.
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
import { JOEY, SRC, SIM, CHROMIUM, artifacts, log, assert, eq, freePort, until, spawnLogged, untilHealthy, apiCall, makeShot, Steps } from './lib.mjs';
import * as inPage from './lib.mjs';

const require = createRequire(import.meta.url);
const ART = artifacts('browser-product');
const AXE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const ADMIN = { name: 'ada', role: 'admin', pw: `ada-${crypto.randomBytes(6).toString('hex')}` };
const EDITOR = { name: 'eddie', role: 'editor', pw: `eddie-${crypto.randomBytes(6).toString('hex')}` };
const SIM_KEY = 'test-key';
const N_EXTRA = 2000; // users added to the demo's 8, so a run makes many requests
const BLOCKED = '3'; // a user id Braze refuses

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joey-ui-product.'));
const children = [];
let browser;
let page;
let BASE;
let TOKEN;

const start = (name, cmd, args, env) => spawnLogged(tmp, children, name, cmd, args, env);
function joeyEnv(extra = {}) {
  const env = { ...process.env, ASAN_OPTIONS: process.env.ASAN_OPTIONS || 'detect_leaks=0', BRAZE_KEY: SIM_KEY, ...extra };
  delete env.JOEY_API_TOKEN;
  delete env.JOEY_ACCOUNTS;
  return env;
}
const joeyCli = (args, input) => execFileSync(JOEY, args, { input, env: joeyEnv(), encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
const apiGet = (p, base = BASE) => apiCall(base, TOKEN, 'GET', p);
const apiPost = (p, body) => apiCall(BASE, TOKEN, 'POST', p, body);

// ---- fixtures: the demo warehouse with 2,000 more users; a Braze app at the simulator
// and one Sync destination of everyone
function prepare(name, simUrl) {
  const cfg = path.join(tmp, name, 'config');
  fs.cpSync(path.join(SRC, 'examples/demo/config'), cfg, { recursive: true });
  fs.rmSync(path.join(cfg, 'destinations'), { recursive: true, force: true });
  fs.rmSync(path.join(cfg, 'schedules'), { recursive: true, force: true });
  fs.writeFileSync(path.join(cfg, 'apps/braze.json'), JSON.stringify({
    id: 'braze', class: 'App', name: 'Braze (simulator)', type: 'braze', options: { apiKey: '${BRAZE_KEY}', restEndpoint: simUrl },
  }, null, 2));
  fs.mkdirSync(path.join(cfg, 'destinations'));
  fs.writeFileSync(path.join(cfg, 'destinations/braze_users.json'), JSON.stringify({
    id: 'braze_users', class: 'Destination', name: 'Braze: all users', type: 'braze-export-users', appId: 'braze', modelId: 'users',
    syncMode: 'sync', collection: 'model',
    mapping: { external_id: 'user_id', email: 'email', first_name: 'first_name', country: 'country', lifetime_value: 'ltv' },
    destinationGroupMemberships: { '8f0d3c4e-6a1b-4f5e-9c2d-1a2b3c4d5e6f': 'high_value' },
  }, null, 2));
  const db = path.join(tmp, name, 'demo.db');
  execFileSync('sqlite3', [db], { input: fs.readFileSync(path.join(SRC, 'examples/demo/demo.sql')) });
  execFileSync('sqlite3', [db, `WITH RECURSIVE s(i) AS (SELECT 1000 UNION ALL SELECT i+1 FROM s WHERE i < ${999 + N_EXTRA})
    INSERT INTO users SELECT i, 'user' || i || '@example.com', 'First' || i, 'Last' || i, 'DE', '2024-01-01', '2026-11-01T00:00:00Z', 1 FROM s`]);
  return cfg;
}

// ---- steps
const shot = makeShot(ART, () => page);
const steps = new Steps({ onFail: async (name) => { if (page) await shot(`FAILED-${name.replace(/[^a-z0-9]+/gi, '-').slice(0, 60)}`); } });
const { step } = steps;
const main = () => page.locator('main');
const h1 = (text) => inPage.h1(page, text);
const signIn = (u) => inPage.signIn(page, u);
const signOut = () => inPage.signOut(page);
const dialog = () => page.locator('dialog[open]');

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
  const w = await page.evaluate(() => [document.scrollingElement.scrollWidth, window.innerWidth,
    [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest('[hidden]'))
      .slice(0, 6).map((e) => `${e.tagName.toLowerCase()}.${e.className} (${Math.round(e.getBoundingClientRect().right)} px)`)]);
  assert(w[0] <= w[1], `${label}: the page scrolls sideways (${w[0]} px wide in a ${w[1]} px window): ${w[2].join(', ')}`);
}

async function main_() {
  fs.mkdirSync(ART, { recursive: true });
  for (const f of fs.readdirSync(ART)) if (f.endsWith('.png')) fs.rmSync(path.join(ART, f));

  // the simulator: refuses user 3, lets 5 track requests through a second
  const simPortFile = path.join(tmp, 'sim.port');
  start('braze-sim', SIM, ['--port', '0', '--port-file', simPortFile, '--api-key', SIM_KEY, '--max-lifetime', '600', '--quiet', '--seed', '7',
    '--blocklist-id', BLOCKED, '--rate', 'track=5/1']);
  await until('braze-sim', () => fs.existsSync(simPortFile) && fs.readFileSync(simPortFile, 'utf8').trim(), 10000, 50);
  const SIM_URL = `http://127.0.0.1:${fs.readFileSync(simPortFile, 'utf8').trim()}`;
  const cfg = prepare('one', SIM_URL);
  const stateFile = path.join(tmp, 'one/state/joey.db');
  fs.mkdirSync(path.dirname(stateFile));
  for (const u of [ADMIN, EDITOR]) joeyCli(['user', 'add', u.name, '--role', u.role, '--password-stdin', '--config', cfg, '--state', stateFile], `${u.pw}\n`);
  TOKEN = joeyCli(['user', 'token', ADMIN.name, '--label', 'browser test', '--config', cfg, '--state', stateFile]).trim();

  const startServe = async (name, c, st) => {
    const port = await freePort();
    const p = start(name, JOEY, ['serve', '--config', c, '--state', st, '--listen', `127.0.0.1:${port}`], joeyEnv({ JOEY_ALLOW_ENDPOINTS: SIM_URL }));
    await untilHealthy(name, p, `http://127.0.0.1:${port}`, tmp);
    return [p, `http://127.0.0.1:${port}`];
  };
  const [serve] = await startServe('joey-serve', cfg, stateFile).then((x) => { BASE = x[1]; return x; });

  browser = await chromium.launchPersistentContext(fs.mkdtempSync(path.join(tmp, 'chromium-')), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
  });
  page = browser.pages()[0] || await browser.newPage();
  page.setDefaultTimeout(15000);
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e && e.stack ? e.stack : e)));
  page.on('dialog', (d) => { if (/^Delete/.test(d.message())) d.accept(); else d.dismiss(); });

  let firstRun;
  await step('sign in; a run of 2,008 users with one refused: the live panel counts requests and slow-downs, is announced, and stays', async () => {
    await page.goto(`${BASE}/#/runs`);
    await page.getByRole('heading', { level: 1, name: 'Sign in to joey' }).waitFor();
    for (const width of [360, 1280]) {
      await page.setViewportSize({ width, height: 900 });
      await checkPage(`the sign-in page at ${width} px`);
    }
    await signIn(ADMIN);
    await h1('Runs');
    await page.getByRole('button', { name: 'Run everything now' }).click();
    await h1('Runs');
    let sawRequests = 0;
    let sawThrottled = 0;
    let announced = '';
    await until('the run to end', async () => {
      const panel = page.locator('#live .live-run[data-destination="braze_users"]');
      if (await panel.count()) {
        const st = await panel.getAttribute('data-status');
        if (st === 'running') {
          const req = Number((await panel.locator('[data-count="requests"] .num').textContent()).replace(/,/g, ''));
          const thr = Number((await panel.locator('[data-count="throttled"] .num').textContent()).replace(/,/g, ''));
          sawRequests = Math.max(sawRequests, req);
          sawThrottled = Math.max(sawThrottled, thr);
          const a = await page.locator('#live-announce').textContent();
          if (a) announced = a;
          if (sawRequests && !fs.readdirSync(ART).some((f) => f.includes('run-live'))) await shot('run-live');
        }
        return st && st !== 'running' && st !== 'queued';
      }
      return false;
    }, 120000, 150);
    assert(sawRequests > 0, 'the requests counter never moved while the run went');
    assert(sawThrottled > 0, 'the slow-down (429) counter never moved while the run went');
    assert(/Run of Braze: all users/.test(announced), `the screen-reader announcement: ${announced}`);
    eq(await page.locator('#live-announce').getAttribute('aria-live'), 'polite', 'aria-live of the announcement');
    // the panel stays, as a summary
    const panel = page.locator('#live .live-run[data-destination="braze_users"]');
    await panel.getByText(/^Finished in/).waitFor();
    await panel.getByText('completed with 1 failed row').waitFor();
    await shot('run-finished-panel');
    const runs = (await apiGet('/api/v1/runs?destination=braze_users')).body.items;
    firstRun = runs[0];
    eq(firstRun.status, 'completed_with_failures', 'the run status in the API');
  });

  await step('the partial run is amber "completed with 1 failed row" everywhere; the finished run keeps trigger and records read', async () => {
    const row = page.locator('#runs-table tr[data-run]').first();
    eq(await row.getAttribute('data-status'), 'completed_with_failures', 'the row status');
    const b = row.locator('.badge.warn');
    eq((await b.textContent()).trim(), 'completed with 1 failed row', 'the badge');
    const colour = await b.evaluate((e) => getComputedStyle(e).backgroundColor);
    eq(colour, 'rgb(255, 248, 197)', 'the amber badge background');
    await row.getByText('started by hand').waitFor();
    await row.getByRole('link', { name: `#${firstRun.id}` }).click();
    await h1(`Run #${firstRun.id}`);
    await main().getByText('Completed with 1 failed row.').waitFor();
    await main().getByText('started by hand').first().waitFor();
    await main().getByRole('row', { name: /Records read 2,008/ }).waitFor();
    await shot('run-partial');
    await page.goto(`${BASE}/#/`);
    await h1('Overview');
    await main().getByText('runs with failed rows (24 h)').waitFor();
  });

  await step('a failed row is explained in plain words, and Retry is not offered where it cannot help', async () => {
    await page.goto(`${BASE}/#/errors`);
    await h1('Failed rows');
    const row = main().locator(`tr[data-key="${BLOCKED}"]`);
    await row.getByText(/Braze refuses this user ID/).waitFor();
    await row.getByText('Retrying alone will not help.').waitFor();
    await row.getByText(/What to do:/).waitFor();
    eq(await row.locator('details code').isVisible(), false, 'the raw error is behind a toggle');
    await row.getByText('Technical detail').click();
    await row.getByText(/blacklist|BLACKLISTED/i).first().waitFor();
    eq(await main().getByRole('button', { name: /^Retry failed rows/ }).count(), 0, 'Retry buttons');
    await shot('failed-row-explained');
  });

  await step('subscription groups get names; a mistyped ID is caught; the record page shows the name, not the ID', async () => {
    await page.goto(`${BASE}/#/models/users/destinations/braze_users`);
    await h1(/^Destination/);
    const row0 = main().locator('tr.group-row').first();
    eq(await row0.getByLabel('Send as').inputValue(), 'sub', 'the kind of the UUID mapping');
    await row0.getByLabel('Name of the subscription group').fill('Newsletter');
    await page.getByRole('button', { name: 'Add group mapping' }).click();
    const row1 = main().locator('tr.group-row').nth(1);
    await row1.getByLabel('Group', { exact: true }).selectOption({ label: 'High Value' });
    await row1.getByLabel('Braze subscription group ID').fill('8f0d3c4e-6a1b-4f5e-9c2d-1a2b3c4d5e6'); // one digit short
    await page.getByRole('button', { name: 'Save changes' }).click();
    await main().getByText(/is not a subscription group ID/).first().waitFor();
    // as a value of the groups attribute it is refused by the server's validation too
    await row1.getByLabel('Send as').selectOption('attr');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await main().getByText(/looks like a Braze subscription group ID but is not one/).first().waitFor();
    await shot('subscription-group-typo');
    await row1.getByRole('button', { name: 'Remove this group mapping' }).click();
    await page.getByRole('button', { name: 'Save changes' }).click();
    await h1('Users');
    const d = (await apiGet('/api/v1/config/destinations/braze_users')).body;
    eq(JSON.stringify(d.subscriptionGroupNames), JSON.stringify({ '8f0d3c4e-6a1b-4f5e-9c2d-1a2b3c4d5e6f': 'Newsletter' }), 'subscriptionGroupNames');
    await page.goto(`${BASE}/#/records/users/1`);
    await main().locator('#record').getByText(/subscription group “Newsletter”/).first().waitFor();
    await shot('record-subscription-name');
  });

  await step('a Braze key Braze refuses: explained, not saved; "Save anyway" saves it; the right key is checked and saved', async () => {
    await page.goto(`${BASE}/#/apps/braze`);
    await h1(/^Braze app/);
    await page.getByLabel('REST API key').fill('not-the-key');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await dialog().getByText('Braze did not accept this API key.').waitFor();
    await shot('key-refused');
    await dialog().getByRole('button', { name: 'Fix the key' }).click();
    await dialog().waitFor({ state: 'detached' });
    eq((await apiGet('/api/v1/config/apps/braze')).body.options.apiKey, '${BRAZE_KEY}', 'the key after "Fix the key"');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await dialog().getByRole('button', { name: 'Save anyway' }).click();
    await until('the key saved anyway', async () => (await apiGet('/api/v1/config/apps/braze')).body.options.apiKey !== '${BRAZE_KEY}');
    await page.goto(`${BASE}/#/apps/braze`);
    await h1(/^Braze app/);
    await page.getByLabel('REST API key').fill(SIM_KEY);
    await page.getByRole('button', { name: 'Save changes' }).click();
    await until('the right key saved (the connection test passes)', async () => (await apiPost('/api/v1/apps/braze/test')).body.ok === true, 20000, 300);
    await h1(/^Braze app/);
    eq(await dialog().count(), 0, 'a dialog for a key Braze accepts');
    const acts = (await apiGet('/api/v1/audit?limit=10')).body.entries.map((e) => e.action);
    assert(acts.includes('config.save_unverified'), `audit: ${acts}`);
  });

  await step('a database app from the app form: every option of its type, the password kept out of the config files, a failed connection explained', async () => {
    await page.goto(`${BASE}/#/apps`);
    await h1('Apps');
    await main().getByRole('link', { name: 'Connect a database or warehouse' }).click();
    await h1('Connect a database or warehouse');
    const types = await page.getByLabel('Type').locator('option').allTextContents();
    for (const t of ['PostgreSQL', 'MySQL / MariaDB', 'Amazon Redshift', 'ClickHouse', 'Snowflake (key pair)', 'Google BigQuery']) assert(types.includes(t), `app types: ${types}`);
    await page.getByLabel('Type').selectOption('postgres');
    await page.getByLabel('Name', { exact: true }).fill('Warehouse');
    await page.getByRole('button', { name: 'Save app' }).click();
    await main().locator('#diagnostics').getByText('Enter the database.').waitFor();
    await page.getByLabel('Database', { exact: true }).fill('analytics');
    await page.getByLabel('Host (optional)').fill('127.0.0.1');
    await page.getByLabel('Port (optional)').fill('1');
    await page.getByLabel('Password (optional)').fill('pg-secret-1234');
    await page.getByRole('button', { name: 'Save app' }).click();
    await h1('App: Warehouse');
    const stored = fs.readFileSync(path.join(cfg, 'apps', 'warehouse.json'), 'utf8');
    assert(!stored.includes('pg-secret-1234') && stored.includes('${JOEY_SECRET_WAREHOUSE_PASSWORD}') && stored.includes('"port": 1'), `config file: ${stored}`);
    eq(await page.getByLabel('Password (optional)').inputValue(), '****', 'the stored password shows as ****');
    await page.getByRole('button', { name: 'Test connection' }).click();
    await main().locator('#test-result').getByText('Connection failed:').waitFor({ timeout: 30000 });
    assert(!(await main().locator('#test-result').innerText()).includes('pg-secret-1234'), 'no password in the test result');
    await shot('data-app');
    // a delete is answered with no body: the page goes back to the list (it stayed put)
    await page.getByRole('button', { name: 'Delete app' }).click();
    await h1('Apps');
    assert(!fs.existsSync(path.join(cfg, 'apps', 'warehouse.json')), 'the app file is gone');
  });

  await step('a new destination has no sync mode preselected, and saving without one says to choose', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Users', exact: true }).click();
    await h1('Users');
    await main().getByRole('link', { name: 'Add Braze destination' }).click();
    await h1(/New Braze destination/);
    for (const m of [/^Sync/, /^Additive/, /^Enrich/]) eq(await page.getByRole('radio', { name: m }).isChecked(), false, `${m} checked`);
    await page.getByLabel('Name', { exact: true }).fill('Second');
    await page.getByRole('button', { name: 'Save destination' }).click();
    await main().getByText(/Choose a sync mode/).first().waitFor();
    await shot('destination-no-mode');
  });

  await step('Braze fields: grouped, searchable, filtered by type, with sample values; the cost explained', async () => {
    for (const g of ['Identity', 'Profile', 'Subscriptions and email settings']) await main().getByRole('columnheader', { name: g }).waitFor();
    await page.getByLabel('Find a field').fill('city');
    eq(await main().locator('tr[data-braze-field]:visible').count(), 1, 'rows shown for “city”');
    await main().locator('tr[data-braze-field="home_city"]').waitFor();
    await page.getByLabel('Find a field').fill('');
    // a yes/no field offers the yes/no properties only (and all of them when asked)
    const opts = async () => (await page.getByLabel('email_open_tracking_disabled', { exact: true }).locator('option').allTextContents()).filter((t) => !t.startsWith('—'));
    eq(JSON.stringify(await opts()), JSON.stringify(['newsletter (boolean)']), 'properties offered for a boolean field');
    await page.getByLabel('Offer only properties whose type fits').uncheck();
    assert((await opts()).length > 5, 'all properties once the filter is off');
    await page.getByLabel('email', { exact: true }).selectOption({ label: 'email (email)' });
    await main().locator('tr[data-braze-field="email"]').getByText(/^e\.g\. .+@example\.com/).waitFor();
    await main().locator('tr[data-braze-field="email_subscribe"]').getByText('free (no data point)').waitFor();
    await shot('destination-fields');
  });

  await step('pausing a Sync destination shows the users it would delete, and needs a confirmation', async () => {
    await page.goto(`${BASE}/#/models/users/destinations/braze_users`);
    await h1(/^Destination/);
    await page.getByRole('radio', { name: /Nobody \(pause\)/ }).check();
    await page.getByRole('button', { name: 'Save changes' }).click();
    const d = dialog();
    await d.getByRole('heading', { name: 'This change removes Braze users' }).waitFor({ timeout: 30000 });
    await d.getByText(/the next run would delete 2,008 Braze users/i).waitFor();
    await d.getByText(/mass-delete guard would hold that run/i).waitFor();
    eq(await page.evaluate(() => document.activeElement && document.activeElement.textContent), 'Cancel', 'the button focused first');
    await shot('confirm-destructive');
    await d.getByRole('button', { name: 'Cancel' }).click();
    eq((await apiGet('/api/v1/config/destinations/braze_users')).body.collection, 'model', 'collection after Cancel');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await dialog().getByRole('button', { name: 'Save and remove these users' }).click();
    await h1('Users');
    eq((await apiGet('/api/v1/config/destinations/braze_users')).body.collection, 'none', 'collection after confirming');
    const acts = (await apiGet('/api/v1/audit?limit=5')).body.entries.map((e) => e.action);
    assert(acts.includes('config.confirm_destructive'), `audit: ${acts}`);
  });

  await step('the guard holds the next run, says who may approve, and the editor approves it', async () => {
    eq((await apiPost('/api/v1/runs', { destination: 'braze_users' })).status, 202, 'run requested');
    const held = await until('the held run', async () => {
      const r = (await apiGet('/api/v1/runs?destination=braze_users')).body.items[0];
      return r && r.held ? r : null;
    }, 60000, 300);
    await signOut();
    await page.goto(`${BASE}/#/`);
    await signIn(EDITOR);
    await h1('Overview');
    const waiting = main().locator(`[data-held-run="${held.id}"]`);
    await waiting.getByRole('heading', { name: 'Waiting for approval: Braze: all users' }).waitFor();
    await waiting.getByRole('link', { name: 'Review the held run' }).click();
    await h1(`Run #${held.id}`);
    const n = page.locator('#held-notice');
    await n.getByRole('heading', { name: 'Held by the mass-delete guard' }).waitFor();
    await n.getByText(/would delete 2,008 of the 2,00\d Braze users/).waitFor();
    await n.getByText(/Who may approve: an editor or an admin/).waitFor();
    const badge = main().locator('.badge.warn').first();
    eq((await badge.textContent()).trim(), 'held: waiting for approval', 'the held badge');
    await shot('run-held');
    await n.getByRole('button', { name: /Approve and delete/ }).click();
    await dialog().getByRole('button', { name: /Approve and delete/ }).click();
    await h1('Runs');
    let last;
    await until('the approved run', async () => {
      const r = (await apiGet('/api/v1/runs?destination=braze_users')).body.items[0];
      last = r;
      return r && r.id > held.id && r.status === 'success' && r.counts.deleted === 2008;
    }, 60000, 300).catch((e) => { throw new Error(`${e.message}; the latest run: ${JSON.stringify(last)}`); });
    const a = (await apiGet('/api/v1/audit?limit=5')).body.entries.find((e) => e.action === 'run.approve');
    assert(a && a.actor === EDITOR.name, `audit run.approve: ${JSON.stringify(a)}`);
  });

  // every page, at 1280 px and at 360 px: axe-core, no sideways scrolling
  const pages = ['#/', '#/models/users', '#/models/users/plan', '#/models/users/destinations/braze_users', '#/models/users/destinations/new',
    '#/models/users/schedules/users_table', '#/apps', '#/apps/braze', '#/runs', `#/runs/${firstRun ? firstRun.id : 1}`, '#/errors', '#/records',
    '#/records/users/1', '#/account', '#/repair'];
  await step('signed in as the admin again', async () => { await signOut(); await signIn(ADMIN); });
  for (const width of [1280, 360]) {
    await step(`every page at ${width} px: no serious or critical axe violation, no sideways scrolling`, async () => {
      await page.setViewportSize({ width, height: 900 });
      for (const p of [...pages, '#/team', '#/audit']) {
        await page.goto(`${BASE}/${p}`);
        await page.locator('main h1').first().waitFor();
        await page.waitForLoadState('networkidle').catch(() => {});
        await checkPage(`${p} at ${width} px`);
        await shot(`${width}-${p.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '') || 'overview'}`);
      }
    }, { always: true });
  }
  await page.setViewportSize({ width: 1280, height: 900 });
  serve.kill('SIGTERM');

  // ---- a config broken at start: repair mode
  await step('a config broken at start opens in repair mode: the root cause first, and an editor fixes the file', async () => {
    const cfg2 = prepare('two', SIM_URL);
    const propFile = path.join(cfg2, 'properties/purchases.json');
    const good = fs.readFileSync(propFile, 'utf8');
    fs.writeFileSync(propFile, good.replace('"type": "float",', '"type": "float",,'));
    const st2 = path.join(tmp, 'two/state/joey.db');
    fs.mkdirSync(path.dirname(st2));
    for (const u of [ADMIN, EDITOR]) joeyCli(['user', 'add', u.name, '--role', u.role, '--password-stdin', '--config', cfg2, '--state', st2], `${u.pw}\n`);
    const [serve2, base2] = await startServe('joey-serve-2', cfg2, st2);
    assert(/repair mode/.test(fs.readFileSync(path.join(tmp, 'joey-serve-2.log'), 'utf8')), 'the log says repair mode');
    await signOut().catch(() => {});
    await page.goto(`${base2}/#/`);
    await signIn(EDITOR);
    await h1('Overview');
    await main().getByRole('heading', { name: 'joey is in repair mode' }).waitFor();
    const banner = page.locator('#config-banner');
    await banner.getByRole('heading', { name: /nothing runs/ }).waitFor();
    const first = banner.locator('ol.root-causes li').first();
    await first.getByText(/typing mistake/).waitFor();
    eq(await banner.locator('ol.root-causes li').count(), 1, 'root causes listed');
    await banner.getByText(/more errors? follows? from/).waitFor();
    eq(await banner.locator('details ul.diagnostics').isVisible(), false, 'technical detail hidden');
    await shot('repair-banner');
    await checkPage('repair overview');
    await banner.getByRole('link', { name: 'Fix the files' }).click();
    await h1('Repair the configuration');
    eq(await page.locator('#repair-file').inputValue(), 'properties/purchases.json', 'the file with the syntax error is opened first');
    await main().getByText(/Line 3: has a typing mistake/).waitFor();
    await checkPage('repair page');
    await shot('repair-page');
    const text = await page.locator('#repair-text').inputValue();
    await page.locator('#repair-text').fill(text.replace(',,', ','));
    await page.getByRole('button', { name: 'Check and save' }).click();
    await main().getByText('Saved. The configuration is valid again').waitFor({ timeout: 20000 });
    await banner.waitFor({ state: 'hidden' });
    eq(fs.readFileSync(propFile, 'utf8'), good, 'the file on disk');
    await page.goto(`${base2}/#/models/users`);
    await h1('Users');
    await shot('repaired');
    serve2.kill('SIGTERM');
  }, { always: true });

  await step('no script errors in the page', async () => { assert(!pageErrors.length, pageErrors.join('\n')); }, { always: true });
}

try {
  await main_();
} catch (e) {
  steps.failed += 1;
  log(`FAIL setup: ${e && e.stack ? e.stack : e}`);
} finally {
  if (browser) await browser.close().catch(() => {});
  for (const p of children) if (!p.exited) p.kill('SIGTERM');
  if (steps.failed) for (const f of fs.readdirSync(tmp).filter((x) => x.endsWith('.log'))) log(`---- ${f}\n${fs.readFileSync(path.join(tmp, f), 'utf8').slice(-3000)}`);
  log(`screenshots: ${ART}`);
  log(`${steps.passed} passed, ${steps.failed} failed`);
  process.exit(steps.failed ? 1 : 0);
}
