// app.js: joey's web UI, the shell. A single-page app with hash routing over the JSON
// API in docs/api.md; no framework. This file holds the router (routes, render, go, the
// timers of the shown page and their pause when nobody is at the page), the status
// banner, the navigation, and start(); every page lives in its own module (pages/*.js,
// alerts.js, audiences.js, records.js, editors.js, repair.js) built on lib/dom.js and
// lib/api.js. Every text that comes from the API (record data, config names, error
// messages) is inserted as text (textContent / text nodes), never parsed as HTML: the UI
// never uses innerHTML, outerHTML, insertAdjacentHTML or document.write.
// Loaded by index.html (<script type="module">); window.joeyUI is for the browser tests.
import { alertViews } from './alerts.js';
import { audienceViews } from './audiences.js';
import { editorViews } from './editors.js';
import { recordViews } from './records.js';
import { configErrorBody, viewRepair } from './repair.js';
import { allow, api, can, destName, destinationsById, errorNotice, get, itemsOf, post, put, roleNotice, session, state } from './lib/api.js';
import { ID_RE, append, badge, clear, enc, field, fmtAgo, fmtTime, fmtValue, h, idFollowsName, link, pageHeader, plural, route, slug, table, toast, uid } from './lib/dom.js';
import { configObjectBody, removeObject, showDiagnostics } from './lib/forms.js';
import { viewAccount } from './pages/account.js';
import { viewAppForm, viewApps } from './pages/apps.js';
import { viewAudit } from './pages/audit.js';
import { viewDestinationForm } from './pages/destination_form.js';
import { payloadView, viewErrors } from './pages/errors.js';
import { viewModel } from './pages/model.js';
import { viewNewModel } from './pages/model_new.js';
import { viewOverview } from './pages/overview.js';
import { viewPlan } from './pages/plan.js';
import { viewRun, viewRuns } from './pages/runs.js';
import { viewScheduleForm } from './pages/schedule_form.js';
import { boot, showLogin } from './pages/session.js';
import { viewTeam } from './pages/team.js';

// ---------------------------------------------------------------- status banner

export async function refreshStatus() {
  try {
    const s = await get('/status');
    state.status = s;
    const v = document.getElementById('version');
    v.textContent = s.version ? `joey ${s.version}` : '';
    showConfigBanner(s.config_error);
    return s;
  } catch (e) {
    if (e.status === 503) showConfigBanner(e.body);
    return null;
  }
}

function showConfigBanner(ce) {
  const b = document.getElementById('config-banner');
  clear(b);
  // the repair page says the same at length
  if (!ce || location.hash.startsWith('#/repair')) { b.hidden = true; return; }
  b.hidden = false;
  const repair = !!(state.status && state.status.repair);
  append(b, [
    h('h2', repair ? 'The configuration has a problem: nothing runs' : 'The configuration has a problem'),
    configErrorBody(ce, { repair }),
    can('editor') ? h('a.button.primary', { href: '#/repair' }, 'Fix the files') : h('p.small', 'An editor or an admin can fix the files.'),
    ' ',
    allow(h('button.small', {
      type: 'button',
      on: {
        click: async () => {
          try { await post('/reload'); toast('Configuration reloaded.'); } catch (e) { toast(`Reload failed: ${e.message}`); }
          await refreshStatus();
          render();
        },
      },
    }, 'Reload configuration'), 'editor'),
  ]);
}

// ---------------------------------------------------------------- navigation

export async function refreshNav(currentHash) {
  const nav = document.getElementById('nav');
  try { state.models = await get('/models'); } catch (e) { if (e.status === 401) return; state.models = state.models || []; }
  clear(nav);
  const item = (href, text, count) => {
    const a = h('a', { href }, text, count !== undefined && count !== null ? h('span.count', { 'aria-label': `(${count})` }, String(count)) : null);
    const cur = currentHash === href || (href !== '#/' && currentHash.startsWith(href + '/')) || (href !== '#/' && currentHash.startsWith(href + '?'));
    if (cur) a.setAttribute('aria-current', 'page');
    return h('li', a);
  };
  const broken = !!(state.status && state.status.config_error);
  append(nav, [
    h('ul', item('#/', 'Overview'), item('#/audiences', 'Audiences'), item('#/data', 'Data'), broken && can('editor') ? item('#/repair', 'Repair configuration') : null),
    h('h2', { id: 'nav-models' }, 'Models'),
    h('ul', { 'aria-labelledby': 'nav-models' },
      state.models.length ? state.models.map((m) => item(route('models', m.id), m.name || m.id)) : h('li.muted.small', 'No models in the config')),
    h('h2', { id: 'nav-activity' }, 'Activity'),
    h('ul', { 'aria-labelledby': 'nav-activity' },
      item('#/runs', 'Runs'),
      item('#/errors', 'Failed rows'),
      item('#/records', 'Records')),
    h('h2', { id: 'nav-settings' }, 'Connections'),
    h('ul', { 'aria-labelledby': 'nav-settings' }, item('#/apps', 'Apps'), item('#/alerts', 'Alerts')),
    can('admin') ? [h('h2', { id: 'nav-admin' }, 'Administration'),
      h('ul', { 'aria-labelledby': 'nav-admin' }, item('#/team', 'Team'), item('#/audit', 'Audit log'))] : null,
    h('h2', { id: 'nav-you' }, 'You'),
    h('ul', { 'aria-labelledby': 'nav-you' }, item('#/account', 'Account')),
  ]);
}

