// lib.mjs: what the browser tests of joey's web UI (ui.test.mjs, ui_product.test.mjs,
// ui_audiences.test.mjs, ui_query_source.test.mjs, ui_forms.test.mjs, alerts.test.mjs) share: where joey, braze-sim, Chromium and the
// source tree are (from the environment), assertions, polling, a free port, child
// processes with their output in a log file, numbered screenshots, and the steps with
// their "ok / FAIL / skip" lines and counts. Holds no state of its own: a test owns its
// children, its screenshot counter and its Steps.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export const JOEY = path.resolve(process.env.JOEY_BIN || 'build/joey');
export const SRC = path.resolve(process.env.JOEY_SRC || path.join(path.dirname(new URL(import.meta.url).pathname), '../..'));
export const SIM = process.env.BRAZE_SIM_BIN || path.join(path.dirname(JOEY), 'braze-sim');
export const CHROMIUM = process.env.JOEY_CHROMIUM || '/usr/bin/chromium';
// Where a test's screenshots go: <JOEY_ARTIFACTS or the build dir's artifacts>/<name>.
export const artifacts = (name) => path.join(process.env.JOEY_ARTIFACTS || path.join(path.dirname(JOEY), 'artifacts'), name);

export const log = (...a) => console.log(...a);
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export function assert(cond, msg) { if (!cond) throw new Error(msg); }
export function eq(a, b, msg) { if (a !== b) throw new Error(`${msg}: expected ${JSON.stringify(b)}, got ${JSON.stringify(a)}`); }

// A TCP port free on 127.0.0.1 now.
export function freePort() {
  return new Promise((ok, bad) => {
    const s = net.createServer();
    s.on('error', bad);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => ok(port)); });
  });
}

// Call fn every `every` ms until it returns something truthy (returned), or throw after ms.
export async function until(what, fn, ms = 15000, every = 200) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try { const v = await fn(); if (v) return v; } catch (e) { last = e; }
    await sleep(every);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

// Start cmd with its output in dir/<name>.log; the process is pushed onto children (the
// test stops them at its end) and gets .exited = {code, sig} when it ends.
export function spawnLogged(dir, children, name, cmd, args, env) {
  const out = fs.openSync(path.join(dir, `${name}.log`), 'w');
  const p = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', out, out] });
  p.on('exit', (code, sig) => { p.exited = { code, sig }; });
  children.push(p);
  return p;
}

// shot(name, p = getPage()): a full-page screenshot dir/NN-<name>.png, numbered in order.
export function makeShot(dir, getPage) {
  let n = 0;
  return async (name, p = getPage()) => {
    n += 1;
    await p.screenshot({ path: path.join(dir, `${String(n).padStart(2, '0')}-${name}.png`), fullPage: true });
  };
}

// The steps of a test: after a failed step the next ones are skipped (unless always).
// timed: "ok" lines say how long the step took. onFail(name): called after a failure
// (a screenshot); its own failure is ignored.
export class Steps {
  constructor({ timed = true, onFail = null } = {}) {
    this.passed = 0;
    this.failed = 0;
    this.stopped = false;
    this.timed = timed;
    this.onFail = onFail;
    this.step = this.step.bind(this);
  }

  async step(name, fn, { always = false } = {}) {
    if (this.stopped && !always) { log(`skip ${name} (an earlier step failed)`); return; }
    const t0 = Date.now();
    try {
      await fn();
      this.passed += 1;
      log(this.timed ? `ok   ${name} (${Date.now() - t0} ms)` : `ok   ${name}`);
    } catch (e) {
      this.failed += 1;
      this.stopped = true;
      log(`FAIL ${name}: ${e && e.stack ? e.stack : e}`);
      if (this.onFail) await this.onFail(name).catch(() => {});
    }
  }
}

// Wait until the joey serve p (started with spawnLogged(dir, ..., name, ...)) answers
// GET base/healthz; when it exits first, fail with the end of its log.
export function untilHealthy(name, p, base, dir) {
  return until(`${name} /healthz`, async () => {
    if (p.exited) throw new Error(`${name} exited ${JSON.stringify(p.exited)}: ${fs.readFileSync(path.join(dir, `${name}.log`), 'utf8').slice(-2000)}`);
    const r = await fetch(`${base}/healthz`).catch(() => null);
    return r && r.ok;
  }, 20000, 100);
}

// The API as the test itself calls it, with a bearer token (not through the page):
// {status, body}; body is sent as JSON when given.
export async function apiCall(base, token, method, p, body) {
  const init = { method, headers: { Authorization: `Bearer ${token}` } };
  if (body !== undefined) { init.headers['Content-Type'] = 'application/json'; init.body = JSON.stringify(body); }
  const r = await fetch(base + p, init);
  return { status: r.status, body: await r.json().catch(() => null) };
}

// ---- in the page p (a playwright Page)
export const h1 = (p, text) => p.getByRole('heading', { level: 1, name: text, exact: typeof text === 'string' }).waitFor({ timeout: 15000 });
export const nav = (p, name) => p.getByRole('navigation', { name: 'Main' }).getByRole('link', { name, exact: true }).click();
// Sign in as u ({name, pw}) on the sign-in page; returns when the header shows u.
export async function signIn(p, u) {
  await p.getByRole('heading', { level: 1, name: 'Sign in to joey' }).waitFor();
  await p.getByLabel('User name').fill(u.name);
  await p.getByLabel('Password', { exact: true }).fill(u.pw);
  await p.getByRole('button', { name: 'Sign in' }).click();
  await p.locator('#userbox #user-name').filter({ hasText: u.name }).waitFor();
  // the user box is drawn at once, the menu after the status arrives: wait for both
  await p.getByRole('navigation', { name: 'Main' }).getByRole('link').first().waitFor();
}
export async function signOut(p) {
  await p.getByRole('button', { name: 'Sign out' }).click();
  await p.getByRole('heading', { level: 1, name: 'Sign in to joey' }).waitFor();
}
// Every visible form control in main has an accessible name (label, aria-label or aria-labelledby).
export async function checkLabels(p, where) {
  const bad = await p.evaluate(() => [...document.querySelectorAll('main input, main select, main textarea')]
    .filter((e) => e.type !== 'hidden' && e.offsetParent !== null)
    .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.getAttribute('aria-labelledby'))
    .map((e) => e.outerHTML.slice(0, 120)));
  assert(!bad.length, `${where}: controls without a label: ${bad.join(' | ')}`);
}
