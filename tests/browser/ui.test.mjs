// ui.test.mjs: joey's web UI in headless Chromium, as a person would use it.
//
// Makes three accounts with the CLI (joey user add: an admin, an editor, a viewer) and an
// admin API token for the test's own checks (joey user token), starts the Braze simulator
// and `joey serve` on a fresh copy of the demo config (its SQLite warehouse, no Braze app,
// no destination, no schedule), then in Chromium: the page carries no credential and
// nothing is readable without signing in; sign in (a wrong password first) as the admin;
// the session cookie is HttpOnly and SameSite=Strict; connect a Braze app, test the
// connection, add a destination (a 422 first, then fixed), preview the plan, run it and
// follow it to success, check the simulator got the users with the mapped attributes, set
// a schedule, look a record up, see a failed row and retry it, the config error banner,
// and that names holding <script> / <img onerror> show as text. Then: CSRF (a change
// without X-CSRF-Token, or from another Origin, is refused), a personal API token (shown
// once, works as a Bearer token, revoked), the Team page (add, role, password, remove; the
// last admin stays), the audit log (paged; the app's key masked), sign-out, what the
// viewer, the editor and the admin each see and may do (controls hidden or disabled, and
// the API answering 403), a password change (a second tab keeps working), an ended
// session bringing back the sign-in page and then the page it was on, and, on a second
// `joey serve` with no account (sessions idle out after 8 s there), the one-time setup
// link (first admin created, link refused the second time), an unattended page that
// stops its background requests so the idle timeout ends its session, and the sign-in
// rate limit. A screenshot of every page goes to the artifacts directory.
//
// Environment: JOEY_BIN (the joey binary), JOEY_SRC (the source tree), optional
// BRAZE_SIM_BIN (default: braze-sim beside JOEY_BIN), JOEY_CHROMIUM (default
// /usr/bin/chromium), JOEY_ARTIFACTS (default: <dir of JOEY_BIN>/artifacts); screenshots
// go to <artifacts>/browser/. Prints "N passed, N failed" last; exits 1 on a failure.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { chromium } from 'playwright-core';
import { JOEY, SRC, SIM, CHROMIUM, artifacts, log, sleep, assert, eq, freePort, until, spawnLogged, untilHealthy, apiCall, makeShot, Steps } from './lib.mjs';
import * as inPage from './lib.mjs';

const ART = artifacts('browser');
let TOKEN; // an admin's personal API token, made with `joey user token`: the test's own API checks
const ADMIN = { name: 'ada', role: 'admin', pw: `ada-${crypto.randomBytes(6).toString('hex')}` };
const EDITOR = { name: 'eddie', role: 'editor', pw: `eddie-${crypto.randomBytes(6).toString('hex')}` };
const VIEWER = { name: 'vera', role: 'viewer', pw: `vera-${crypto.randomBytes(6).toString('hex')}` };
const SIM_KEY = 'test-key';
const SUB_GROUP = '8f0d3c4e-6a1b-4f5e-9c2d-1a2b3c4d5e6f';
const XSS_GROUP = '<img src=x onerror="window.__xss=1">VIP';
const XSS_FIRST = '<script>window.__xss=2</script>';
const XSS_LAST = '<img src=x onerror="window.__xss=3">';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joey-ui.'));
const children = [];
let browser;

const start = (name, cmd, args, env) => spawnLogged(tmp, children, name, cmd, args, env);
// The environment of joey: never JOEY_API_TOKEN (accounts only), never a foreign accounts file.
function joeyEnv(extra = {}) {
  const env = { ...process.env, ASAN_OPTIONS: process.env.ASAN_OPTIONS || 'detect_leaks=0', ...extra };
  delete env.JOEY_API_TOKEN;
  delete env.JOEY_ACCOUNTS;
  return env;
}
function joeyCli(args, input) {
  return execFileSync(JOEY, args, { input, env: joeyEnv(), encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}
const canon = (o) => JSON.stringify(o && typeof o === 'object' && !Array.isArray(o) ? Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : 1))) : o);