// ---------------------------------------------------------------- router

export const view = { gen: 0, timers: [], paused: false };

// Background refreshes (the status banner, pages following runs) are requests too, and
// every request keeps the session in use. They stop after idle.pauseMs without a key
// press, click, touch or scroll, so the server's idle timeout still ends a session left
// open and unattended; the next interaction brings the page up to date (or, if the
// session ended meanwhile, the sign-in page).
const idle = { last: Date.now(), pauseMs: 10 * 60 * 1000 };
function unattended() { return Date.now() - idle.last > idle.pauseMs; }
function attended() {
  const was = unattended();
  idle.last = Date.now();
  if (!was || !session.user) return;
  refreshStatus();
  if (view.paused) { view.paused = false; render(); } // only pages that poll: a form keeps what was typed
}
export function stopTimers() { for (const t of view.timers) clearTimeout(t); view.timers = []; }
// every(ms, fn): call fn repeatedly while the current view is shown; fn returns the next delay or undefined.
export function every(ms, fn) {
  const gen = view.gen;
  const tick = async () => {
    if (gen !== view.gen) return;
    if (unattended()) { view.paused = true; return; } // resumes (render) when the person is back
    let next = ms;
    try { const r = await fn(); if (typeof r === 'number') next = r; } catch (e) { if (e.status === 401) return; }
    if (gen === view.gen) view.timers.push(setTimeout(tick, next));
  };
  view.timers.push(setTimeout(tick, ms));
}

export function parseHash() {
  let hsh = location.hash || '#/';
  if (!hsh.startsWith('#/')) hsh = '#/';
  const [p, q] = hsh.slice(2).split('?');
  const segs = p.split('/').filter(Boolean).map((s) => { try { return decodeURIComponent(s); } catch { return s; } });
  return { segs, query: new URLSearchParams(q || ''), hash: hsh };
}

// The Alerts pages (alerts.js) use this file's helpers.
const alertsUI = alertViews({ h, append, clear, route, link, field, fmtTime, fmtAgo, plural, idFollowsName, ID_RE, badge, can, allow,
  roleNotice, get, post, put, itemsOf, errorNotice, pageHeader, table, showDiagnostics, removeObject, go, enc, every,
  configObjectBody, destinationsById });
// The Audiences and Records pages (audiences.js, records.js) too.
const audiencesUI = audienceViews({ h, append, clear, route, link, field, fmtAgo, plural, idFollowsName, ID_RE, badge, can, allow, roleNotice,
  get, post, put, errorNotice, pageHeader, table, showDiagnostics, removeObject, go, enc, configObjectBody, fmtValue, uid });
const editorsUI = editorViews({ h, append, clear, route, link, field, slug, ID_RE, badge, can, allow, roleNotice, get, post, put,
  errorNotice, pageHeader, table, showDiagnostics, removeObject, go, enc, configObjectBody, fmtValue });
const recordsUI = recordViews({ h, append, clear, route, link, field, fmtTime, fmtAgo, plural, badge, get, errorNotice, pageHeader,
  table, go, enc, fmtValue, destinationsById, destName, payloadView });

const routes = [
  [[], viewOverview],
  [['models', ':model'], viewModel],
  [['models', ':model', 'plan'], viewPlan],
  [['models', ':model', 'plan', ':dest'], viewPlan],
  [['models', ':model', 'destinations', 'new'], viewDestinationForm],
  [['models', ':model', 'destinations', ':dest'], viewDestinationForm],
  [['models', ':model', 'schedules', ':source'], viewScheduleForm],
  [['apps'], viewApps],
  [['apps', 'new'], viewAppForm],
  [['apps', ':app'], viewAppForm],
  [['runs'], viewRuns],
  [['runs', ':run'], viewRun],
  [['errors'], viewErrors],
  [['records'], (...a) => recordsUI.viewRecords(...a)],
  [['records', ':model'], (...a) => recordsUI.viewRecords(...a)],
  [['records', ':model', ':key'], (...a) => recordsUI.viewRecord(...a)],
  [['audiences'], (...a) => audiencesUI.viewAudiences(...a)],
  [['data'], (...a) => editorsUI.viewData(...a)],
  [['data', 'models', 'new'], viewNewModel], // Model + Source + key property in one write
  [['data', 'models', ':model'], (...a) => editorsUI.viewModelForm(...a)],
  [['data', ':model', 'sources', 'new'], (...a) => editorsUI.viewSourceForm(...a)],
  [['data', ':model', 'sources', ':source'], (...a) => editorsUI.viewSourceForm(...a)],
  [['data', ':model', 'properties', 'new'], (...a) => editorsUI.viewPropertyForm(...a)],
  [['data', ':model', 'properties', ':property'], (...a) => editorsUI.viewPropertyForm(...a)],
  [['audiences', ':model', 'new'], (...a) => audiencesUI.viewGroupForm(...a)],
  [['audiences', ':model', ':group'], (...a) => audiencesUI.viewGroupForm(...a)],
  [['account'], viewAccount],
  [['team'], viewTeam],
  [['audit'], viewAudit],
  [['alerts'], (...a) => alertsUI.viewAlerts(...a)],
  [['alerts', 'new'], (...a) => alertsUI.viewAlertForm(...a)],
  [['alerts', ':alert'], (...a) => alertsUI.viewAlertForm(...a)],
  [['repair'], (root, _p, query, ctx) => viewRepair(root, query, ctx, { api, can, refreshStatus, go })],
];

function match(segs) {
  for (const [pat, fn] of routes) {
    if (pat.length !== segs.length) continue;
    const params = {};
    let ok = true;
    pat.forEach((p, i) => {
      if (p.startsWith(':')) params[p.slice(1)] = segs[i];
      else if (p !== segs[i]) ok = false;
    });
    if (ok) return [fn, params];
  }
  return [null, null];
}

export async function render() {
  const { segs, query, hash } = parseHash();
  view.gen += 1;
  const gen = view.gen;
  stopTimers();
  view.paused = false;
  const main = document.getElementById('main');
  document.getElementById('nav').classList.remove('open');
  document.getElementById('nav-toggle').setAttribute('aria-expanded', 'false');
  if (!session.user) { showLogin(); return; }
  refreshNav(hash);
  const [fn, params] = match(segs);
  const frag = h('div.view');
  const ctx = { gen, query, params, alive: () => gen === view.gen, main, frag };
  try {
    if (!fn) {
      append(frag, [h('h1', { tabindex: '-1' }, 'Page not found'), h('p', link('#/', 'Back to the overview'))]);
    } else {
      await fn(frag, params, query, ctx);
    }
  } catch (e) {
    if (e.status === 401 || !ctx.alive()) return;
    clear(frag);
    if (e.status === 403) {
      frag.appendChild(h('h1', { tabindex: '-1' }, 'Not allowed'));
      frag.appendChild(errorNotice(e, 'Your role cannot open this page'));
      frag.appendChild(h('p', link('#/', 'Back to the overview')));
    } else {
      frag.appendChild(h('h1', { tabindex: '-1' }, 'Could not load this page'));
      frag.appendChild(errorNotice(e));
    }
  }
  if (!ctx.alive()) return;
  clear(main);
  main.appendChild(frag);
  const h1 = main.querySelector('h1');
  if (h1) {
    document.title = `${h1.textContent} · joey`;
    // Move focus to the heading when the page changed (not when the same page refreshes).
    if (render.last !== undefined && render.last !== hash) { h1.setAttribute('tabindex', '-1'); h1.focus(); }
  }
  render.last = hash;
  if (flash.pending) { toast(flash.pending); flash.pending = null; }
}
export function go(hash, message) { if (message) flash.pending = message; if (location.hash === hash) render(); else location.hash = hash; }
export const flash = { pending: null };

// ---------------------------------------------------------------- start

// Wide tables scroll sideways inside their own box on narrow screens (never the page):
// keyboard users must be able to reach and scroll them, so every data table is focusable.
function focusableTables() {
  const m = document.getElementById('main');
  const mark = () => { for (const t of m.querySelectorAll('table.data:not([tabindex])')) t.setAttribute('tabindex', '0'); };
  new MutationObserver(mark).observe(m, { childList: true, subtree: true });
  mark();
}

function start() {
  focusableTables();
  document.getElementById('nav-toggle').addEventListener('click', (e) => {
    const nav = document.getElementById('nav');
    const open = !nav.classList.contains('open');
    nav.classList.toggle('open', open);
    e.currentTarget.setAttribute('aria-expanded', String(open));
  });
  document.getElementById('skip-link').addEventListener('click', (e) => { e.preventDefault(); document.getElementById('main').focus(); });
  window.addEventListener('hashchange', render);
  for (const ev of ['pointerdown', 'keydown', 'wheel', 'touchstart']) window.addEventListener(ev, attended, { capture: true, passive: true });
  setInterval(() => { if (session.user && !unattended()) refreshStatus(); }, 5000);
  boot();
}
start();

// For the browser tests and for debugging from the console.
window.joeyUI = {
  version: 2,
  render,
  // how long without interaction until background refreshes pause (tests shorten it)
  setIdlePause(ms) { idle.pauseMs = ms; idle.last = Date.now(); },
};