// ---- fixtures: the demo config without Braze, plus names that would run as HTML
function bareConfig(name) {
  const cfg = path.join(tmp, name);
  fs.cpSync(path.join(SRC, 'examples/demo/config'), cfg, { recursive: true });
  fs.rmSync(path.join(cfg, 'apps/braze.json'));
  fs.rmSync(path.join(cfg, 'destinations'), { recursive: true, force: true });
  fs.rmSync(path.join(cfg, 'schedules'), { recursive: true, force: true });
  return cfg;
}
function prepareConfig() {
  const cfg = bareConfig('config');
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
const apiGet = (p) => apiCall(BASE, TOKEN, 'GET', p);
const apiPost = (p, body) => apiCall(BASE, TOKEN, 'POST', p, body);
// A request as curl would send it: no browser, no cookie unless given.
async function raw(method, p, { headers = {}, body } = {}) {
  const init = { method, headers: { ...headers } };
  if (body !== undefined) { init.headers['Content-Type'] = 'application/json'; init.body = JSON.stringify(body); }
  const r = await fetch(BASE + p, init);
  return { status: r.status, headers: r.headers, body: await r.json().catch(() => null) };
}
let SIM_URL;
async function simUsers() { return (await (await fetch(`${SIM_URL}/_sim/users`)).json()).users; }
async function simPost(p, body) { const r = await fetch(SIM_URL + p, { method: body === undefined ? 'DELETE' : 'POST', headers: { 'Content-Type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) }); return r.status; }

// ---- steps
const pageErrors = [];
let page;
const shot = makeShot(ART, () => page);
const steps = new Steps({ onFail: async (name) => { if (page) await shot(`FAILED-${name.replace(/[^a-z0-9]+/gi, '-')}`); } });
const { step } = steps;
const main = () => page.locator('main');
const h1 = (text) => inPage.h1(page, text);
const nav = (name) => inPage.nav(page, name);
const checkLabels = (where) => inPage.checkLabels(page, where);
// fetch() from inside the page, as the UI's own code would (the session cookie goes
// along); csrf: send the session's X-CSRF-Token (from GET /api/v1/session).
async function pageFetch(method, url, { csrf = true, body, headers = {}, credentials = 'same-origin' } = {}, p = page) {
  return p.evaluate(async (a) => {
    const hd = { ...a.headers };
    if (a.csrf) { const s = await (await fetch('/api/v1/session')).json(); if (s.csrf) hd['X-CSRF-Token'] = s.csrf; }
    if (a.body !== undefined) hd['Content-Type'] = 'application/json';
    const r = await fetch(a.url, { method: a.method, headers: hd, credentials: a.credentials, body: a.body === undefined ? undefined : JSON.stringify(a.body) });
    return { status: r.status, body: await r.json().catch(() => null) };
  }, { method, url, csrf, body, headers, credentials });
}
async function signIn(u, p = page) {
  await inPage.signIn(p, u);
  eq((await p.locator('#userbox .badge').textContent()).trim(), u.role, 'the role in the header');
}
const signOut = (p = page) => inPage.signOut(p);
async function navNames(p = page) {
  return p.getByRole('navigation', { name: 'Main' }).getByRole('link').allTextContents();
}
async function sessionCookie() {
  const c = (await browser.cookies(BASE)).find((x) => x.name === 'joey_session');
  return c;
}
// A button the signed-in role may not use: there, disabled, and saying why.
async function disabledFor(btn, role) {
  await btn.waitFor();
  assert(await btn.isDisabled(), `${await btn.textContent()} is not disabled`);
  const t = await btn.getAttribute('title');
  assert(t && t.includes(role), `tooltip of ${await btn.textContent()}: ${t}`);
}
async function noXss() {
  const x = await page.evaluate(() => [window.__xss, document.querySelectorAll('main img, main script').length]);
  eq(x[0], undefined, 'window.__xss (a payload ran)');
  eq(x[1], 0, 'img/script elements injected into the page');
}

async function startServe(name, cfg, stateFile, port, env = {}) {
  // the simulator is not one of Braze's hosts: the operator allows it (not settable through the API)
  const p = start(name, JOEY, ['serve', '--config', cfg, '--state', stateFile, '--listen', `127.0.0.1:${port}`], joeyEnv({ JOEY_ALLOW_ENDPOINTS: SIM_URL, ...env }));
  await untilHealthy(name, p, `http://127.0.0.1:${port}`, tmp);
  return p;
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

  // the accounts, made before serve starts: accounts.db beside the state file
  fs.mkdirSync(path.join(tmp, 'state'));
  const stateFile = path.join(tmp, 'state/joey.db');
  for (const u of [ADMIN, EDITOR, VIEWER]) {
    const out = joeyCli(['user', 'add', u.name, '--role', u.role, '--password-stdin', '--config', cfg, '--state', stateFile], `${u.pw}\n`);
    assert(out.includes(`added ${u.name}`), `joey user add ${u.name}: ${out}`);
  }
  assert(fs.existsSync(path.join(tmp, 'state/accounts.db')), 'accounts.db beside the state file');
  TOKEN = joeyCli(['user', 'token', ADMIN.name, '--label', 'browser test (API checks)', '--config', cfg, '--state', stateFile]).trim();
  assert(/^joey_[0-9a-f]{48}$/.test(TOKEN), `joey user token printed ${TOKEN}`);

  // joey serve
  const port = await freePort();
  BASE = `http://127.0.0.1:${port}`;
  const serve = await startServe('joey-serve', cfg, stateFile, port);

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
  page.on('dialog', (d) => { if (/^(Delete|Remove|Revoke)/.test(d.message())) d.accept(); else { pageErrors.push(`unexpected dialog: ${d.message()}`); d.dismiss(); } });

  let appId;
  let serve2 = null;
  let base2;
  await step('the UI code never parses text as HTML (no innerHTML and the like)', async () => {
    const dir = path.join(SRC, 'src/server/ui');
    for (const f of fs.readdirSync(dir, { recursive: true }).filter((x) => /\.m?js$/.test(x))) {
      const code = fs.readFileSync(path.join(dir, f), 'utf8').split('\n').filter((l) => !/^\s*(\/\/|\*|\/\*)/.test(l)).join('\n');
      const m = code.match(/\b(innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\s*\(|new Function)\b/);
      assert(!m, `${f} uses ${m && m[1]}`);
    }
  });

  await step('the page carries no credential, and nothing is readable without signing in (also on loopback)', async () => {
    const r = await fetch(`${BASE}/`);
    const html = await r.text();
    eq(r.status, 200, 'GET /');
    assert(!/joey-token|JOEY_TOKEN|\{\{/.test(html), 'the page still has a token placeholder');
    assert(!html.includes(TOKEN) && !r.headers.get('set-cookie'), 'the page carries a credential');
    for (const u of ['/api/v1/status', '/api/v1/models', '/api/v1/runs', '/metrics']) eq((await raw('GET', u)).status, 401, `GET ${u} without signing in`);
    const s = await raw('GET', '/api/v1/session');
    eq(s.status, 200, 'GET /api/v1/session');
    eq(s.body.user, null, 'nobody signed in');
    eq(s.body.setup_pending, false, 'setup_pending with accounts made by the CLI');
    eq((await raw('POST', '/api/v1/runs', { body: {} })).status, 401, 'POST /api/v1/runs without signing in');
  });

  await step('sign-in page: a wrong password is refused with a clear message; the admin signs in', async () => {
    await page.goto(`${BASE}/#/models/users`);
    await h1('Sign in to joey');
    eq((await navNames()).length, 0, 'menu links before signing in');
    eq(await page.locator('#userbox').isVisible(), false, 'the user box before signing in');
    await checkLabels('sign-in page');
    await shot('sign-in');
    await page.getByLabel('User name').fill(ADMIN.name);
    await page.getByLabel('Password', { exact: true }).fill('not-the-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#login-error').getByText('Wrong user name or password').waitFor();
    eq(await page.getByLabel('Password', { exact: true }).inputValue(), '', 'the password field after a failure');
    await shot('sign-in-wrong-password');
    await signIn(ADMIN);
    await h1('Users'); // the page the address asked for
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Team' }).waitFor();
  });

  await step('the session cookie is HttpOnly and SameSite=Strict; no credential in scripts\' reach', async () => {
    const c = await sessionCookie();
    assert(c, 'no joey_session cookie');
    eq(c.httpOnly, true, 'HttpOnly');
    eq(c.sameSite, 'Strict', 'SameSite');
    eq(c.secure, false, 'Secure (plain HTTP here)');
    const seen = await page.evaluate(() => ({ cookie: document.cookie, ls: JSON.stringify(localStorage), ss: JSON.stringify(sessionStorage) }));
    assert(!seen.cookie.includes('joey_session') && !seen.cookie.includes(c.value), `document.cookie shows the session: ${seen.cookie}`);
    assert(!seen.ls.includes(c.value) && !seen.ss.includes(c.value) && !/joey_[0-9a-f]{20}/.test(seen.ls + seen.ss), 'a credential in web storage');
  });

  await step('overview: a fresh install says to connect Braze first', async () => {
    await nav('Overview');
    await h1('Overview');
    await main().getByRole('heading', { name: 'Start here: connect Braze' }).waitFor();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Users' }).waitFor();
    await shot('overview-empty');
  });

  await step('create a Braze app (name, API key as a password field, the simulator URL)', async () => {
    await nav('Apps');
    await h1('Apps');
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
    // no mode is preselected (#16: Sync deletes users, so it is a choice)
    for (const m of [/^Sync/, /^Additive/, /^Enrich/]) assert(!await page.getByRole('radio', { name: m }).isChecked(), `${m} is preselected`);
    await page.getByRole('radio', { name: /^Sync/ }).check();
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
    await page.getByRole('radio', { name: /Every few minutes or hours/ }).check();
    await page.getByLabel('How often').fill('30');
    await page.getByLabel('Unit').selectOption('minutes');
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
    // a day/time picker instead of cron (#16), with the next three runs in words
    await page.getByRole('radio', { name: 'Every day' }).check();
    await page.getByLabel('Time of day (UTC)').fill('03:00');
    await main().locator('#sched-preview').getByText('Runs every day at 03:00 UTC.').waitFor();
    eq(await main().locator('#sched-preview li').count(), 3, 'next runs shown');
    await page.getByRole('button', { name: 'Save schedule' }).click();
    await h1('Users');
    await main().getByText('every day at 03:00 UTC').first().waitFor();
    eq((await apiGet('/api/v1/config/schedules/users_table_schedule')).body.options.cron, '0 3 * * *', 'the cron written');
    await shot('model-scheduled');
  });

  await step('look a record up by key', async () => {
    const find = async (what) => {
      await nav('Records');
      await h1('Records');
      // the search page anew (the one before may be a search page with its text)
      await until('an empty search page', async () => (await page.locator('#records-q').inputValue()) === '');
      await page.getByLabel('Find a record').fill(what);
      await page.getByRole('button', { name: 'Search' }).click();
    };
    await find('1');
    const rec = main().locator('#record');
    await rec.waitFor();
    await rec.getByText('ada@example.com').first().waitFor();
    await rec.getByText('confirmed').first().waitFor();
    await shot('record');
    await find('9');
    await main().getByRole('heading', { name: 'Record “9”' }).waitFor();
    await main().locator('#record').getByText(XSS_FIRST).first().waitFor();
    await main().locator('#record').getByText(XSS_LAST).first().waitFor();
    await noXss();
    await shot('record-html-values');
    await find('999');
    await main().getByText('No record matches “999”').waitFor();
    // neither a key (user_id is an integer) nor an email: said so, with what was searched
    await find('not-a-number');
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
      return (await rows.count()) > before && ['success', 'failed', 'completed_with_failures'].includes(await rows.first().getAttribute('data-status'));
    }, 60000, 200);
    // one refused row of nine: completed with failures (amber), not failed (#16)
    const second = page.locator('#runs-table tr[data-destination="braze_all_users"]').first();
    eq(await second.getAttribute('data-status'), 'completed_with_failures', 'the status of a run with one failed row');
    await second.getByText('completed with 1 failed row').waitFor();
    await nav('Failed rows');
    await h1('Failed rows');
    // the only object of its request failed, so Braze refuses the whole request (400)
    const failedRow = main().locator('tbody tr').filter({ has: page.getByRole('link', { name: '2', exact: true }) });
    await failedRow.first().waitFor();
    const errText = (await failedRow.first().locator('td').nth(3).textContent()).trim();
    assert(/400|EMAIL_BAD_FORMAT|Valid data/i.test(errText), `the error shown: ${errText}`);
    await shot('failed-rows');
    await simPost('/_sim/faults', { action: 'clear' });
    // retrying alone cannot fix a bad email: the page says so, and offers to send again after a fix
    await main().getByText('Retrying alone will not help').first().waitFor();
    await main().getByRole('button', { name: /Send the failed rows of .* again/ }).first().click();
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
    await main().getByText('succeeded').first().waitFor();
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

  await step('CSRF: a change made with the session cookie needs X-CSRF-Token, and our own Origin', async () => {
    let r = await pageFetch('POST', '/api/v1/reload', { csrf: false });
    eq(r.status, 403, 'POST /api/v1/reload without X-CSRF-Token');
    assert(/CSRF/.test(r.body.error), `error: ${r.body.error}`);
    r = await pageFetch('POST', '/api/v1/reload', { csrf: false, headers: { 'X-CSRF-Token': 'f'.repeat(64) } });
    eq(r.status, 403, 'POST /api/v1/reload with a wrong X-CSRF-Token');
    r = await pageFetch('POST', '/api/v1/reload');
    eq(r.status, 200, 'POST /api/v1/reload with the session\'s X-CSRF-Token');
    // a forged cross-site request: the cookie and even the right CSRF token, but another Origin
    const { csrf } = (await pageFetch('GET', '/api/v1/session', { csrf: false })).body;
    assert(/^[0-9a-f]{32,}$/.test(csrf || ''), `csrf from GET /api/v1/session: ${csrf}`);
    const cookie = `joey_session=${(await sessionCookie()).value}`;
    r = await raw('POST', '/api/v1/reload', { headers: { Cookie: cookie, 'X-CSRF-Token': csrf, Origin: 'http://evil.example' } });
    eq(r.status, 403, 'POST with Origin: http://evil.example');
    assert(/cross-site/.test(r.body.error), `error: ${r.body.error}`);
    r = await raw('POST', '/api/v1/reload', { headers: { Cookie: cookie, 'X-CSRF-Token': csrf, Origin: BASE } });
    eq(r.status, 200, 'POST with our own Origin');
  });

  await step('Account: a personal API token is shown once, works as a Bearer token, and is revoked', async () => {
    await nav('Account');
    await h1('Account');
    await main().getByText(`Signed in as “${ADMIN.name}”, admin.`).waitFor();
    await checkLabels('account page');
    eq(JSON.stringify(await page.locator('#token-role option').allTextContents()), JSON.stringify(['viewer', 'editor', 'admin']), 'roles an admin may give a token');
    await page.getByLabel('Label').fill('ci-bot');
    await page.getByLabel('Role', { exact: true }).selectOption('viewer');
    await page.getByRole('button', { name: 'Create token' }).click();
    const shown = page.locator('#new-token');
    await shown.waitFor();
    const tok = await shown.inputValue();
    assert(/^joey_[0-9a-f]{48}$/.test(tok), `the token shown: ${tok}`);
    await main().getByText('joey shows it only once').waitFor();
    await main().getByRole('button', { name: 'Copy' }).waitFor();
    const row = main().locator('#tokens tr').filter({ hasText: 'ci-bot' });
    await row.getByText(`${tok.slice(0, 13)}…`).waitFor();
    await shot('account-token-created');
    // as curl would use it: no cookie, the token in Authorization
    const bearer = { Authorization: `Bearer ${tok}` };
    let r = await raw('GET', '/api/v1/status', { headers: bearer });
    eq(r.status, 200, 'GET /api/v1/status with the new token');
    r = await raw('POST', '/api/v1/runs', { headers: bearer, body: {} });
    eq(r.status, 403, 'POST /api/v1/runs with a viewer token');
    eq(r.body.error, 'not allowed for your role', 'the 403 error');
    r = await pageFetch('GET', '/api/v1/models', { csrf: false, credentials: 'omit', headers: bearer });
    eq(r.status, 200, 'fetch with the token and no cookie');
    // shown once: gone after a reload, only its first characters listed
    await page.reload();
    await h1('Account');
    await main().locator('#tokens tr').filter({ hasText: 'ci-bot' }).waitFor();
    eq(await page.locator('#new-token').count(), 0, 'the token field after a reload');
    assert(!(await page.content()).includes(tok), 'the token is on the page again');
    await main().locator('#tokens tr').filter({ hasText: 'ci-bot' }).getByRole('button', { name: 'Revoke token “ci-bot”' }).click();
    await main().locator('#tokens tr[data-revoked="true"]').filter({ hasText: 'ci-bot' }).waitFor();
    r = await raw('GET', '/api/v1/status', { headers: bearer });
    eq(r.status, 401, 'GET /api/v1/status with the revoked token');
    await shot('account');
  });

  await step('Team: add a person, change the role, reset the password, remove; the last admin stays', async () => {
    await nav('Team');
    await h1('Team');
    for (const u of [ADMIN, EDITOR, VIEWER]) await main().locator(`tr[data-user="${u.name}"][data-role="${u.role}"]`).waitFor();
    await checkLabels('team page');
    const tess = { name: 'tess', role: 'viewer', pw: 'tess-initial-pw' };
    await page.getByLabel('User name').fill(tess.name);
    await page.getByLabel('Role', { exact: true }).selectOption('viewer');
    await page.getByLabel('Initial password').fill('short');
    await page.getByRole('button', { name: 'Add user' }).click();
    await main().locator('#add-user-result').getByText('at least 10 characters').waitFor();
    await page.getByLabel('Initial password').fill(tess.pw);
    await page.getByRole('button', { name: 'Add user' }).click();
    const row = main().locator('tr[data-user="tess"]');
    await row.waitFor();
    eq(await row.getByLabel('Role of tess', { exact: true }).inputValue(), 'viewer', 'the new user\'s role');
    await row.getByLabel('Role of tess', { exact: true }).selectOption('editor');
    eq((await apiGet('/api/v1/users')).body.users.find((x) => x.name === 'tess').role, 'viewer', 'the role before Save');
    await row.getByRole('button', { name: 'Save role of tess' }).click();
    await page.locator('#toast').getByText('“tess” is now editor.').waitFor();
    await row.getByRole('button', { name: 'Save role of tess' }).waitFor({ state: 'hidden' });
    let u = (await apiGet('/api/v1/users')).body.users.find((x) => x.name === 'tess');
    eq(u.role, 'editor', 'the role after the change');
    await row.getByRole('button', { name: 'Reset password of tess' }).click();
    await row.getByLabel('New password for tess').fill('tess-second-pw');
    await row.getByRole('button', { name: 'Set password', exact: true }).click();
    await main().locator('#team-result').getByText('New password set for “tess”').waitFor();
    eq((await raw('POST', '/api/v1/session', { body: { user: 'tess', password: 'tess-second-pw' } })).status, 200, 'sign-in with the new password');
    eq((await raw('POST', '/api/v1/session', { body: { user: 'tess', password: tess.pw } })).status, 401, 'sign-in with the old password');
    await shot('team');
    await row.getByRole('button', { name: 'Remove tess' }).click();
    await row.waitFor({ state: 'detached' });
    u = (await apiGet('/api/v1/users')).body.users.find((x) => x.name === 'tess');
    eq(u, undefined, 'tess after the removal');
    // the only admin cannot go: the server's message shows
    await main().locator('tr[data-user="ada"]').getByRole('button', { name: 'Remove ada' }).click();
    await main().locator('#team-result').getByText('"ada" is the last admin').waitFor();
    await main().locator('tr[data-user="ada"]').waitFor();
    await shot('team-last-admin');
  });

  await step('Audit log: newest first, paged, who/when/via/address, the app change with its key masked', async () => {
    await nav('Audit log');
    await h1('Audit log');
    const ids = (await main().locator('table.audit tbody tr[data-id]').evaluateAll((rows) => rows.map((r) => Number(r.dataset.id))));
    assert(ids.length > 20, `audit entries: ${ids.length}`);
    assert(ids.every((v, i) => i === 0 || v < ids[i - 1]), `not newest first: ${ids.join(',')}`);
    eq(await main().locator('table.audit tbody tr[data-id]').first().getAttribute('data-action'), 'user.remove', 'the newest entry');
    const app = main().locator('tr[data-action="config.create"][data-object="braze_simulator"]');
    await app.waitFor();
    const cells = await app.locator('td').allTextContents();
    eq(cells[1], ADMIN.name, 'who');
    eq(cells[2], 'session', 'via');
    eq(cells[3], '127.0.0.1', 'address');
    assert(cells[5].includes('apps'), `object: ${cells[5]}`);
    await app.getByRole('button', { name: /^Show/ }).click();
    const detail = main().locator(`tr[data-detail-of="${await app.getAttribute('data-id')}"]`);
    await detail.waitFor();
    const after = await detail.locator('.audit-diff pre').last().textContent();
    const j = JSON.parse(after);
    eq(j.id, 'braze_simulator', 'after.id');
    assert(j.options && j.options.apiKey && j.options.apiKey !== SIM_KEY, `the key in the audit log: ${JSON.stringify(j.options)}`);
    assert(!(await page.content()).includes(SIM_KEY), 'the API key is on the audit page');
    const upd = main().locator('tr[data-action="config.update"][data-object="braze_all_users"]').first();
    await upd.getByRole('button', { name: /changed: .*syncMode/ }).waitFor();
    await shot('audit');
    // paging with next_before
    await page.getByLabel('Entries per page').selectOption('10');
    await until('10 entries a page', async () => (await main().locator('table.audit tbody tr[data-id]').count()) === 10, 10000, 100);
    const first = await main().locator('table.audit tbody tr[data-id]').evaluateAll((rows) => rows.map((r) => Number(r.dataset.id)));
    eq(first[0], ids[0], 'the first page starts with the newest');
    await main().getByRole('link', { name: 'Older entries' }).click();
    await until('the second page', async () => Number(await main().locator('table.audit tbody tr[data-id]').first().getAttribute('data-id')) < first[9], 10000, 100);
    const second = await main().locator('table.audit tbody tr[data-id]').evaluateAll((rows) => rows.map((r) => Number(r.dataset.id)));
    eq(JSON.stringify(second), JSON.stringify(ids.slice(10, 20)), 'the second page');
    await main().getByRole('link', { name: 'Newest entries' }).click();
    await until('back to the newest', async () => Number(await main().locator('table.audit tbody tr[data-id]').first().getAttribute('data-id')) === ids[0], 10000, 100);
  });

  await step('sign out: the sign-in page shows, and the old session cookie opens nothing', async () => {
    const old = (await sessionCookie()).value;
    await signOut();
    await page.locator('#login-notice').getByText('You have signed out.').waitFor();
    eq((await navNames()).length, 0, 'menu links after signing out');
    eq(await page.locator('#toast > div').count(), 0, 'messages of the signed-out user still on screen');
    eq((await raw('GET', '/api/v1/status', { headers: { Cookie: `joey_session=${old}` } })).status, 401, 'the old cookie after signing out');
    eq((await pageFetch('GET', '/api/v1/status', { csrf: false })).status, 401, 'a fetch from the page after signing out');
    await shot('signed-out');
  });

  await step('viewer: sees everything, changes nothing (controls hidden or disabled; the API answers 403)', async () => {
    await signIn(VIEWER);
    await h1('Overview');
    const names = await navNames();
    assert(!names.includes('Team') && !names.includes('Audit log'), `viewer menu: ${names.join(', ')}`);
    assert(names.includes('Account') && names.includes('Runs'), `viewer menu: ${names.join(', ')}`);
    await nav('Users');
    await h1('Users');
    await main().getByRole('cell', { name: 'Braze: all users' }).first().waitFor();
    for (const l of ['Add Braze destination', 'Preview plan', 'Change schedule']) eq(await main().getByRole('link', { name: l }).count(), 0, `link "${l}" for a viewer`);
    await disabledFor(main().getByRole('button', { name: 'Run now' }), 'editor');
    await disabledFor(main().getByRole('button', { name: /^Run Braze: all users/ }), 'editor');
    await main().getByRole('link', { name: /^View Braze: all users/ }).waitFor();
    await shot('viewer-model');
    await main().getByRole('link', { name: /^View Braze: all users/ }).click();
    await h1('Destination: Braze: all users');
    await main().getByText('Read only.').waitFor();
    await disabledFor(main().getByRole('button', { name: 'Save changes' }), 'editor');
    await disabledFor(main().getByRole('button', { name: 'Delete destination' }), 'editor');
    await nav('Runs');
    await h1('Runs');
    await disabledFor(main().getByRole('button', { name: 'Run everything now' }), 'editor');
    await nav('Apps');
    await h1('Apps');
    eq(await main().getByRole('link', { name: 'Connect a Braze app' }).count(), 0, 'Connect a Braze app for a viewer');
    await main().getByRole('link', { name: /^View / }).first().click();
    await h1('Braze app: Braze (simulator)');
    await disabledFor(main().getByRole('button', { name: 'Save changes' }), 'admin');
    await disabledFor(main().getByRole('button', { name: 'Test connection' }), 'admin');
    await nav('Records');
    await page.getByLabel('Find a record').fill('1');
    await page.getByRole('button', { name: 'Search' }).click();
    await main().locator('#record').getByText('ada@example.com').first().waitFor();
    // the server refuses what the page does not offer
    for (const [m, u, b, want] of [['POST', '/api/v1/runs', {}, 403], ['POST', '/api/v1/plan', {}, 403], ['POST', '/api/v1/retry', { destination: 'braze_all_users' }, 403],
      ['POST', '/api/v1/reload', undefined, 403], ['DELETE', '/api/v1/config/schedules/users_table_schedule', undefined, 403],
      ['GET', '/api/v1/users', undefined, 403], ['GET', '/api/v1/audit', undefined, 403], ['GET', '/api/v1/models', undefined, 200]]) {
      const r = await pageFetch(m, u, { body: b });
      eq(r.status, want, `${m} ${u} as a viewer`);
      if (want === 403) eq(r.body.error, 'not allowed for your role', `${m} ${u} error`);
    }
    // the plan page of a viewer (only by its address: no link leads there) says what
    // the role allows and sends no plan request only to show its 403
    {
      const plans = [];
      const seen = (req) => { if (req.url().includes('/api/v1/plan')) plans.push(req.url()); };
      page.on('request', seen);
      await page.goto(`${BASE}/#/models/users/plan`);
      await h1('Plan: Users');
      await main().getByText(/Previewing a plan \(it reads the sources and asks Braze\) needs the editor role/).waitFor();
      await disabledFor(main().getByRole('button', { name: 'Refresh' }), 'editor');
      await page.waitForTimeout(500);
      page.off('request', seen);
      eq(plans.length, 0, 'plan requests from a viewer\'s plan page');
      eq(await main().getByText('The plan could not be made').count(), 0, 'an error notice on a viewer\'s plan page');
    }
    // a page of a higher role: the 403, shown cleanly
    await page.goto(`${BASE}/#/team`);
    await h1('Not allowed');
    await main().getByText('not allowed for your role').waitFor();
    await main().getByText(/signed in as "vera" \(viewer\)/).waitFor();
    await shot('viewer-team-not-allowed');
    await page.goto(`${BASE}/#/account`);
    await h1('Account');
    eq(JSON.stringify(await page.locator('#token-role option').allTextContents()), JSON.stringify(['viewer']), 'roles a viewer may give a token');
  });

  await step('editor: runs, plans and edits models, but not apps, the team or the audit log; changes the own password', async () => {
    await signOut();
    await signIn(EDITOR);
    const names = await navNames();
    assert(!names.includes('Team') && !names.includes('Audit log'), `editor menu: ${names.join(', ')}`);
    await nav('Users');
    await h1('Users');
    assert(await main().getByRole('button', { name: 'Run now' }).isEnabled(), 'Run now for an editor');
    await main().getByRole('link', { name: 'Add Braze destination' }).waitFor();
    await main().getByRole('link', { name: /^Edit Braze: all users/ }).waitFor();
    await main().getByRole('link', { name: /^Change schedule/ }).first().waitFor();
    await nav('Apps');
    await h1('Apps');
    eq(await main().getByRole('link', { name: 'Connect a Braze app' }).count(), 0, 'Connect a Braze app for an editor');
    await main().getByRole('link', { name: /^View / }).first().click();
    await h1('Braze app: Braze (simulator)');
    await main().getByText('Read only.').waitFor();
    await disabledFor(main().getByRole('button', { name: 'Save changes' }), 'admin');
    await disabledFor(main().getByRole('button', { name: 'Test connection' }), 'admin');
    await disabledFor(main().getByRole('button', { name: 'Delete app' }), 'admin');
    await shot('editor-app');
    for (const [m, u, b, want] of [['POST', '/api/v1/apps/braze_simulator/test', undefined, 403], ['PUT', '/api/v1/config/apps/braze_simulator', { id: 'braze_simulator', class: 'App', type: 'braze', name: 'x', options: { apiKey: '****', restEndpoint: SIM_URL } }, 403],
      ['GET', '/api/v1/users', undefined, 403], ['GET', '/api/v1/audit', undefined, 403], ['GET', '/api/v1/tokens?all=1', undefined, 403],
      ['POST', '/api/v1/plan', { destination: 'braze_all_users' }, 200], ['POST', '/api/v1/reload', undefined, 200]]) {
      const r = await pageFetch(m, u, { body: b });
      eq(r.status, want, `${m} ${u} as an editor`);
      if (want === 403) eq(r.body.error, 'not allowed for your role', `${m} ${u} error`);
    }
    await page.goto(`${BASE}/#/audit`);
    await h1('Not allowed');
    // the own password: a wrong current one is refused, then changed
    await page.goto(`${BASE}/#/account`);
    await h1('Account');
    eq(JSON.stringify(await page.locator('#token-role option').allTextContents()), JSON.stringify(['viewer', 'editor']), 'roles an editor may give a token');
    const newPw = `${EDITOR.pw}-2`;
    // a second tab of the same browser (the same cookie), open before the change
    const other = await browser.newPage();
    other.on('pageerror', (e) => pageErrors.push(String(e && e.stack ? e.stack : e)));
    const otherPosts = [];
    other.on('response', (res) => { if (res.request().method() === 'POST' && res.url().endsWith('/api/v1/tokens')) otherPosts.push(res.status()); });
    await other.goto(`${BASE}/#/account`);
    await other.getByRole('heading', { level: 1, name: 'Account' }).waitFor();
    await page.getByLabel('Current password').fill('wrong-password-here');
    await page.getByLabel('New password', { exact: true }).fill(newPw);
    await page.getByLabel('Repeat the new password').fill(newPw);
    await page.getByRole('button', { name: 'Change password' }).click();
    await main().locator('#password-result').getByText('the current password is wrong').waitFor();
    eq(await page.getByRole('heading', { level: 1, name: 'Account' }).count(), 1, 'still signed in after a wrong current password');
    await page.getByLabel('Current password').fill(EDITOR.pw);
    await page.getByLabel('New password', { exact: true }).fill(newPw);
    await page.getByLabel('Repeat the new password').fill(newPw);
    await page.getByRole('button', { name: 'Change password' }).click();
    await main().locator('#password-result').getByText('Password changed.').waitFor();
    await shot('account-password-changed');
    // the session goes on with its new CSRF token
    eq((await pageFetch('POST', '/api/v1/reload')).status, 200, 'a change after the password change');
    // the other tab still holds the old session's CSRF token: its next change takes the new one
    await other.getByLabel('Label').fill('from-the-other-tab');
    await other.getByRole('button', { name: 'Create token' }).click();
    await other.locator('#new-token').waitFor();
    await other.locator('#tokens tr').filter({ hasText: 'from-the-other-tab' }).waitFor();
    eq(JSON.stringify(otherPosts), '[403,201]', 'POST /api/v1/tokens answers in the other tab (refused with the old CSRF token, then made)');
    await other.close();
    await signOut();
    EDITOR.pw = newPw;
    await signIn(EDITOR);
  });

  await step('admin: the Team and Audit log pages, apps, and the admin-only API', async () => {
    await signOut();
    await signIn(ADMIN);
    const names = await navNames();
    assert(names.includes('Team') && names.includes('Audit log'), `admin menu: ${names.join(', ')}`);
    for (const [m, u, want] of [['GET', '/api/v1/users', 200], ['GET', '/api/v1/audit?limit=5', 200], ['GET', '/api/v1/tokens?all=1', 200], ['POST', '/api/v1/apps/braze_simulator/test', 200]]) {
      eq((await pageFetch(m, u)).status, want, `${m} ${u} as the admin`);
    }
    await nav('Apps');
    await main().getByRole('link', { name: 'Connect a Braze app' }).first().waitFor();
    await main().getByRole('link', { name: /^Edit / }).first().click();
    await h1('Braze app: Braze (simulator)');
    assert(await main().getByRole('button', { name: 'Test connection' }).isEnabled(), 'Test connection for the admin');
    eq(await main().getByText('Read only.').count(), 0, 'a read-only notice for the admin');
    // a new endpoint with the stored key ("****") kept: the key must be typed again
    await page.getByLabel('REST endpoint URL').fill('https://rest.fra-01.braze.eu');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await main().locator('#diagnostics').getByText('The endpoint changed: type the REST API key again').waitFor();
    eq(await page.getByLabel('REST API key').getAttribute('aria-invalid'), 'true', 'the key field marked');
    eq((await apiGet('/api/v1/config/apps/braze_simulator')).body.options.restEndpoint, SIM_URL, 'the endpoint after the refused change');
    await shot('app-endpoint-needs-key');
  });

  await step('an ended session brings back the sign-in page, then the page it was on', async () => {
    await nav('Runs');
    await h1('Runs');
    // a cookie the server no longer knows, as after the idle timeout
    await browser.addCookies([{ name: 'joey_session', value: '0'.repeat(64), url: BASE, httpOnly: true, sameSite: 'Strict' }]);
    await page.getByRole('heading', { level: 1, name: 'Sign in to joey' }).waitFor({ timeout: 20000 });
    await page.locator('#login-notice').getByText(/session has ended/).waitFor();
    assert(page.url().endsWith('#/runs'), `the address while signed out: ${page.url()}`);
    await shot('session-ended');
    // a reload says so too
    await page.reload();
    await page.locator('#login-notice').getByText(/session has ended/).waitFor();
    await signIn(ADMIN);
    await h1('Runs');
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

  await step('the one-time setup link creates the first admin on a fresh install, and works once', async () => {
    await page.goto('about:blank'); // the first server's page stops polling (the cookie is per host, not per port)
    const port2 = await freePort();
    base2 = `http://127.0.0.1:${port2}`;
    fs.mkdirSync(path.join(tmp, 'state2'));
    const cfg2 = bareConfig('config2'); // a second install: its own config, state and accounts
    // sessions there end after 8 s without a request (the unattended-page step)
    serve2 = await startServe('joey-serve-2', cfg2, path.join(tmp, 'state2/joey.db'), port2, { JOEY_SESSION_IDLE: '8' });
    const logf = path.join(tmp, 'joey-serve-2.log');
    const link2 = await until('the setup link in the log', () => { const m = /(http:\/\/\S+\/#setup=[0-9a-f]+)/.exec(fs.readFileSync(logf, 'utf8')); return m && m[1]; }, 10000, 100);
    assert(link2.startsWith(`${base2}/#setup=`), `setup link ${link2}`);
    const setupToken = link2.split('#setup=')[1];
    eq((await (await fetch(`${base2}/api/v1/session`)).json()).setup_pending, true, 'setup_pending');
    const p2 = await browser.newPage();
    p2.setDefaultTimeout(15000);
    p2.on('pageerror', (e) => pageErrors.push(String(e && e.stack ? e.stack : e)));
    await p2.goto(link2);
    await p2.getByRole('heading', { level: 1, name: 'Create the first admin' }).waitFor();
    assert(!p2.url().includes('setup='), `the setup token stays in the address: ${p2.url()}`);
    await shot('setup', p2);
    await p2.getByLabel('User name').fill('root');
    await p2.getByLabel('Password', { exact: true }).fill('root-password-1');
    await p2.getByLabel('Repeat the password').fill('root-password-2');
    await p2.getByRole('button', { name: 'Create admin and sign in' }).click();
    await p2.locator('#setup-error').getByText('The two passwords differ.').waitFor();
    await p2.getByLabel('Repeat the password').fill('root-password-1');
    await p2.getByRole('button', { name: 'Create admin and sign in' }).click();
    await p2.locator('#userbox #user-name').filter({ hasText: 'root' }).waitFor();
    await p2.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    eq((await p2.locator('#userbox .badge').textContent()).trim(), 'admin', 'the first user\'s role');
    await p2.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Team' }).waitFor();
    await shot('setup-done', p2);
    const users = JSON.parse(joeyCli(['user', 'list', '--json', '--config', cfg2, '--state', path.join(tmp, 'state2/joey.db')]));
    eq(JSON.stringify(users.map((u) => [u.name, u.role])), JSON.stringify([['root', 'admin']]), 'joey user list after the setup');
    // the link a second time: refused, by the page and by the API
    await signOut(p2);
    await p2.goto('about:blank');
    await p2.goto(link2);
    await p2.getByRole('heading', { level: 1, name: 'Sign in to joey' }).waitFor();
    await p2.locator('#login-notice').getByText('This setup link is no longer valid').waitFor();
    assert(!p2.url().includes('setup='), `the setup token stays in the address: ${p2.url()}`);
    await shot('setup-link-used', p2);
    const r = await fetch(`${base2}/api/v1/setup`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ token: setupToken, user: 'mallory', password: 'mallory-password' }) });
    eq(r.status, 403, 'POST /api/v1/setup with the used link');
    await p2.close();
  });

  await step('an unattended page stops its background requests, so the idle timeout ends its session', async () => {
    const p4 = await browser.newPage();
    p4.setDefaultTimeout(15000);
    p4.on('pageerror', (e) => pageErrors.push(String(e && e.stack ? e.stack : e)));
    const calls = [];
    p4.on('request', (r) => { if (r.url().includes('/api/v1/')) calls.push([Date.now(), r.url().replace(base2, '')]); });
    await p4.goto(`${base2}/#/runs`);
    await signIn({ name: 'root', role: 'admin', pw: 'root-password-1' }, p4);
    await p4.getByRole('heading', { level: 1, name: 'Runs' }).waitFor();
    // attended: the page keeps asking (status every 5 s), which keeps the 8 s session alive
    await sleep(9000);
    assert(calls.some(([t, u]) => u === '/api/v1/status' && t > Date.now() - 6000), `no status refresh while attended: ${JSON.stringify(calls.slice(-5))}`);
    eq(await p4.locator('#userbox #user-name').textContent(), 'root', 'still signed in after 9 s');
    // unattended for 1 s: nothing more is asked, and the server's idle timeout ends the session
    await p4.evaluate(() => window.joeyUI.setIdlePause(1000));
    await sleep(1500);
    const quietFrom = Date.now();
    await sleep(10000);
    const during = calls.filter(([t]) => t > quietFrom);
    eq(JSON.stringify(during), '[]', 'requests of an unattended page');
    eq(await p4.getByRole('heading', { level: 1, name: 'Runs' }).count(), 1, 'the page while unattended');
    // the person comes back: the page asks again and learns the session has ended
    await p4.getByRole('heading', { level: 1, name: 'Runs' }).click();
    await p4.getByRole('heading', { level: 1, name: 'Sign in to joey' }).waitFor();
    await p4.locator('#login-notice').getByText(/session has ended/).waitFor();
    assert(p4.url().endsWith('#/runs'), `the address: ${p4.url()}`);
    await p4.close();
  });

  await step('sign-in attempts are rate-limited, and the page says how long to wait', async () => {
    let last;
    for (let i = 0; i < 12; i++) {
      last = await fetch(`${base2}/api/v1/session`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ user: 'root', password: `wrong-${i}` }) });
      if (last.status === 429) break;
      eq(last.status, 401, `failed sign-in ${i + 1}`);
    }
    eq(last.status, 429, 'after 10 failures');
    const ra = Number(last.headers.get('retry-after'));
    assert(ra > 800 && ra <= 900, `Retry-After: ${ra}`);
    const p3 = await browser.newPage();
    p3.on('pageerror', (e) => pageErrors.push(String(e && e.stack ? e.stack : e)));
    await p3.goto(`${base2}/`);
    await p3.getByLabel('User name').fill('root');
    await p3.getByLabel('Password', { exact: true }).fill('root-password-1'); // right, but refused for now
    await p3.getByRole('button', { name: 'Sign in' }).click();
    await p3.locator('#login-error').getByText('Too many failed sign-ins.').waitFor();
    await p3.locator('#login-error').getByText(/Try again in 1[45] minutes\./).waitFor();
    await shot('sign-in-rate-limited', p3);
    await p3.close();
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
    if (serve2) {
      serve2.kill('SIGTERM');
      await until('the second joey serve to exit', () => serve2.exited, 30000, 100);
      eq(serve2.exited.code, 0, 'exit status of the second joey serve');
    }
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
