// app.js: joey's web UI. A single-page app with hash routing over the JSON API in
// docs/api.md. No framework. Every text that comes from the API (record data, config
// names, error messages) is inserted as text (textContent / text nodes), never parsed
// as HTML: this file never uses innerHTML, outerHTML, insertAdjacentHTML or
// document.write.
import { runsChart, chartLegend, runChanges } from './chart.js';
import { alertViews } from './alerts.js';
import { viewRepair, configErrorBody } from './repair.js';
import { schedulePicker, scheduleWords, fmtRun } from './schedule.js';
import { runBadge, triggerText, saveConfig, liveRunPanel, runAnnouncement, explanationView, confirmDialog, num } from './safety.js';
import { audienceViews } from './audiences.js';
import { recordViews } from './records.js';
import { editorViews } from './editors.js';

const API = '/api/v1';

// ---------------------------------------------------------------- DOM helpers

// h('tag.class', {attrs, on: {click}}, ...children): strings become text nodes.
function h(spec, props, ...kids) {
  const [tag, ...classes] = spec.split('.');
  const e = document.createElement(tag || 'div');
  if (classes.length) e.className = classes.join(' ');
  if (props && (typeof props !== 'object' || props instanceof Node || Array.isArray(props))) {
    kids.unshift(props);
    props = null;
  }
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'on') for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn);
    else if (k === 'class') e.className += (e.className ? ' ' : '') + v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k === 'value') e.value = v;
    else if (k === 'checked' || k === 'selected' || k === 'disabled' || k === 'hidden' || k === 'required' || k === 'readOnly' || k === 'multiple') e[k] = !!v;
    else if (k.startsWith('on')) throw new Error('use on: {} for event handlers');
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  append(e, kids);
  return e;
}
function append(e, kids) {
  for (const k of kids.flat(Infinity)) {
    if (k === null || k === undefined || k === false) continue;
    e.appendChild(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}
function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); return e; }
const enc = encodeURIComponent;
// A link to a route: segments are encoded here, so data never shapes the URL.
function route(...segs) { return '#/' + segs.map((s) => enc(String(s))).join('/'); }
function link(href, ...kids) { return h('a', { href }, ...kids); }

let idSeq = 0;
function uid(prefix) { idSeq += 1; return `${prefix}-${idSeq}`; }

// A labelled field: label, control, help text (linked with aria-describedby).
function field(labelText, control, help, opts = {}) {
  if (!control.id) control.id = uid('f');
  const kids = [h('label', { for: control.id }, labelText), control];
  if (help) {
    const hid = uid('help');
    control.setAttribute('aria-describedby', hid);
    kids.push(h('span.help', { id: hid }, help));
  }
  return h('div.field', { dataset: opts.field ? { field: opts.field } : undefined }, kids);
}

function fmtTime(ms) {
  if (!ms) return '—';
  return new Date(ms).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}
function fmtAgo(ms) {
  if (!ms) return '—';
  const s = Math.round((Date.now() - ms) / 1000);
  const fut = s < 0;
  const a = Math.abs(s);
  const t = a < 60 ? `${a} s` : a < 3600 ? `${Math.round(a / 60)} min` : a < 86400 ? `${Math.round(a / 3600)} h` : `${Math.round(a / 86400)} d`;
  return fut ? `in ${t}` : `${t} ago`;
}
function fmtDuration(ms) {
  if (ms === null || ms === undefined || ms < 0) return '—';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(ms / 60000);
  return `${m} min ${Math.round((ms % 60000) / 1000)} s`;
}
function fmtEvery(ms) {
  if (!ms) return '';
  const m = ms / 60000;
  if (m % 1440 === 0) return m === 1440 ? 'every day' : `every ${m / 1440} days`;
  if (m % 60 === 0) return m === 60 ? 'every hour' : `every ${m / 60} hours`;
  return m === 1 ? 'every minute' : `every ${m} minutes`;
}
function fmtValue(v) {
  if (v === null || v === undefined) return '∅';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}
function plural(n, one, many) { return `${n} ${n === 1 ? one : many || one + 's'}`; }
function slug(s) {
  return String(s || '').toLowerCase().replace(/[^a-z0-9_-]+/g, '_').replace(/_+/g, '_').replace(/^[_-]+|[_-]+$/g, '').slice(0, 100);
}
const ID_RE = /^[A-Za-z0-9_-]{1,191}$/;
const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
// A group membership of a destination as people say it: the subscription group's name.
function remoteName(dest, remote) {
  const m = ((dest && dest.memberships) || []).find((x) => x.remote === remote);
  if ((m && m.kind === 'subscription_group') || UUID_RE.test(remote)) return m && m.name ? `subscription group “${m.name}”` : `subscription group ${remote}`;
  return `“${remote}” in the groups attribute`;
}

function badge(text, kind) { return h('span.badge', { class: kind || 'neutral' }, text); }

function toast(text, ms = 5000) {
  const t = document.getElementById('toast');
  const d = h('div', text);
  t.appendChild(d);
  while (t.children.length > 2) t.firstChild.remove();
  setTimeout(() => d.remove(), ms);
}

// ---------------------------------------------------------------- API client

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

// Who is signed in (GET /api/v1/session), and the CSRF token every change made with
// the session cookie must send. Kept in memory only: the page and the browser's storage
// never hold a credential (the cookie is HttpOnly); a reload asks the server again.
const session = { user: null, csrf: '', setupPending: false };
const ROLE_RANK = { viewer: 1, editor: 2, admin: 3 };
const ROLE_HELP = {
  viewer: 'Viewers see everything (but the keys, the team and the audit log) and change nothing.',
  editor: 'Editors also change models, sources, properties, groups, destinations and schedules, preview plans and start runs.',
  admin: 'Admins also connect Braze apps (they hold the API keys), manage the team and read the audit log.',
};
// May the signed-in user do what needs role?
function can(role) { return !!session.user && (ROLE_RANK[session.user.role] || 0) >= ROLE_RANK[role]; }
function roleNote(role) { return `Needs the ${role} role; you are signed in as ${session.user ? session.user.role : 'nobody'}.`; }
// A control the signed-in user's role cannot use: disabled, the reason as its tooltip.
function allow(el, role) {
  if (!can(role)) {
    el.disabled = true;
    el.title = roleNote(role);
    el.dataset.needsRole = role;
  }
  return el;
}
// Above a form the user may look at but not save.
function roleNotice(role, what) {
  if (can(role)) return null;
  return h('div.notice.info', { dataset: { needsRole: role } },
    h('strong', 'Read only. '), `${what} needs the ${role} role; you are signed in as ${session.user ? session.user.role : 'nobody'}. An admin can give you another role.`);
}

// opts.auth: a sign-in route, whose 401 is an answer for its form (not "signed out").
async function api(method, path, body, opts = {}) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET' && session.csrf) headers['X-CSRF-Token'] = session.csrf;
  const init = { method, headers, cache: 'no-store', credentials: 'same-origin' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(API + path, init);
  } catch (e) {
    throw new ApiError(0, { error: 'joey is not reachable', detail: String(e && e.message ? e.message : e), hint: 'Is `joey serve` still running?' });
  }
  let data = null;
  const text = await res.text();
  if (text) {
    try { data = JSON.parse(text); } catch { data = { error: `unexpected answer (HTTP ${res.status})`, detail: text.slice(0, 300) }; }
  }
  if (res.status === 401 && !opts.auth) {
    sessionLost(data);
    throw new ApiError(401, data);
  }
  if (res.status === 403 && !opts.auth && data && /CSRF/.test(data.error || '') && !opts.retried) {
    // The cookie changed under this tab (a password change or a sign-in in another tab
    // of this browser): take the session's current token and try once more, but only
    // as the same user.
    const who = session.user && session.user.name;
    if (await resyncSession() && session.user.name === who) return api(method, path, body, { ...opts, retried: true });
    if (session.user && session.user.name !== who) {
      throw new ApiError(409, { error: `this browser is now signed in as “${session.user.name}”`, detail: 'You signed in as somebody else in another tab or window. Nothing was changed.', hint: 'Check the page, then try again.' });
    }
  }
  if (res.status === 403 && !opts.auth && data && data.error === 'not allowed for your role') resyncSession(); // the role may have changed
  if (!res.ok) {
    const err = new ApiError(res.status, data);
    const ra = Number(res.headers.get('Retry-After'));
    if (ra > 0) err.retryAfter = ra;
    throw err;
  }
  return data;
}
const get = (p) => api('GET', p);
const post = (p, b) => api('POST', p, b); // no body when b is undefined (routes such as /apps/{id}/test take none)
const put = (p, b) => api('PUT', p, b);
const del = (p) => api('DELETE', p);
// A paginated list answer, or a plain array: always an array of items.
const itemsOf = (x) => (Array.isArray(x) ? x : (x && x.items) || []);
// Runs as the UI shows them. A run that is going may be listed twice, once by the
// scheduler (id null, with trigger and progress) and once by the state store (with its
// id): they are merged into one row.
function runsOf(x) {
  const items = itemsOf(x).map((r) => ({ ...r, counts: r.counts || {} }));
  const sum = (r) => Object.values(r.counts).reduce((a, v) => a + (typeof v === 'number' ? v : 0), 0);
  const out = [];
  const live = items.filter((r) => (r.id === null || r.id === undefined) && r.status === 'running');
  for (const r of items) {
    if (live.includes(r)) {
      const twin = items.find((o) => o !== r && o.id !== null && o.id !== undefined && o.status === 'running' && o.destination === r.destination);
      if (twin) {
        twin.trigger = twin.trigger || r.trigger;
        if (twin.records_read === null || twin.records_read === undefined || (r.records_read || 0) > twin.records_read) twin.records_read = r.records_read;
        if (sum(r) > sum(twin)) twin.counts = r.counts;
        continue;
      }
    }
    out.push(r);
  }
  return out;
}

// An API error as a notice: error, detail, hint (all as text).
function errorNotice(err, title) {
  const b = (err && err.body) || {};
  return h('div.notice.error', { role: 'alert' },
    h('h2', title || 'Something went wrong'),
    h('p', h('strong', b.error || (err && err.message) || 'error'), err && err.status ? ` (HTTP ${err.status})` : ''),
    b.detail ? h('p.break', String(b.detail)) : null,
    b.hint ? h('p', h('strong', 'Hint: '), String(b.hint)) : null,
    Array.isArray(b.diagnostics) && b.diagnostics.length ? diagList(b.diagnostics) : null);
}

function diagLocation(d) {
  let s = d.file || '';
  if (s && d.line) s += `:${d.line}`;
  if (s && d.line && d.col) s += `:${d.col}`;
  return s;
}
// Diagnostics: the message and what to do; where in the files (file, line, field) is
// technical detail, behind a toggle.
function diagList(diags) {
  return h('ul.diagnostics', diags.map((d) => h('li',
    d.severity && d.severity !== 'error' ? [badge(d.severity, 'warn'), ' '] : null,
    h('strong', d.message || 'error'),
    d.hint ? h('span.diag-hint', h('em', 'What to do: '), d.hint) : null,
    diagLocation(d) || d.id || d.field ? h('details.small', h('summary', 'Technical detail'),
      h('span.help', [diagLocation(d), d.class || d.id ? ` ${d.class || ''} "${d.id || ''}"` : '', d.field ? ` ${d.field}` : ''].join(''))) : null)));
}

// ---------------------------------------------------------------- app state

const state = {
  catalog: null,
  models: [],
  status: null,
};
const FALLBACK_SYNC_MODES = [
  { id: 'sync', label: 'Sync', help: 'Create, update and delete Braze users to mirror the model.' },
  { id: 'additive', label: 'Additive', help: 'Create and update Braze users, never delete.' },
  { id: 'enrich', label: 'Enrich', help: 'Update only users that already exist in Braze.' },
];
const FALLBACK_BRAZE_FIELDS = ['email', 'first_name', 'last_name', 'phone', 'country', 'home_city', 'gender', 'dob', 'language', 'time_zone',
  'email_subscribe', 'push_subscribe', 'image_url', 'date_of_first_session', 'date_of_last_session', 'facebook', 'twitter',
  'marked_email_as_spam_at', 'email_open_tracking_disabled', 'email_click_tracking_disabled'].map((name) => ({ name, type: name === 'email' ? 'email' : name === 'phone' ? 'phoneNumber' : /tracking/.test(name) ? 'boolean' : 'string' }));

async function catalog() {
  if (!state.catalog) {
    try { state.catalog = await get('/catalog'); } catch (e) { if (e.status === 401) throw e; state.catalog = {}; }
  }
  const c = state.catalog || {};
  return {
    sync_modes: Array.isArray(c.sync_modes) && c.sync_modes.length ? c.sync_modes : FALLBACK_SYNC_MODES,
    braze_fields: Array.isArray(c.braze_fields) && c.braze_fields.length ? c.braze_fields : FALLBACK_BRAZE_FIELDS,
    app_types: Array.isArray(c.app_types) ? c.app_types : ['braze'],
    app_options: c.app_options || {},
  };
}
function syncModeLabel(id) {
  const m = ((state.catalog && state.catalog.sync_modes) || FALLBACK_SYNC_MODES).find((x) => x.id === id);
  return m ? m.label || id : id || '—';
}

// ---------------------------------------------------------------- sign-in, setup, sign-out

// The page frame without the app: no menu, no user; main is cleared for a form.
function signedOutFrame() {
  view.gen += 1; // stop whatever view was drawing
  stopTimers();
  document.body.classList.add('signed-out');
  clear(document.getElementById('nav'));
  const ub = document.getElementById('userbox');
  clear(ub).hidden = true;
  document.getElementById('config-banner').hidden = true;
  clear(document.getElementById('toast')); // nothing of the last user's stays on screen
  flash.pending = null;
  return clear(document.getElementById('main'));
}

function fmtWait(s) {
  if (!s) return 'a while';
  if (s < 90) return plural(Math.ceil(s), 'second');
  return `${Math.ceil(s / 60)} minutes`;
}

// An API error of a sign-in form as sentences a person understands.
function signInError(e) {
  const b = (e && e.body) || {};
  if (e.status === 401) return h('div.notice.error', { role: 'alert' }, h('strong', 'Wrong user name or password. '), 'Check both and try again. An admin can set a new password for you.');
  if (e.status === 429) {
    const m = /(\d+)\s*s\b/.exec(b.detail || '');
    const wait = e.retryAfter || (m ? Number(m[1]) : 0);
    return h('div.notice.error', { role: 'alert', dataset: { wait: String(wait || '') } },
      h('strong', 'Too many failed sign-ins. '), `For safety joey refuses further sign-ins for this user name or from this address for a while. Try again in ${fmtWait(wait)}.`,
      b.hint ? h('p', h('strong', 'Hint: '), String(b.hint)) : null);
  }
  return errorNotice(e, e.status === 400 || e.status === 403 ? 'That did not work' : 'Could not sign in');
}

// The sign-in page. opts.notice (with opts.kind: info, warn, error, ok) says why it shows.
// When it shows already, only the notice changes (what was typed stays).
function showLogin(opts = {}) {
  const shown = document.getElementById('login-form');
  if (shown && !document.getElementById('setup-form')) {
    const n = document.getElementById('login-notice');
    if (opts.notice) { n.className = `notice ${opts.kind || 'info'}`; n.textContent = opts.notice; n.hidden = false; }
    return;
  }
  const main = signedOutFrame();
  const user = h('input', { type: 'text', id: 'login-user', autocomplete: 'username', spellcheck: 'false', autocapitalize: 'none', required: true });
  const pw = h('input', { type: 'password', id: 'login-password', autocomplete: 'current-password', required: true });
  const out = h('div', { id: 'login-error', 'aria-live': 'assertive' });
  const btn = h('button.primary', { type: 'submit' }, 'Sign in');
  const form = h('form.form.card.login', {
    id: 'login-form',
    novalidate: true,
    on: {
      submit: async (e) => {
        e.preventDefault();
        clear(out);
        for (const el of [user, pw]) el.removeAttribute('aria-invalid');
        const empty = [user, pw].filter((el) => !el.value);
        if (empty.length) {
          empty.forEach((el) => el.setAttribute('aria-invalid', 'true'));
          out.appendChild(h('div.notice.error', { role: 'alert' }, 'Enter your user name and your password.'));
          empty[0].focus();
          return;
        }
        btn.disabled = true;
        try {
          const r = await api('POST', '/session', { user: user.value.trim(), password: pw.value }, { auth: true });
          pw.value = '';
          signedIn(r.user, r.csrf);
        } catch (err) {
          btn.disabled = false;
          pw.value = '';
          out.appendChild(signInError(err));
          pw.focus();
        }
      },
    },
  },
  h('h1', { tabindex: '-1' }, 'Sign in to joey'),
  h('p', { id: 'login-notice', class: `notice ${opts.kind || 'info'}`, role: 'status', hidden: !opts.notice }, opts.notice || ''),
  field('User name', user),
  field('Password', pw),
  h('div.actions', btn),
  out,
  h('p.small.muted', 'No account? An admin adds you under Team, or on the server: joey user add NAME --role viewer'));
  main.appendChild(form);
  document.title = 'Sign in · joey';
  user.focus();
}

// The one-time setup link (#setup=<token>): create the first admin.
function showSetup(token) {
  const main = signedOutFrame();
  const user = h('input', { type: 'text', id: 'setup-user', autocomplete: 'username', spellcheck: 'false', autocapitalize: 'none', required: true, value: 'admin' });
  const pw = h('input', { type: 'password', id: 'setup-password', autocomplete: 'new-password', required: true });
  const pw2 = h('input', { type: 'password', id: 'setup-password2', autocomplete: 'new-password', required: true });
  const out = h('div', { id: 'setup-error', 'aria-live': 'assertive' });
  const btn = h('button.primary', { type: 'submit' }, 'Create admin and sign in');
  const form = h('form.form.card.login', {
    id: 'setup-form',
    novalidate: true,
    on: {
      submit: async (e) => {
        e.preventDefault();
        clear(out);
        if (!user.value.trim()) { out.appendChild(h('div.notice.error', { role: 'alert' }, 'Choose a user name.')); user.focus(); return; }
        if (pw.value.length < 10) { out.appendChild(h('div.notice.error', { role: 'alert' }, 'The password needs at least 10 characters.')); pw.focus(); return; }
        if (pw.value !== pw2.value) { out.appendChild(h('div.notice.error', { role: 'alert' }, 'The two passwords differ.')); pw2.focus(); return; }
        btn.disabled = true;
        try {
          const r = await api('POST', '/setup', { token, user: user.value.trim(), password: pw.value }, { auth: true });
          flash.pending = `Welcome, ${r.user.name}. You are the first admin: add your colleagues under Team.`;
          history.replaceState(null, '', `${location.pathname}${location.search}#/`);
          signedIn(r.user, r.csrf);
        } catch (err) {
          btn.disabled = false;
          out.appendChild(errorNotice(err, err.status === 403 ? 'The setup link was refused' : 'The admin was not created'));
          if (err.status === 403 || err.status === 409) out.appendChild(h('p', h('button', { type: 'button', on: { click: () => showLogin() } }, 'Go to sign in')));
        }
      },
    },
  },
  h('h1', { tabindex: '-1' }, 'Create the first admin'),
  h('p', 'This joey has no accounts yet. The setup link joey serve printed at its start creates the first admin; it works once. Admins add everybody else under Team.'),
  field('User name', user, '1 to 64 letters, digits, _ . @ or -.'),
  field('Password', pw, 'At least 10 characters.'),
  field('Repeat the password', pw2),
  h('div.actions', btn),
  out);
  main.appendChild(form);
  document.title = 'Create the first admin · joey';
  user.focus();
}

// A request came back 401: the session is gone (expired, signed out elsewhere, or the
// password changed). Show the sign-in page; the route stays in the URL, so signing in
// again returns to it.
function sessionLost(data) {
  const was = !!session.user;
  session.user = null;
  session.csrf = '';
  const expired = data && /session has ended/i.test(data.error || '');
  showLogin(expired ? { notice: 'Your session has ended. Sign in again to continue where you were.', kind: 'warn' }
    : was ? { notice: 'You are no longer signed in. Sign in again to continue where you were.', kind: 'warn' } : {});
}

// Ask the server who this browser is now; the header and the menu follow a change.
// false: nobody (the sign-in page shows).
async function resyncSession() {
  let s;
  try { s = await api('GET', '/session', undefined, { auth: true }); } catch { return false; }
  if (!s.user) { sessionLost({ error: s.session_expired ? 'your session has ended' : '' }); return false; }
  const changed = !session.user || s.user.name !== session.user.name || s.user.role !== session.user.role;
  session.user = s.user;
  session.csrf = s.csrf || '';
  if (changed) { drawUserBox(); refreshNav(parseHash().hash); }
  return true;
}

function signedIn(user, csrf) {
  session.user = user;
  session.csrf = csrf || '';
  state.catalog = null;
  document.body.classList.remove('signed-out');
  drawUserBox();
  render.last = undefined;
  refreshStatus();
  render();
}

function drawUserBox() {
  const user = session.user;
  const ub = document.getElementById('userbox');
  clear(ub).hidden = false;
  append(ub, [
    h('a', { href: '#/account', id: 'user-link', title: 'Your account: password and API tokens' },
      h('span.visually-hidden', 'Signed in as '), h('strong', { id: 'user-name' }, user.name), ' ', badge(user.role, 'info')),
    h('button.small', { type: 'button', id: 'sign-out', on: { click: signOut } }, 'Sign out'),
  ]);
}

async function signOut() {
  try { await api('DELETE', '/session', undefined, { auth: true }); } catch { /* gone already: signed out anyway */ }
  session.user = null;
  session.csrf = '';
  state.status = null;
  state.catalog = null;
  history.replaceState(null, '', `${location.pathname}${location.search}#/`);
  showLogin({ notice: 'You have signed out.', kind: 'ok' });
}

// "#setup=<token>" in the address: take it, and take it out of the address bar and history.
function takeSetupToken() {
  const m = /^#setup=([^&]*)/.exec(location.hash);
  if (!m) return '';
  history.replaceState(null, '', `${location.pathname}${location.search}`);
  try { return decodeURIComponent(m[1]); } catch { return m[1]; }
}

async function boot() {
  const setup = takeSetupToken();
  let s;
  try {
    s = await api('GET', '/session', undefined, { auth: true });
  } catch (e) {
    const main = signedOutFrame();
    main.appendChild(h('h1', { tabindex: '-1' }, 'joey is not reachable'));
    main.appendChild(errorNotice(e));
    main.appendChild(h('p', h('button', { type: 'button', on: { click: boot } }, 'Try again')));
    return;
  }
  session.setupPending = !!s.setup_pending;
  if (s.user) {
    if (setup) flash.pending = 'You are signed in already: the setup link is not needed.';
    signedIn(s.user, s.csrf);
  } else if (setup && s.setup_pending) {
    showSetup(setup);
  } else if (setup) {
    showLogin({ notice: 'This setup link is no longer valid: it works once, and only for 30 minutes after the first start of joey serve. Sign in, or ask an admin for an account.', kind: 'error' });
  } else if (s.session_expired) {
    showLogin({ notice: 'Your session has ended. Sign in again to continue.', kind: 'warn' });
  } else if (s.setup_pending) {
    showLogin({ notice: 'joey has no accounts yet. Open the setup link joey serve printed when it started, or create an admin on the server: joey user add NAME --role admin', kind: 'info' });
  } else {
    showLogin();
  }
}

// ---------------------------------------------------------------- status banner

async function refreshStatus() {
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

async function refreshNav(currentHash) {
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

const view = { gen: 0, timers: [], paused: false };

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
function stopTimers() { for (const t of view.timers) clearTimeout(t); view.timers = []; }
// every(ms, fn): call fn repeatedly while the current view is shown; fn returns the next delay or undefined.
function every(ms, fn) {
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

function parseHash() {
  let hsh = location.hash || '#/';
  if (!hsh.startsWith('#/')) hsh = '#/';
  const [p, q] = hsh.slice(2).split('?');
  const segs = p.split('/').filter(Boolean).map((s) => { try { return decodeURIComponent(s); } catch { return s; } });
  return { segs, query: new URLSearchParams(q || ''), hash: hsh };
}

// The Alerts pages (alerts.js) use this file's helpers.
const alertsUI = alertViews({ h, append, clear, route, link, field, fmtTime, fmtAgo, plural, slug, ID_RE, badge, can, allow,
  roleNotice, get, post, put, itemsOf, errorNotice, pageHeader, table, showDiagnostics, removeObject, go, enc, every,
  configObjectBody, destinationsById });
// The Audiences and Records pages (audiences.js, records.js) too.
const audiencesUI = audienceViews({ h, append, clear, route, link, field, fmtAgo, plural, slug, ID_RE, badge, can, allow, roleNotice,
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
  [['data', 'models', 'new'], (root, _p, ...a) => editorsUI.viewModelForm(root, {}, ...a)],
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

async function render() {
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
function go(hash, message) { if (message) flash.pending = message; if (location.hash === hash) render(); else location.hash = hash; }
const flash = { pending: null };

// ---------------------------------------------------------------- shared data

async function destinationsById() {
  const ds = itemsOf(await get('/destinations'));
  return Object.fromEntries(ds.map((d) => [d.id, d]));
}
function destName(map, id) { return map[id] ? map[id].name || id : id; }
function propLabel(p) { return `${p.key} (${p.type})`; }
function primaryKeyProp(model) {
  const props = model.properties || [];
  return props.find((p) => p.primary_key) || props.find((p) => p.id === model.primary_key || p.key === model.primary_key) || null;
}
function pageHeader(title, subtitle, ...actions) {
  return [h('h1', { tabindex: '-1' }, title), subtitle ? h('p.subtitle', subtitle) : null, actions.length ? h('div.actions', actions) : null];
}
function table(headers, rows, opts = {}) {
  if (!rows.length) return h('p.empty', opts.empty || 'Nothing yet.');
  return h('table.data', { class: opts.class },
    opts.caption ? h('caption', opts.caption) : null,
    h('thead', h('tr', headers.map((x) => {
      const num = typeof x === 'string' && x.startsWith('#');
      return h('th', { scope: 'col', class: num ? 'num' : undefined }, num ? x.slice(1) : x);
    }))),
    h('tbody', rows.map((r) => h('tr', { dataset: r.dataset }, (r.cells || r).map((c, i) => {
      const hd = headers[i];
      const num = typeof hd === 'string' && hd.startsWith('#');
      return h(i === 0 && opts.rowHeader ? 'th' : 'td', { class: num ? 'num' : undefined, scope: i === 0 && opts.rowHeader ? 'row' : undefined }, c);
    })))));
}

async function runNow(body, btn) {
  if (btn) btn.disabled = true;
  try {
    const r = await post('/runs', body);
    const started = (r && r.started) || [];
    const queued = (r && r.queued) || [];
    const parts = [];
    const names = await destinationsById().catch(() => ({}));
    const nm = (ids) => ids.map((x) => destName(names, x)).join(', ');
    if (started.length) parts.push(`started ${nm(started)}`);
    if (queued.length) parts.push(`queued ${nm(queued)} (already running)`);
    go('#/runs', `Run requested: ${parts.join('; ') || 'nothing to run'}.`);
  } catch (e) {
    if (btn) btn.disabled = false;
    if (e.status === 409) toast(`A run is already going: ${e.body.detail || e.message}`);
    else toast(`Run failed to start: ${e.message}${e.body && e.body.hint ? ` — ${e.body.hint}` : ''}`, 8000);
  }
}

// ---------------------------------------------------------------- overview

async function viewOverview(root, _p, _q, ctx) {
  await refreshStatus();
  const [models, apps, runsRes, errs, dests] = await Promise.all([
    get('/models'), get('/apps'), get('/runs?limit=100'), get('/errors?limit=100').catch(() => ({ items: [] })), get('/destinations'),
  ]);
  const runs = runsOf(runsRes);
  const seenRows = new Set();
  const errors = itemsOf(errs).filter((e) => {
    const k = `${e.destination}\u0000${e.key}`;
    const first = !seenRows.has(k);
    seenRows.add(k);
    return first && errorState(e, runs).failing;
  });
  const brazeApps = itemsOf(apps).filter((a) => a.type === 'braze');
  const dmap = Object.fromEntries(itemsOf(dests).map((d) => [d.id, d]));
  const day = Date.now() - 86400000;
  const recent = runs.filter((r) => r.started_at && r.started_at >= day);
  append(root, pageHeader('Overview', 'What joey keeps in sync with Braze, and how the last runs went.'));
  if (state.status && state.status.repair) {
    root.appendChild(h('div.notice.error', h('h2', 'joey is in repair mode'), h('p', 'Its configuration could not be loaded when it started, so nothing is shown or run until the files are fixed.'),
      can('editor') ? link('#/repair', 'Repair the configuration') : h('p', 'Ask an editor or an admin to fix it.')));
    return;
  }
  if (!brazeApps.length) {
    root.appendChild(h('div.notice.info', h('h2', 'Start here: connect Braze'),
      h('p', 'joey needs a Braze app (an API key and a REST endpoint) before it can send anything.'),
      can('admin') ? link('#/apps/new', 'Connect a Braze app') : h('p', 'An admin connects it (apps hold the API keys).')));
  } else if (!itemsOf(dests).length && models.length) {
    root.appendChild(h('div.notice.info', h('h2', 'Next: add a Braze destination'),
      h('p', 'Pick a model and choose which of its properties go to Braze.'),
      can('editor') ? link(route('models', models[0].id, 'destinations', 'new'), `Add a destination to ${models[0].name || models[0].id}`) : h('p', 'An editor or an admin adds it.')));
  }
  const stat = (num, label, href) => h('div.stat', h('span.num', String(num)), href ? link(href, h('span.label', label)) : h('span.label', label));
  root.appendChild(h('div.stats',
    stat(models.length, models.length === 1 ? 'model' : 'models'),
    stat(itemsOf(dests).length, 'Braze destinations'),
    stat(brazeApps.length, 'Braze apps', '#/apps'),
    stat(recent.filter((r) => r.status === 'success').length, 'successful runs (24 h)', '#/runs'),
    stat(recent.filter((r) => r.status === 'completed_with_failures').length, 'runs with failed rows (24 h)', '#/runs'),
    stat(recent.filter((r) => r.status === 'failed').length, 'failed runs (24 h)', '#/runs'),
    stat(errs && errs.next && errors.length ? `${errors.length}+` : errors.length, 'failed rows', '#/errors')));
  const running = runs.filter((r) => r.status === 'running' || r.status === 'queued');
  if (running.length) root.appendChild(h('p.notice.info', `${plural(running.length, 'run')} going now. `, link('#/runs', 'Follow them')));
  // a run the mass-delete guard held, still the latest of its destination: someone must decide
  const latest = new Map();
  for (const r of runs) if (r.id !== null && r.id !== undefined && !latest.has(r.destination)) latest.set(r.destination, r);
  for (const r of latest.values()) {
    if (!r.held) continue;
    root.appendChild(h('div.notice.warn', { dataset: { heldRun: String(r.id) } }, h('h2', `Waiting for approval: ${destName(dmap, r.destination)}`),
      h('p', `A run would ${r.held.action} ${num(r.held.count)} of ${num(r.held.of)} Braze users, more than this destination allows, so it stopped. An editor or an admin decides.`),
      link(route('runs', r.id), 'Review the held run')));
  }
  root.appendChild(h('h2', 'Runs over time'));
  root.appendChild(h('div.chart', runsChart(runs, { label: (r) => runLabel(r, dmap), onSelect: (r) => go(route('runs', r.id)) }), chartLegend()));
  root.appendChild(h('h2', 'Models'));
  root.appendChild(table(['Model', 'Type', 'Primary key', '#Sources', '#Properties', '#Groups', '#Destinations', '#Schedules'],
    models.map((m) => [link(route('models', m.id), m.name || m.id), m.type || '', m.primary_key || '—',
      (m.counts || {}).sources ?? '', (m.counts || {}).properties ?? '', (m.counts || {}).groups ?? '', (m.counts || {}).destinations ?? '', (m.counts || {}).schedules ?? '']),
    { empty: 'No models in the config directory.' }));
  root.appendChild(h('h2', 'Latest runs'));
  root.appendChild(runsTable(runs.slice(0, 8), dmap));
  if (running.length) every(1000, async () => { if (ctx.alive()) render(); return 100000; });
}
function runStatusText(r) { return runBadge(r).textContent; }
function runLabel(r, dmap) {
  const c = r.counts || {};
  return `Run ${r.id ?? '(queued)'} of ${destName(dmap, r.destination)}: ${runStatusText(r)}, ${fmtTime(r.started_at)} — ${c.created || 0} created, ${c.updated || 0} updated, ${c.deleted || 0} deleted, ${c.failed || 0} failed`;
}

// ---------------------------------------------------------------- model

function scheduleText(s) {
  if (!s) return 'only when someone presses Run now';
  return scheduleWords(s);
}
// A group rule in words: "ltv is at least 100", "last_login_at is more than 30 days ago".
const OP_WORDS = {
  eq: 'is', ne: 'is not', gt: 'is more than', gte: 'is at least', lt: 'is less than', lte: 'is at most',
  exists: 'has a value', notExists: 'has no value', like: 'matches', notLike: 'does not match', iLike: 'matches (any case)', notILike: 'does not match (any case)',
  startsWith: 'starts with', endsWith: 'ends with', includes: 'contains', contains: 'contains', doesNotContain: 'does not contain', doesNotInclude: 'does not contain',
  relative_gt: 'is more than', relative_lt: 'is less than', relative_gte: 'is at least', relative_lte: 'is at most', in: 'is one of', notIn: 'is not one of',
};
function ruleText(r) {
  const op = r.operator || r.op || '';
  const key = r.key || r.propertyId || r.property || '';
  const n = r.relativeMatchNumber ?? r.relative_match_number;
  if (n !== undefined && n !== null && n !== '') {
    const unit = String(r.relativeMatchUnit || r.relative_match_unit || 'days');
    const dir = (r.relativeMatchDirection || r.relative_match_direction) === 'add' ? 'from now' : 'ago';
    return `${key} ${OP_WORDS[op] || op} ${n} ${unit} ${dir}`.replace(/\s+/g, ' ').trim();
  }
  const m = r.match !== undefined && r.match !== null ? ` ${fmtValue(r.match)}` : '';
  return `${key} ${OP_WORDS[op] || op}${m}`.trim();
}

async function viewModel(root, { model: id }, _q, ctx) {
  const [m, runsRes, apps] = await Promise.all([get(`/models/${enc(id)}`), get('/runs?limit=100'), get('/apps')]);
  const runs = runsOf(runsRes);
  const appMap = Object.fromEntries(itemsOf(apps).map((a) => [a.id, a]));
  const dests = m.destinations || [];
  const dmap = Object.fromEntries(dests.map((d) => [d.id, d]));
  const groupsById = Object.fromEntries((m.groups || []).map((g) => [g.id, g]));
  const pk = primaryKeyProp(m);
  const runBtn = allow(h('button.primary', { type: 'button', disabled: !dests.length, on: { click: (e) => runNow({ model: id }, e.currentTarget) } }, 'Run now'), 'editor');
  const edit = can('editor');
  append(root, pageHeader(m.name || m.id, `Model “${m.id}” · ${m.type || 'profile'} · primary key ${pk ? pk.key : m.primary_key || '—'}`,
    edit ? link(route('models', id, 'destinations', 'new'), 'Add Braze destination') : null,
    edit && dests.length ? link(route('models', id, 'plan'), 'Preview plan') : null,
    runBtn));
  const modelRuns = runs.filter((r) => dests.some((d) => d.id === r.destination));
  const live = modelRuns.filter((r) => r.status === 'running' || r.status === 'queued');
  if (live.length) {
    root.appendChild(h('div.notice.info', `${plural(live.length, 'run')} going for this model. `, link('#/runs', 'Follow the run')));
    every(1000, () => { render(); return 60000; });
  }
  const neverRan = dests.filter((d) => !modelRuns.some((r) => r.destination === d.id));
  if (neverRan.length) {
    root.appendChild(h('div.notice.info', h('h2', 'Before the first run'),
      h('p', `${neverRan.map((d) => d.name || d.id).join(', ')} never ran. Preview what would be created, updated and deleted in Braze before you press Run now.`),
      edit ? link(route('models', id, 'plan', neverRan.length === 1 ? neverRan[0].id : ''), 'Preview the plan') : null));
  }

  // destinations
  root.appendChild(h('h2', { id: 'destinations' }, 'Braze destinations'));
  root.appendChild(table(['Name', 'Braze app', 'Sync mode', 'Who is sent', 'Fields', 'Last run', 'Actions'],
    dests.map((d) => {
      const last = modelRuns.find((r) => r.destination === d.id && r.status !== 'queued');
      const who = d.collection === 'group' ? `group: ${(groupsById[d.group] || {}).name || d.group}` : d.collection === 'model' ? 'everyone in the model' : 'nobody (paused)';
      return [link(route('models', id, 'destinations', d.id), d.name || d.id),
        appMap[d.app] ? appMap[d.app].name || d.app : d.app || '—',
        syncModeLabel(d.sync_mode), who,
        String(Object.keys(d.mapping || {}).length),
        last ? [runBadge(last), ' ', h('span.small', fmtAgo(last.started_at))] : h('span.muted', 'never'),
        h('span.inline',
          link(route('models', id, 'destinations', d.id), edit ? 'Edit' : 'View', h('span.visually-hidden', ` ${d.name || d.id}`)),
          edit ? link(route('models', id, 'plan', d.id), 'Plan', h('span.visually-hidden', ` ${d.name || d.id}`)) : null,
          allow(h('button.small', { type: 'button', on: { click: (e) => runNow({ destination: d.id }, e.currentTarget) } }, 'Run', h('span.visually-hidden', ` ${d.name || d.id}`)), 'editor'))];
    }), { empty: 'No Braze destination yet. Add one to start sending this model to Braze.' }));

  // sources + schedules
  root.appendChild(h('h2', { id: 'sources' }, 'Sources and schedules'));
  const schedBySource = Object.fromEntries((m.schedules || []).map((s) => [s.source, s]));
  root.appendChild(table(['Source', 'Type', 'Reads', 'Key column', 'Schedule', 'Next runs', ''],
    (m.sources || []).slice().sort((a, b) => (b.primary ? 1 : 0) - (a.primary ? 1 : 0)).map((s) => {
      const sch = schedBySource[s.id];
      const o = s.options || {};
      return [h('span', s.name || s.id, s.primary ? [' ', badge('primary', 'info')] : null), s.type || '',
        o.table ? `table ${o.table}` : o.query ? h('code.break', String(o.query)) : '—',
        Object.keys(s.mapping || {}).map((c) => `${c} → ${s.mapping[c]}`).join(', ') || '—',
        !s.primary && !sch ? '—' : [scheduleText(sch), sch && sch.incremental ? h('span.help', `incremental on ${sch.column || '?'}`) : null],
        sch && (sch.next_runs || []).length ? h('span.small', sch.next_runs.map(fmtRun).join('; ')) : sch && sch.next_run_at ? fmtRun(sch.next_run_at) : '—',
        !s.primary && !sch ? h('span.small.muted', 'read with the primary source')
          : edit ? link(route('models', id, 'schedules', s.id), sch ? 'Change schedule' : 'Set schedule', h('span.visually-hidden', ` of ${s.name || s.id}`))
            : sch ? link(route('models', id, 'schedules', s.id), 'View schedule', h('span.visually-hidden', ` of ${s.name || s.id}`)) : h('span.small.muted', 'an editor sets it')];
    }), { empty: 'No sources.' }));

  // properties
  root.appendChild(h('h2', { id: 'properties' }, 'Properties'));
  const srcName = Object.fromEntries((m.sources || []).map((s) => [s.id, s.name || s.id]));
  root.appendChild(table(['Key', 'Type', 'Source', 'Read from', 'Flags'],
    (m.properties || []).map((p) => {
      const o = p.options || {};
      const flags = [];
      if (p.primary_key) flags.push(badge('primary key', 'info'));
      if (p.unique) flags.push(badge('unique'));
      if (p.is_array) flags.push(badge('array'));
      if ((p.filters || []).length) flags.push(badge(`${p.filters.length} filter(s)`));
      return [h('code', p.key), p.type, srcName[p.source] || p.source || '',
        o.column ? `${o.column}${o.aggregationMethod && o.aggregationMethod !== 'exact' ? ` (${o.aggregationMethod})` : ''}` : o.query ? 'query' : '—',
        flags.length ? flags.flatMap((f) => [f, ' ']) : ''];
    }), { empty: 'No properties.' }));

  // groups
  root.appendChild(h('h2', { id: 'groups' }, 'Groups'));
  root.appendChild(table(['Group', 'Rules', '#Members', 'Counted'],
    (m.groups || []).map((g) => [g.name || g.id,
      h('span.small', `${(g.match_type || 'all') === 'any' ? 'any of' : 'all of'}: ${(g.rules || []).map(ruleText).join('; ') || 'no rules'}`),
      g.member_count === null || g.member_count === undefined ? h('span.muted', 'not counted yet') : String(g.member_count),
      g.counted_at ? fmtAgo(g.counted_at) : '—']),
    { empty: 'No groups.' }));

  // schedules (as listed by the API)
  root.appendChild(h('h2', { id: 'schedules' }, 'Schedules'));
  root.appendChild(table(['Schedule', 'Source', 'When', 'Reads', 'Last run', 'Next runs'],
    (m.schedules || []).map((s) => [link(route('models', id, 'schedules', s.source), s.name || s.id), srcName[s.source] || s.source,
      scheduleText(s), s.incremental ? `changed rows (${s.column || '?'})` : 'everything', fmtAgo(s.last_run_at),
      (s.next_runs || []).length ? h('span.small', s.next_runs.map(fmtRun).join('; ')) : s.next_run_at ? fmtRun(s.next_run_at) : '—']),
    { empty: 'No schedule yet: this model runs only when someone presses Run now. Set a schedule on its primary source above.' }));

  root.appendChild(h('h2', 'Recent runs of this model'));
  root.appendChild(runsTable(modelRuns.slice(0, 10), dmap));
  void ctx;
}

// ---------------------------------------------------------------- plan preview

async function viewPlan(root, { model: id, dest }, _q, ctx) {
  const m = await get(`/models/${enc(id)}`);
  const dests = m.destinations || [];
  const dmap = Object.fromEntries(dests.map((d) => [d.id, d]));
  append(root, pageHeader(`Plan: ${dest ? destName(dmap, dest) : m.name || m.id}`,
    'What the next run would send to Braze. Nothing is sent and nothing is written.'));
  if (!can('editor')) root.appendChild(roleNotice('editor', 'Previewing a plan (it reads the sources and asks Braze)'));
  const picker = h('select', { id: 'plan-dest' },
    h('option', { value: '' }, 'All destinations of this model'),
    dests.map((d) => h('option', { value: d.id, selected: d.id === dest }, d.name || d.id)));
  const full = h('input', { type: 'checkbox', id: 'plan-full' });
  const out = h('div', { 'aria-live': 'polite', id: 'plan-result' });
  const runBtn = allow(h('button.primary', { type: 'button', on: { click: (e) => runNow(picker.value ? { destination: picker.value } : { model: id }, e.currentTarget) } }, 'Run now'), 'editor');
  const load = async () => {
    clear(out).appendChild(h('p.muted', 'Reading the sources and comparing with what Braze holds…'));
    const body = {};
    if (picker.value) body.destination = picker.value;
    if (full.checked) body.full = true;
    let plan;
    try {
      try {
        plan = await post('/plan', { ...body, details: true });
      } catch (e) {
        // A server that does not take "details" answers 400 naming it: ask without.
        if (e.status !== 400) throw e;
        plan = await post('/plan', body);
      }
    } catch (e) {
      if (!ctx.alive()) return;
      clear(out).appendChild(errorNotice(e, 'The plan could not be made'));
      return;
    }
    if (!ctx.alive()) return;
    clear(out);
    renderPlan(out, plan, dests.map((d) => d.id), dmap);
  };
  picker.addEventListener('change', () => { history.replaceState(null, '', picker.value ? route('models', id, 'plan', picker.value) : route('models', id, 'plan')); load(); });
  full.addEventListener('change', load);
  root.appendChild(h('div.actions',
    h('label', { for: 'plan-dest' }, 'Destination'), picker,
    h('span.inline', full, h('label', { for: 'plan-full' }, 'Full run (ignore the incremental mark)')),
    h('button', { type: 'button', on: { click: load } }, 'Refresh'), runBtn));
  root.appendChild(out);
  load();
}

function renderPlan(out, plan, destIds, dmap) {
  const list = (plan.destinations || []).filter((d) => destIds.includes(d.id));
  for (const md of plan.models || []) {
    out.appendChild(h('p', `Model “${md.id}”: ${plural(md.records ?? 0, 'record')} read`,
      md.invalid_values ? `, ${plural(md.invalid_values, 'value')} that do not fit their property's type` : '',
      md.orphans ? `, ${plural(md.orphans, 'orphan row')}` : '',
      md.incremental_since !== undefined && md.incremental_since !== null ? `, incremental since ${fmtValue(md.incremental_since)}` : '', '.'));
  }
  if (plan.guard_tripped) out.appendChild(h('div.notice.error', { role: 'alert' }, h('strong', 'Mass-delete guard: '), 'a run would delete more than the allowed share of Braze users, so it will stop before deleting and wait for an admin or an editor to approve it on the Runs page. Check the source first: an empty or cut-off table looks like this.'));
  if (!list.length) { out.appendChild(h('p.empty', 'No destination to plan for.')); return; }
  for (const d of list) {
    const c = d.counts || {};
    const card = h('section.card', { 'aria-labelledby': `plan-${slug(d.id)}`, dataset: { destination: d.id } });
    card.appendChild(h('h2', { id: `plan-${slug(d.id)}` }, destName(dmap, d.id), ' ', h('span.muted.small', `(${syncModeLabel(d.sync_mode)})`)));
    card.appendChild(h('div.stats',
      ['create', 'update', 'delete', 'unsubscribe', 'unchanged'].map((k) => h('div.stat', { dataset: { count: k } }, h('span.num', String(c[k] ?? 0)), h('span.label', { create: 'to create', update: 'to update', delete: 'to delete', unsubscribe: 'to unsubscribe', unchanged: 'unchanged' }[k]))),
      h('div.stat', h('span.num', String(d.data_points ?? 0)), h('span.label', 'Braze data points'))));
    const extra = [];
    if (d.subscribes) extra.push(`${plural(d.subscribes, 'subscription change')} to subscribe`);
    if (d.unsubscribes) extra.push(`${d.unsubscribes} to unsubscribe from subscription groups`);
    if (d.retries) extra.push(`${plural(d.retries, 'failed row')} to retry`);
    if (d.state_records !== undefined) extra.push(`${plural(d.state_records, 'record')} already confirmed in Braze`);
    if (extra.length) card.appendChild(h('p.small.muted', extra.join(' · ')));
    if (d.guard && d.guard.tripped) card.appendChild(h('p.notice.error', `Mass-delete guard: ${d.guard.deletes} deletes exceed ${d.guard.max_delete_percent}% of the users. The run would stop.`));
    if (Array.isArray(d.records)) {
      const changed = d.records.filter((r) => r.action !== 'unchanged');
      const sample = changed.slice(0, 25);
      card.appendChild(table(['Record', 'Action', 'Changes', 'Groups'],
        sample.map((r) => [link(route('records', d.model || '', r.key), String(r.key)), badge(r.action, r.action),
          h('ul.small', Object.entries(r.changes || {}).map(([f, ch]) => h('li', h('code', f), ': ', fmtValue(ch && ch.old), ' → ', fmtValue(ch && ch.new)))),
          r.groups ? h('span.small', [(r.groups.add || []).length ? `joins ${r.groups.add.map((g) => remoteName(dmap[d.id], g)).join(', ')}` : '', (r.groups.remove || []).length ? ` leaves ${r.groups.remove.map((g) => remoteName(dmap[d.id], g)).join(', ')}` : ''].join('').trim() || '—') : '—']),
        { caption: changed.length > sample.length ? `A sample: ${sample.length} of ${changed.length} changed records` : `${plural(changed.length, 'changed record')}`, empty: 'Nothing would change.' }));
    } else {
      card.appendChild(h('p.small.muted', 'This server does not list the individual records of a plan (only the counts).'));
    }
    out.appendChild(card);
  }
}

// ---------------------------------------------------------------- runs

function runsTable(runs, dmap, opts = {}) {
  return table(['Run', 'Destination', 'Status', 'Trigger', 'Started', 'Took', '#Read', '#Created', '#Updated', '#Deleted', '#Failed'],
    runs.map((r) => ({
      dataset: { run: r.id ?? '', status: r.status || '', destination: r.destination || '' },
      cells: [r.id !== null && r.id !== undefined ? link(route('runs', r.id), `#${r.id}`) : h('span.muted', 'queued'),
        destName(dmap, r.destination), runBadge(r), triggerText(r.trigger),
        h('span.nowrap', { title: fmtTime(r.started_at) }, fmtAgo(r.started_at)),
        r.finished_at && r.started_at ? fmtDuration(r.finished_at - r.started_at) : r.started_at ? `${fmtDuration(Date.now() - r.started_at)}…` : '—',
        String(r.records_read ?? '—'),
        String((r.counts || {}).created ?? 0), String((r.counts || {}).updated ?? 0), String((r.counts || {}).deleted ?? 0),
        (r.counts || {}).failed ? link(`#/errors?run=${enc(r.id)}`, String(r.counts.failed)) : '0'],
    })), { empty: opts.empty || 'No runs yet. Press “Run now” on a model (preview its plan first), or give it a schedule.' });
}

// The records the last finished run of a destination read: what a run now will read, about.
function expectedRecords(runs, dest) {
  // the last finished run's records read; the run itself may have read more already
  const last = runs.find((x) => x.destination === dest && x.finished_at && x.records_read);
  const now = runs.find((x) => x.destination === dest && !x.finished_at);
  return Math.max(last ? last.records_read : 0, (now && now.records_read) || 0);
}

async function viewRuns(root, _p, query, ctx) {
  const destFilter = query.get('destination') || '';
  const before = query.get('before') || '';
  const dmap = await destinationsById();
  append(root, pageHeader('Runs', 'Every run of every Braze destination, newest first. The page follows running runs live.'));
  const picker = h('select', { id: 'runs-dest' }, h('option', { value: '' }, 'All destinations'),
    Object.values(dmap).map((d) => h('option', { value: d.id, selected: d.id === destFilter }, d.name || d.id)));
  picker.addEventListener('change', () => go(picker.value ? `#/runs?destination=${enc(picker.value)}` : '#/runs'));
  root.appendChild(h('div.actions', h('label', { for: 'runs-dest' }, 'Destination'), picker,
    allow(h('button.primary', { type: 'button', disabled: !Object.keys(dmap).length, on: { click: (e) => runNow(destFilter ? { destination: destFilter } : {}, e.currentTarget) } }, destFilter ? 'Run this destination now' : 'Run everything now'), 'editor')));
  const liveBox = h('section.live', { 'aria-labelledby': 'live-h', hidden: true, id: 'live' });
  // runs followed on this page stay in the panel, as a summary, once they end
  const followed = new Map();
  const announcer = h('p.visually-hidden', { 'aria-live': 'polite', id: 'live-announce' });
  let lastSaid = '';
  let lastSaidAt = 0;
  const chartBox = h('div.chart');
  const tableBox = h('div', { id: 'runs-table' });
  const pager = h('div.pager');
  root.appendChild(liveBox);
  root.appendChild(announcer);
  root.appendChild(h('h2', 'Runs over time'));
  root.appendChild(chartBox);
  root.appendChild(h('h2', 'History'));
  root.appendChild(tableBox);
  root.appendChild(pager);
  const started = Date.now();
  const refresh = async () => {
    const qs = new URLSearchParams({ limit: '50' });
    if (destFilter) qs.set('destination', destFilter);
    if (before) qs.set('before', before);
    const res = await get(`/runs?${qs}`);
    if (!ctx.alive()) return undefined;
    const runs = runsOf(res);
    const active = runs.filter((r) => r.status === 'running' || r.status === 'queued');
    for (const r of active) followed.set(r.destination, r);
    for (const [d, old] of followed) {
      if (active.some((r) => r.destination === d)) continue;
      // it ended: the newest run of the destination, finished, replaces it (once known)
      const fin = runs.find((r) => r.destination === d && r.finished_at && (old.id === null || old.id === undefined || r.id >= old.id));
      if (fin) followed.set(d, fin);
    }
    clear(liveBox);
    liveBox.hidden = !followed.size;
    if (followed.size) {
      liveBox.appendChild(h('h2', { id: 'live-h' }, active.length ? `Running now (${active.length})` : 'Just finished'));
      for (const r of followed.values()) liveBox.appendChild(liveRunPanel(r, destName(dmap, r.destination), expectedRecords(runs, r.destination)));
      // announced when a run starts or ends, and every 15 s while it goes
      const said = [...followed.values()].map((r) => runAnnouncement(r, destName(dmap, r.destination))).join(' ');
      const phase = [...followed.values()].map((r) => r.status).join();
      if (said !== lastSaid && (phase !== announcer.dataset.phase || Date.now() - lastSaidAt > 15000)) {
        announcer.textContent = said;
        announcer.dataset.phase = phase;
        lastSaid = said;
        lastSaidAt = Date.now();
      }
    }
    clear(chartBox).appendChild(runsChart(runs, { label: (r) => runLabel(r, dmap), onSelect: (r) => go(route('runs', r.id)) }));
    chartBox.appendChild(chartLegend());
    clear(tableBox).appendChild(runsTable(runs, dmap));
    clear(pager);
    if (before) pager.appendChild(link(destFilter ? `#/runs?destination=${enc(destFilter)}` : '#/runs', 'Newest runs'));
    if (res && res.next !== null && res.next !== undefined) {
      const qs2 = new URLSearchParams({ before: String(res.next) });
      if (destFilter) qs2.set('destination', destFilter);
      pager.appendChild(link(`#/runs?${qs2}`, 'Older runs'));
    }
    // Every second while a run goes (or just after one was asked for); calmer otherwise.
    return active.length || Date.now() - started < 5000 ? 1000 : 10000;
  };
  const first = await refresh();
  every(first || 1000, refresh);
}

async function viewRun(root, { run: id }) {
  const [r, dmap] = await Promise.all([get(`/runs/${enc(id)}`), destinationsById()]);
  const c = r.counts || {};
  append(root, pageHeader(`Run #${r.id ?? id}`, `${destName(dmap, r.destination)} · ${triggerText(r.trigger)}`,
    link(`#/runs?destination=${enc(r.destination || '')}`, 'All runs of this destination'),
    c.failed ? link(`#/errors?run=${enc(r.id)}`, `See the ${plural(c.failed, 'failed row')}`) : null,
    null));
  root.appendChild(h('p', 'Status: ', runBadge(r)));
  if (r.held) root.appendChild(heldNotice(r, dmap));
  else if (r.status === 'completed_with_failures') root.appendChild(h('div.notice.warn', h('strong', `Completed with ${plural(r.failed_rows || c.failed || 0, 'failed row')}. `), 'Everything else went to Braze. ', link(`#/errors?run=${enc(r.id)}`, 'See why those rows failed and what to do')));
  else if (r.error && r.explanation) {
    root.appendChild(h('div.notice.error', h('h2', 'Why the run stopped'), h('p', h('strong', r.explanation.title)),
      h('p', h('em', 'What to do: '), r.explanation.action),
      h('details.small', h('summary', 'Technical detail'), h('code.break', String(r.error)))));
  } else if (r.error) root.appendChild(h('div.notice.error', h('strong', 'Error: '), fmtValue(r.error)));
  root.appendChild(table(['Field', 'Value'], [
    ['Started', fmtTime(r.started_at)], ['Finished', fmtTime(r.finished_at)],
    ['Took', r.finished_at && r.started_at ? fmtDuration(r.finished_at - r.started_at) : '—'],
    ['Records read', r.records_read === null || r.records_read === undefined ? 'not known (a run of an older joey)' : num(r.records_read)],
    ...Object.entries(c).map(([k, v]) => { const w = COUNT_WORDS[k] || k.replace(/_/g, ' '); return [w[0].toUpperCase() + w.slice(1), num(v)]; }),
    // the sync log (docs/config.md "Sync logs in the warehouse"), when the destination has one
    ...(r.sync_log ? [['Sync log', `${r.sync_log.status}: ${plural(r.sync_log.rows, 'row')} written` +
      (r.sync_log.pending ? `, ${r.sync_log.pending} waiting for a later run` : '') +
      (r.sync_log.error ? ` (${r.sync_log.error})` : '')]] : []),
  ], { class: 'kv', rowHeader: true }));
  if (r.status === 'running' || r.status === 'queued') every(1000, () => { render(); return 60000; });
}

const COUNT_WORDS = { requests: 'requests to Braze', retries: 'requests sent again', throttled: 'times Braze asked to slow down', data_points: 'data points billed', skipped: 'skipped', failed: 'failed rows' };

// A run the mass-delete guard held: what it held, who may approve, and the approval.
function heldNotice(r, dmap) {
  const x = r.held;
  const verb = x.action === 'unsubscribe' ? 'unsubscribe' : 'delete';
  const btn = allow(h('button.danger', {
    type: 'button', id: 'approve-run',
    on: {
      click: async (e) => {
        const b = e.currentTarget;
        const yes = await confirmDialog({
          title: `Approve: ${verb} ${num(x.count)} Braze users?`,
          body: [h('p', `The run of ${destName(dmap, r.destination)} will ${verb} ${num(x.count)} of the ${num(x.of)} Braze users it manages (${Math.round(x.percent)}%).`),
            h('p', 'Approve only if this is intended: an empty or cut-off source table looks the same. Your approval is recorded in the audit log.')],
          confirmLabel: `Approve and ${verb}`,
        });
        if (!yes) return;
        b.disabled = true;
        try {
          await post(`/runs/${enc(r.id)}/approve`);
          go('#/runs', 'Approved: the run goes ahead.');
        } catch (err) {
          b.disabled = false;
          toast(`Not approved: ${err.message}${err.body && err.body.hint ? ` — ${err.body.hint}` : ''}`, 10000);
        }
      },
    },
  }, `Approve and ${verb} ${num(x.count)} users`), 'editor');
  return h('div.notice.warn', { role: 'status', id: 'held-notice' },
    h('h2', 'Held by the mass-delete guard'),
    h('p', `This run would ${verb} ${num(x.count)} of the ${num(x.of)} Braze users it manages (${Math.round(x.percent)}%), more than the destination allows in one run, so it stopped before doing it. Creates and updates were sent.`),
    h('p', `Who may approve: ${(x.approvers || ['admin', 'editor']).slice().reverse().map((a) => `an ${a}`).join(' or ')}. ${can('editor') ? '' : `You are signed in as a ${session.user ? session.user.role : 'nobody'}: ask an editor or an admin.`}`),
    h('div.actions', btn));
}

async function retry(destination, btn) {
  if (btn) btn.disabled = true;
  try {
    await post('/retry', { destination });
    go('#/runs', `Retry started for ${destination}.`);
  } catch (e) {
    if (btn) btn.disabled = false;
    toast(`Retry failed: ${e.message}${e.body && e.body.hint ? ` — ${e.body.hint}` : ''}`, 8000);
  }
}

// ---------------------------------------------------------------- failed rows

// Is a ledger entry still failing? The server may say so (pending); otherwise a later
// successful run of the same destination with no failed row re-sent it (pending rows
// are retried by every run), so it is resolved.
function errorState(e, runs) {
  if (typeof e.pending === 'boolean') return e.pending ? { failing: true } : { failing: false };
  if (typeof e.resolved === 'boolean') return { failing: !e.resolved };
  const ok = runs.filter((r) => r.destination === e.destination && r.status === 'success' && !(r.counts || {}).failed
    && (r.started_at || 0) > (e.at || 0) && (e.run_id === null || e.run_id === undefined || r.id === null || r.id > e.run_id));
  if (!ok.length) return { failing: true };
  const first = ok.reduce((a, r) => (r.started_at < a.started_at ? r : a));
  return { failing: false, by: first.id };
}

async function viewErrors(root, _p, query) {
  const destFilter = query.get('destination') || '';
  const runFilter = query.get('run') || '';
  const before = query.get('before') || '';
  const showAll = query.get('all') === '1';
  const dmap = await destinationsById();
  const qs = new URLSearchParams({ limit: '50' });
  if (destFilter) qs.set('destination', destFilter);
  if (runFilter) qs.set('run', runFilter);
  if (before) qs.set('before', before);
  const [res, runsRes] = await Promise.all([get(`/errors?${qs}`), get('/runs?limit=200')]);
  const runs = runsOf(runsRes);
  const all = itemsOf(res).map((e) => ({ ...e, st: errorState(e, runs) }));
  // newest entry per (destination, key) decides; older entries of the same row are history
  const seen = new Set();
  for (const e of all) {
    const k = `${e.destination}\u0000${e.key}`;
    if (seen.has(k)) e.st = { failing: false, older: true };
    seen.add(k);
  }
  const failing = all.filter((e) => e.st.failing);
  const items = showAll ? all : failing;
  append(root, pageHeader('Failed rows', 'Records Braze refused, why, and what to do. The next run sends them again; Retry sends them now where that can help.'));
  const mkq = (o) => { const q = new URLSearchParams(); for (const [k, v] of Object.entries(o)) if (v) q.set(k, v); const t = q.toString(); return t ? `#/errors?${t}` : '#/errors'; };
  const picker = h('select', { id: 'errors-dest' }, h('option', { value: '' }, 'All destinations'),
    Object.values(dmap).map((d) => h('option', { value: d.id, selected: d.id === destFilter }, d.name || d.id)));
  picker.addEventListener('change', () => go(mkq({ destination: picker.value, all: showAll ? '1' : '' })));
  const allBox = h('input', { type: 'checkbox', id: 'errors-all', checked: showAll });
  allBox.addEventListener('change', () => go(mkq({ destination: destFilter, run: runFilter, all: allBox.checked ? '1' : '' })));
  root.appendChild(h('div.actions', h('label', { for: 'errors-dest' }, 'Destination'), picker,
    h('span.inline', allBox, h('label', { for: 'errors-all' }, 'Also show rows that went through later (history)')),
    runFilter ? h('span', `Run #${runFilter} `, link(mkq({ destination: destFilter, all: showAll ? '1' : '' }), '(show all runs)')) : null));
  const retryTargets = [...new Set(failing.filter((e) => !e.explanation || e.explanation.retry).map((e) => e.destination))];
  if (retryTargets.length) {
    root.appendChild(h('div.actions', retryTargets.map((d) => allow(h('button.primary', { type: 'button', on: { click: (e) => retry(d, e.currentTarget) } }, `Retry failed rows of ${destName(dmap, d)}`), 'editor'))));
  } else if (failing.length) {
    const fixed = [...new Set(failing.map((e) => e.destination))];
    root.appendChild(h('div.notice.info', h('p', 'Retrying alone would not help these rows: fix what each one says (in the source or the destination), then the next run sends them again, or send them now:'),
      h('div.actions', fixed.map((d) => allow(h('button', { type: 'button', on: { click: (e) => retry(d, e.currentTarget) } }, `Send the failed rows of ${destName(dmap, d)} again`), 'editor')))));
  }
  const hidden = all.length - items.length;
  const models = Object.fromEntries(Object.values(dmap).map((d) => [d.id, d.model]));
  root.appendChild(table(['When', 'Destination', 'Record', 'Why', '#Attempts', 'Run', 'Now'],
    items.map((e) => ({
      dataset: { key: String(e.key), destination: e.destination || '', failing: String(e.st.failing) },
      cells: [h('span.nowrap', { title: fmtTime(e.at) }, fmtAgo(e.at)), destName(dmap, e.destination),
        models[e.destination] ? link(route('records', models[e.destination], e.key), String(e.key)) : String(e.key),
        explanationView(e), String(e.attempts ?? ''), e.run_id ? link(route('runs', e.run_id), `#${e.run_id}`) : '—',
        e.st.failing ? badge('still failing', 'bad') : e.st.older ? badge('earlier attempt', 'neutral') : badge(e.st.by ? `went through (run #${e.st.by})` : 'went through', 'ok')],
    })),
    { empty: hidden ? `No row is failing now (${plural(hidden, 'earlier error')} in the history).` : 'No failed rows. Everything joey sent was accepted.' }));
  const pager = h('div.pager');
  if (before) pager.appendChild(link(mkq({ destination: destFilter, run: runFilter, all: showAll ? '1' : '' }), 'Newest'));
  if (res && res.next !== null && res.next !== undefined) {
    pager.appendChild(link(mkq({ destination: destFilter, run: runFilter, all: showAll ? '1' : '', before: String(res.next) }), 'Older failed rows'));
  }
  root.appendChild(pager);
}

// ---------------------------------------------------------------- records: records.js

// What joey last sent for a record: {attributes, groups} (or a flat attribute object).
function payloadView(payload, dest, gname) {
  if (!payload || typeof payload !== 'object') return h('p.empty', 'Nothing sent yet.');
  const nested = payload.attributes && typeof payload.attributes === 'object' && !Array.isArray(payload.attributes);
  const attrs = nested ? payload.attributes : payload;
  const out = [table(['Braze field', 'Last sent value'], Object.entries(attrs).map(([k, v]) => [h('code', k), h('span.break', fmtValue(v))]), { class: 'kv', rowHeader: true, empty: 'No attributes.' })];
  if (nested && Array.isArray(payload.groups)) {
    const byRemote = {};
    for (const m of (dest && dest.memberships) || []) byRemote[m.remote] = m.group;
    out.push(h('p', h('strong', 'Subscription groups and groups: '),
      payload.groups.length ? payload.groups.map((g, i) => [i ? ', ' : '', remoteName(dest, g), byRemote[g] ? ` (for members of ${gname[byRemote[g]] || byRemote[g]})` : '']) : 'none'));
  }
  return out;
}

// ---------------------------------------------------------------- apps

async function viewApps(root) {
  const apps = itemsOf(await get('/apps'));
  const admin = can('admin');
  append(root, pageHeader('Apps', 'A Braze app is an API key and the REST endpoint of your Braze instance: destinations send through one. A database or warehouse app is where sources read from.',
    admin ? [link('#/apps/new', 'Connect a Braze app'), ' ', link('#/apps/new?type=data', 'Connect a database or warehouse')]
      : h('span.muted', { dataset: { needsRole: 'admin' } }, 'Only admins connect and change apps: they hold the API keys and passwords.')));
  root.appendChild(table(['Name', 'Type', 'Endpoint / host / file', 'Used by', ''],
    apps.map((a) => [link(route('apps', a.id), a.name || a.id), APP_TYPE_NAMES[a.type] || a.type,
      h('span.break', String((a.options || {}).restEndpoint || (a.options || {}).host || (a.options || {}).account || (a.options || {}).project_id || (a.options || {}).file || '—')),
      (a.used_by || []).join(', ') || h('span.muted', 'nothing'),
      link(route('apps', a.id), admin ? 'Edit' : 'View', h('span.visually-hidden', ` ${a.name || a.id}`))]),
    { empty: 'No apps yet.' }));
}

function configObjectBody(o) {
  const c = { ...o };
  delete c.file; // the answer's "file" is not part of the object
  return c;
}

const APP_TYPE_NAMES = { braze: 'Braze', sqlite: 'SQLite', postgres: 'PostgreSQL', mysql: 'MySQL / MariaDB', csv: 'CSV files',
  redshift: 'Amazon Redshift', clickhouse: 'ClickHouse', snowflake: 'Snowflake (access token)', 'snowflake-keypair': 'Snowflake (key pair)',
  bigquery: 'Google BigQuery' };
// "ssl_cert" -> "SSL cert", "statementTimeout" -> "Statement timeout"
function optionLabel(n) {
  const w = n.replace(/_/g, ' ').replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase().replace(/\bssl\b/g, 'SSL').replace(/\bid\b/g, 'ID');
  return w.charAt(0).toUpperCase() + w.slice(1);
}

// A database or warehouse app: one field per option of its type (the catalog's list).
async function viewDataAppForm(root, appId, existing, query, ctx) {
  const isNew = !appId;
  const cat = await catalog();
  const types = cat.app_types.filter((t) => t !== 'braze');
  let type = existing ? existing.type : (types.includes(query.get('type')) ? query.get('type') : types[0]);
  append(root, pageHeader(isNew ? 'Connect a database or warehouse' : `App: ${existing.name || existing.id}`,
    'Sources read users and their properties from it. Passwords and keys are kept out of the config files.'));
  const o = (existing && existing.options) || {};
  const name = h('input', { type: 'text', id: 'app-name', value: existing ? existing.name || '' : '', required: true, autocomplete: 'off' });
  const id = h('input', { type: 'text', id: 'app-id', value: existing ? existing.id : '', readOnly: !isNew, required: true, pattern: '[A-Za-z0-9_-]{1,191}', spellcheck: 'false' });
  let idTouched = !isNew;
  id.addEventListener('input', () => { idTouched = true; });
  name.addEventListener('input', () => { if (!idTouched) id.value = slug(name.value); });
  const typeSel = h('select', { id: 'app-type', disabled: !isNew },
    (isNew ? types : [type]).map((t) => h('option', { value: t, selected: t === type }, APP_TYPE_NAMES[t] || t)));
  const optBox = h('div', { id: 'app-options' });
  let inputs = [];
  function drawOptions() {
    clear(optBox);
    inputs = (cat.app_options[type] || []).map((op) => {
      const cur = o[op.name];
      const ctlId = `app-opt-${op.name}`;
      let ctl;
      if (op.kind === 'bool') {
        ctl = h('input', { type: 'checkbox', id: ctlId, checked: cur === true });
        optBox.appendChild(h('div.field', { dataset: { field: `options.${op.name}` } },
          h('label.check', ctl, optionLabel(op.name))));
      } else {
        ctl = h('input', {
          type: op.secret ? 'password' : op.kind === 'number' ? 'number' : 'text', id: ctlId,
          value: cur === undefined || cur === null ? '' : op.secret && cur !== '' ? '****' : String(cur),
          required: op.required, spellcheck: 'false', autocomplete: op.secret ? 'new-password' : 'off',
        });
        optBox.appendChild(field(optionLabel(op.name) + (op.required ? '' : ' (optional)'), ctl,
          op.secret ? (cur ? 'A value is stored. Leave **** to keep it, or type a new one.' : 'Kept in joey’s secrets file, never in the config files.') : null,
          { field: `options.${op.name}` }));
      }
      return { op, ctl };
    });
  }
  drawOptions();
  typeSel.addEventListener('change', () => { type = typeSel.value; drawOptions(); });
  const diagBox = h('div', { id: 'form-diagnostics' });
  const testBox = h('div', { id: 'test-result', 'aria-live': 'polite' });
  const saveBtn = allow(h('button.primary', { type: 'submit' }, isNew ? 'Save app' : 'Save changes'), 'admin');
  const form = h('form.form', { novalidate: true, on: { submit: (e) => { e.preventDefault(); if (can('admin')) save(); } } },
    roleNotice('admin', 'Changing an app (it holds a password or key)'),
    diagBox,
    field('Type', typeSel, isNew ? 'The kind of database or warehouse.' : 'The type cannot change.', { field: 'type' }),
    field('Name', name, 'Shown in joey, e.g. “Warehouse”.', { field: 'name' }),
    field('ID', id, isNew ? 'Used in the config files; letters, digits, _ and -. Filled in from the name.' : 'The ID cannot change.', { field: 'id' }),
    optBox,
    h('div.actions', saveBtn,
      !isNew ? allow(h('button', { type: 'button', id: 'test-connection', on: { click: (e) => testData(e.currentTarget) } }, 'Test connection'), 'admin') : null,
      link('#/apps', can('admin') ? 'Cancel' : 'Back'),
      !isNew ? allow(h('button.danger', { type: 'button', on: { click: () => removeObject('apps', appId, '#/apps') } }, 'Delete app'), 'admin') : null),
    testBox);
  root.appendChild(form);

  async function testData(btn) {
    btn.disabled = true;
    clear(testBox).appendChild(h('p.muted', 'Connecting…'));
    try {
      const r = await post(`/apps/${enc(appId)}/test`);
      if (!ctx.alive()) return;
      clear(testBox);
      if (r && r.ok) testBox.appendChild(h('div.notice.ok', h('strong', 'Connection OK. '), 'joey could connect and read.'));
      else testBox.appendChild(h('div.notice.error', h('strong', 'Connection failed: '), fmtValue((r && r.error) || 'unknown error'),
        r && r.hint ? h('p', h('em', 'What to do: '), String(r.hint)) : null,
        r && r.detail ? h('details.small', h('summary', 'Technical detail'), h('p.break', String(r.detail))) : null));
    } catch (e) {
      clear(testBox).appendChild(errorNotice(e, 'Connection test failed'));
    } finally { btn.disabled = false; }
  }

  async function save() {
    const errs = [];
    if (!name.value.trim()) errs.push({ field: 'name', message: 'Give the app a name.' });
    if (!ID_RE.test(id.value)) errs.push({ field: 'id', message: 'The ID may hold only letters, digits, _ and - (1 to 191 characters).' });
    const options = {};
    for (const { op, ctl } of inputs) {
      if (op.kind === 'bool') { if (ctl.checked || o[op.name] !== undefined) options[op.name] = ctl.checked; continue; }
      const v = ctl.value.trim();
      if (!v) { if (op.required) errs.push({ field: `options.${op.name}`, message: `Enter the ${optionLabel(op.name).toLowerCase()}.` }); continue; }
      if (op.kind === 'number') {
        const n = Number(v);
        if (!Number.isFinite(n)) { errs.push({ field: `options.${op.name}`, message: `${optionLabel(op.name)} must be a number.` }); continue; }
        options[op.name] = n;
      } else options[op.name] = v;
    }
    if (errs.length) { showDiagnostics(form, diagBox, errs); return; }
    const obj = existing ? { ...existing } : { id: id.value, class: 'App', type };
    obj.class = 'App';
    obj.name = name.value.trim();
    obj.options = options;
    saveBtn.disabled = true;
    try {
      const saved = await saveConfig(api, isNew ? 'POST' : 'PUT', isNew ? '/config/apps' : `/config/apps/${enc(appId)}`, obj);
      if (!saved) { saveBtn.disabled = false; return; }
      go(route('apps', obj.id), isNew ? `Saved the app “${obj.name}”. Now test the connection.` : `Saved “${obj.name}”.`);
      if (!isNew) saveBtn.disabled = false;
    } catch (e) {
      saveBtn.disabled = false;
      showDiagnostics(form, diagBox, e.body && Array.isArray(e.body.diagnostics) ? e.body.diagnostics : null, e);
    }
  }
}

async function viewAppForm(root, { app: appId }, query, ctx) {
  const isNew = !appId;
  const raw = isNew ? null : await get(`/config/apps/${enc(appId)}`);
  const existing = raw ? configObjectBody(raw) : null;
  if ((existing && existing.type !== 'braze') || (isNew && query.get('type'))) return viewDataAppForm(root, appId, existing, query, ctx);
  append(root, pageHeader(isNew ? 'Connect a Braze app' : `Braze app: ${existing.name || existing.id}`,
    isNew ? 'joey sends user profiles through this app. The key is checked with Braze when you save.' : 'The key is checked with Braze when it changes.'));
  const o = (existing && existing.options) || {};
  const name = h('input', { type: 'text', id: 'app-name', value: existing ? existing.name || '' : '', required: true, autocomplete: 'off' });
  const id = h('input', { type: 'text', id: 'app-id', value: existing ? existing.id : '', readOnly: !isNew, required: true, pattern: '[A-Za-z0-9_-]{1,191}', spellcheck: 'false' });
  let idTouched = !isNew;
  id.addEventListener('input', () => { idTouched = true; });
  name.addEventListener('input', () => { if (!idTouched) id.value = slug(name.value); });
  const endpoint = h('input', { type: 'text', id: 'app-endpoint', inputmode: 'url', value: o.restEndpoint || '', required: true, placeholder: 'https://rest.iad-01.braze.com', spellcheck: 'false', autocomplete: 'off' });
  const storedKey = o.apiKey;
  const key = h('input', { type: 'password', id: 'app-key', autocomplete: 'new-password', spellcheck: 'false', required: isNew, value: storedKey ? '****' : '' });
  key.addEventListener('focus', () => { if (key.value === '****') key.select(); });
  const showKey = h('button.small', { type: 'button', 'aria-controls': 'app-key', 'aria-pressed': 'false', on: { click: () => { const s = key.type === 'password'; key.type = s ? 'text' : 'password'; showKey.setAttribute('aria-pressed', String(s)); showKey.textContent = s ? 'Hide' : 'Show'; } } }, 'Show');
  const diagBox = h('div', { id: 'form-diagnostics' });
  const testBox = h('div', { id: 'test-result', 'aria-live': 'polite' });
  const keyNote = storedKey && (/^GROUPAROO_OPTION__/.test(storedKey) || /^\$\{.+\}$/.test(storedKey)) ? 'A key is stored, outside the config files (set up by whoever installed joey, or saved here). Leave **** to keep it, or type a new key to replace it.'
    : storedKey ? 'A key is stored. Leave **** to keep it, or type a new one to replace it.'
      : 'Braze → Settings → APIs and Identifiers → REST API keys. It needs the users.track, users.export.ids, users.delete, subscription.status.set and campaigns.list permissions. joey keeps it out of the config files.';
  const keyNoteFull = storedKey ? `${keyNote} A stored key goes only to the endpoint it was saved for: a new endpoint needs the key typed again.` : keyNote;
  const saveBtn = allow(h('button.primary', { type: 'submit' }, isNew ? 'Save app' : 'Save changes'), 'admin');
  const form = h('form.form', { novalidate: true, on: { submit: (e) => { e.preventDefault(); if (can('admin')) save(); } } },
    roleNotice('admin', 'Changing a Braze app (it holds the API key)'),
    diagBox,
    field('Name', name, 'Shown in joey, e.g. “Braze production”.', { field: 'name' }),
    field('ID', id, isNew ? 'Used in the config files; letters, digits, _ and -. Filled in from the name.' : 'The ID cannot change.', { field: 'id' }),
    h('div.field', { dataset: { field: 'options.apiKey' } },
      h('label', { for: 'app-key' }, 'REST API key'),
      h('div.password-row', key, showKey),
      h('span.help', { id: 'app-key-help' }, keyNoteFull)),
    field('REST endpoint URL', endpoint, 'From Braze’s “API and SDK endpoints” page, e.g. https://rest.fra-01.braze.eu.', { field: 'options.restEndpoint' }),
    h('div.actions', saveBtn,
      !isNew ? allow(h('button', { type: 'button', id: 'test-connection', on: { click: (e) => testApp(appId, e.currentTarget) } }, 'Test connection'), 'admin') : null,
      link('#/apps', can('admin') ? 'Cancel' : 'Back'),
      !isNew ? allow(h('button.danger', { type: 'button', on: { click: () => removeObject('apps', appId, '#/apps') } }, 'Delete app'), 'admin') : null),
    testBox);
  key.setAttribute('aria-describedby', 'app-key-help');
  root.appendChild(form);

  async function testApp(aid, btn) {
    btn.disabled = true;
    clear(testBox).appendChild(h('p.muted', 'Asking Braze…'));
    try {
      const r = await post(`/apps/${enc(aid)}/test`);
      if (!ctx.alive()) return;
      clear(testBox);
      if (r && r.ok) testBox.appendChild(h('div.notice.ok', h('strong', 'Connection OK. '), r.message ? String(r.message) : 'Braze accepted the key.'));
      else testBox.appendChild(h('div.notice.error', h('strong', 'Connection failed: '), fmtValue((r && r.error) || 'unknown error'),
        r && r.hint ? h('p', h('em', 'What to do: '), String(r.hint)) : null,
        r && r.detail ? h('details.small', h('summary', 'Technical detail'), h('p.break', String(r.detail))) : null));
    } catch (e) {
      clear(testBox).appendChild(errorNotice(e, 'Connection test failed'));
    } finally { btn.disabled = false; }
  }

  async function save() {
    const errs = [];
    if (!name.value.trim()) errs.push({ field: 'name', message: 'Give the app a name.' });
    if (!ID_RE.test(id.value)) errs.push({ field: 'id', message: 'The ID may hold only letters, digits, _ and - (1 to 191 characters).' });
    if (!endpoint.value.trim()) errs.push({ field: 'options.restEndpoint', message: 'Enter the REST endpoint URL.' });
    if (!key.value) errs.push({ field: 'options.apiKey', message: 'Enter the REST API key.' });
    else if (!isNew && key.value === '****' && endpoint.value.trim() !== (o.restEndpoint || '')) {
      errs.push({ field: 'options.apiKey', message: 'The endpoint changed: type the REST API key again. joey sends a stored key only to the endpoint it was saved for.' });
    }
    if (errs.length) { showDiagnostics(form, diagBox, errs); return; }
    const obj = existing ? { ...existing } : { id: id.value, class: 'App', type: 'braze' };
    obj.class = 'App';
    obj.name = name.value.trim();
    obj.options = { ...(obj.options || {}), apiKey: key.value === '****' ? '****' : key.value, restEndpoint: endpoint.value.trim() };
    saveBtn.disabled = true;
    try {
      const saved = await saveConfig(api, isNew ? 'POST' : 'PUT', isNew ? '/config/apps' : `/config/apps/${enc(appId)}`, obj);
      if (!saved) { saveBtn.disabled = false; return; }
      go(route('apps', obj.id), isNew ? `Saved the Braze app “${obj.name}”. Now test the connection.` : `Saved “${obj.name}”.`);
      if (!isNew) { saveBtn.disabled = false; }
    } catch (e) {
      saveBtn.disabled = false;
      showDiagnostics(form, diagBox, e.body && Array.isArray(e.body.diagnostics) ? e.body.diagnostics : null, e);
    }
  }
}

async function removeObject(cls, id, back) {
  // eslint-disable-next-line no-alert
  if (!window.confirm(`Delete ${cls.replace(/s$/, '')} “${id}” from the config directory?`)) return;
  try {
    const done = await saveConfig(api, 'DELETE', `/config/${cls}/${enc(id)}`);
    if (done === null) return;
    go(back, `Deleted “${id}”.`);
  } catch (e) {
    toast(`Not deleted: ${e.message}${e.body && e.body.diagnostics && e.body.diagnostics[0] ? ` — ${e.body.diagnostics[0].message}` : ''}`, 10000);
  }
}

// 422 diagnostics (or client-side checks) next to the form; each one with a field is
// also shown at the control whose data-field matches.
function showDiagnostics(form, box, diags, err) {
  form.querySelectorAll('[aria-invalid]').forEach((e) => e.removeAttribute('aria-invalid'));
  form.querySelectorAll('.field-error').forEach((e) => e.remove());
  clear(box);
  const list = diags || [];
  const b = (err && err.body) || {};
  const notice = h('div.notice.error', { role: 'alert', tabindex: '-1', id: 'diagnostics' },
    h('h2', err && err.status === 422 ? 'The change was not saved: the configuration would not be valid' : err ? 'The change was not saved' : 'Please check the form'),
    err && !list.length ? [h('p', h('strong', b.error || err.message)), b.detail ? h('p.break', String(b.detail)) : null, b.hint ? h('p', h('strong', 'Hint: '), String(b.hint)) : null] : null,
    list.length ? diagList(list) : null);
  box.appendChild(notice);
  for (const d of list) {
    if (!d.field) continue;
    const target = findField(form, d.field);
    if (!target) continue;
    const ctl = target.matches('input,select,textarea') ? target : target.querySelector('[data-diag-target]') || target.querySelector('input,select,textarea');
    if (ctl) ctl.setAttribute('aria-invalid', 'true');
    const msg = h('p.field-error', d.message || 'invalid', d.hint ? ` — ${d.hint}` : '');
    msg.id = uid('err');
    if (ctl) ctl.setAttribute('aria-describedby', `${ctl.getAttribute('aria-describedby') || ''} ${msg.id}`.trim());
    (target.matches('tr') ? target.lastElementChild : target).appendChild(msg);
  }
  notice.focus();
}
function findField(form, f) {
  const all = [...form.querySelectorAll('[data-field]')];
  let best = null;
  for (const e of all) {
    const df = e.dataset.field;
    if (df === f) return e;
    if (f.startsWith(df + '.') && (!best || df.length > best.dataset.field.length)) best = e;
  }
  return best;
}

// ---------------------------------------------------------------- destination form

async function viewDestinationForm(root, { model: modelId, dest: destId }, _q, ctx) {
  const isNew = !destId || destId === 'new';
  const [m, apps, cat, existingRaw, samples] = await Promise.all([
    get(`/models/${enc(modelId)}`), get('/apps'), catalog(),
    isNew ? null : get(`/config/destinations/${enc(destId)}`),
    get(`/models/${enc(modelId)}/samples`).catch(() => ({ properties: {} })),
  ]);
  const existing = existingRaw ? configObjectBody(existingRaw) : null;
  const props = m.properties || [];
  const propById = Object.fromEntries(props.map((p) => [p.id, p]));
  const groups = m.groups || [];
  const brazeApps = itemsOf(apps).filter((a) => a.type === 'braze');
  const pk = primaryKeyProp(m);
  const fields = cat.braze_fields.filter((f) => f.name !== 'external_id');
  const fieldNames = new Set(fields.map((f) => f.name));
  const mapping = { ...((existing && existing.mapping) || {}) };
  delete mapping.external_id;

  append(root, pageHeader(isNew ? `New Braze destination for ${m.name || m.id}` : `Destination: ${existing.name || existing.id}`,
    'Which records go to Braze, how, and which of their properties become Braze profile fields.'));
  if (!brazeApps.length) {
    root.appendChild(h('div.notice.warn', 'There is no Braze app yet. ', link('#/apps/new', 'Connect a Braze app first'), '.'));
  }
  if (!pk) root.appendChild(h('div.notice.warn', 'This model has no primary key property: Braze’s external_id cannot be mapped.'));

  const diagBox = h('div', { id: 'form-diagnostics' });
  const name = h('input', { type: 'text', id: 'dest-name', required: true, value: existing ? existing.name || '' : '', autocomplete: 'off' });
  const id = h('input', { type: 'text', id: 'dest-id', required: true, readOnly: !isNew, value: existing ? existing.id : '', spellcheck: 'false' });
  let idTouched = !isNew;
  id.addEventListener('input', () => { idTouched = true; });
  name.addEventListener('input', () => { if (!idTouched) id.value = slug(name.value); });
  const app = h('select', { id: 'dest-app', required: true },
    brazeApps.length !== 1 ? h('option', { value: '' }, '— choose a Braze app —') : null,
    brazeApps.map((a) => h('option', { value: a.id, selected: existing ? existing.appId === a.id : brazeApps.length === 1 }, a.name || a.id)));

  // sync mode
  // no mode is preselected for a new destination: Sync deletes users, so it is a choice
  const mode = (existing && existing.syncMode) || '';
  const modeSet = h('fieldset', { dataset: { field: 'syncMode' } }, h('legend', 'Sync mode (choose one)'),
    cat.sync_modes.map((sm) => {
      const rid = `sync-${slug(sm.id)}`;
      const helpId = `${rid}-help`;
      return h('div.choice',
        h('input', { type: 'radio', name: 'syncMode', id: rid, value: sm.id, checked: sm.id === mode, 'aria-describedby': helpId }),
        h('label', { for: rid }, h('span.choice-label', sm.label || sm.id), h('span.choice-help', { id: helpId }, sm.help || '')));
    }));

  // who is sent
  const coll = (existing && existing.collection) || 'model';
  const groupSel = h('select', { id: 'dest-group', 'aria-label': 'Group to send' },
    h('option', { value: '' }, '— choose a group —'),
    groups.map((g) => h('option', { value: g.id, selected: existing && existing.groupId === g.id }, g.name || g.id)));
  const collChoice = (value, label, help, extra) => {
    const rid = `coll-${value}`;
    return h('div.choice', h('input', { type: 'radio', name: 'collection', id: rid, value, checked: coll === value, 'aria-describedby': `${rid}-help` }),
      h('div', h('label', { for: rid }, h('span.choice-label', label)), h('span.choice-help', { id: `${rid}-help` }, help), extra || null));
  };
  const collSet = h('fieldset', { dataset: { field: 'collection' } }, h('legend', 'Who is sent'),
    collChoice('model', `Everyone in ${m.name || m.id}`, 'Every record of the model becomes a Braze user.'),
    collChoice('group', 'Members of one group', 'Only records in the group are sent; records that leave it are handled by the sync mode.', h('div.field', { dataset: { field: 'groupId' } }, groupSel)),
    collChoice('none', 'Nobody (pause)', 'Send nothing. Under Sync, users joey created are removed from Braze at the next run.'));
  const syncGroupEnabled = () => { groupSel.disabled = collSet.querySelector('input[name="collection"]:checked').value !== 'group'; };
  collSet.addEventListener('change', syncGroupEnabled);

  // mapping: external_id pinned
  const propOptions = (selected, filter) => [h('option', { value: '' }, '— not sent —'),
    props.filter((p) => !filter || filter(p)).map((p) => h('option', { value: p.id, selected: p.id === selected }, propLabel(p)))];
  const pinned = h('tr.pinned', { dataset: { field: 'mapping.external_id' } },
    h('th', { scope: 'row' }, h('code', 'external_id')),
    h('td', 'identifier'),
    h('td', pk ? h('span', h('strong', pk.key), ` (${pk.type}) — the model’s primary key`) : h('span.muted', 'no primary key')),
    h('td', h('span.small.muted', 'always sent; cannot be removed')));
  // Braze's fields by what they are; each select offers the properties whose type fits
  // (and the one chosen), with sample values of the chosen property beside it
  const sampleOf = (pid) => {
    const p = propById[pid];
    const vs = p ? ((samples.properties || {})[p.key] || []) : [];
    return vs.length ? `e.g. ${vs.slice(0, 3).map((v) => fmtValue(v)).join(', ')}` : p ? 'no sample value' : '';
  };
  // what joey validate accepts: a text field takes any property, an email or phone field
  // also a text one, other fields their own type only
  const fits = (f, p) => !f.type || f.type === 'string' || p.type === f.type || ((f.type === 'email' || f.type === 'phone') && p.type === 'string');
  const onlyFitting = h('input', { type: 'checkbox', id: 'map-fit', checked: true });
  const knownRows = fields.map((f) => {
    const sel = h('select', { id: `map-${slug(f.name)}`, dataset: { brazeField: f.name } });
    const fill = () => {
      const cur = sel.value || mapping[f.name];
      clear(sel);
      append(sel, propOptions(cur, (p) => !onlyFitting.checked || fits(f, p) || p.id === cur));
    };
    fill();
    sel.fill = fill;
    const ex = h('span.small.muted.break', sampleOf(sel.value));
    sel.addEventListener('change', () => { ex.textContent = sampleOf(sel.value); });
    return h('tr', { dataset: { field: `mapping.${f.name}`, brazeField: f.name } },
      h('th', { scope: 'row' }, h('label', { for: sel.id }, h('code', f.name))),
      h('td', f.type || ''), h('td', sel, h('div', ex)),
      h('td.small.muted', f.billable === false ? 'free (no data point)' : ''));
  });
  onlyFitting.addEventListener('change', () => knownRows.forEach((tr) => tr.querySelector('select').fill()));
  const FIELD_GROUPS = [
    ['Identity', ['email', 'phone']],
    ['Subscriptions and email settings', ['email_subscribe', 'push_subscribe', 'email_open_tracking_disabled', 'email_click_tracking_disabled', 'marked_email_as_spam_at']],
  ];
  const groupOf = (name) => (FIELD_GROUPS.find(([, ns]) => ns.includes(name)) || ['Profile'])[0];
  const fieldSearch = h('input', { type: 'search', id: 'map-search', placeholder: 'e.g. name, city', autocomplete: 'off' });
  const fillBtn = h('button.small', {
    type: 'button',
    on: {
      click: () => {
        let n = 0;
        for (const tr of knownRows) {
          const sel = tr.querySelector('select');
          if (sel.value) continue;
          const p = props.find((x) => x.key === sel.dataset.brazeField || x.id === sel.dataset.brazeField);
          if (p) { sel.value = p.id; n += 1; }
        }
        toast(n ? `Filled in ${plural(n, 'field')} whose property has the same name.` : 'No unmapped field has a property of the same name.');
      },
    },
  }, 'Fill in properties with the same names');
  const sections = ['Identity', 'Profile', 'Subscriptions and email settings'].map((g) => {
    const rows = knownRows.filter((tr) => groupOf(tr.dataset.brazeField) === g);
    return h('tbody', { dataset: { fieldGroup: g } }, h('tr.group-head', h('th', { scope: 'colgroup', colspan: '4' }, g)), g === 'Identity' ? pinned : null, rows);
  });
  const profileTable = h('table.data.mapping',
    h('caption', 'Braze profile fields: pick the property whose value goes into each field. Braze bills a data point for each change of a field, except the fields marked free.'),
    h('thead', h('tr', h('th', { scope: 'col' }, 'Braze field'), h('th', { scope: 'col' }, 'Type'), h('th', { scope: 'col' }, 'Property'), h('th', { scope: 'col' }, 'Cost'))),
    sections);
  fieldSearch.addEventListener('input', () => {
    const q = fieldSearch.value.trim().toLowerCase().replace(/\s+/g, '_');
    for (const tr of knownRows) tr.hidden = !!q && !tr.dataset.brazeField.includes(q);
    pinned.hidden = !!q && !'external_id'.includes(q);
    for (const tb of sections) tb.querySelector('tr.group-head').hidden = [...tb.querySelectorAll('tr[data-braze-field]')].every((tr) => tr.hidden) && pinned.closest('tbody') !== tb;
  });

  // custom attributes
  const customBody = h('tbody', { id: 'custom-rows' });
  const addCustom = (remote, propId) => {
    const p = h('select', { 'aria-label': 'Property' }, propOptions(propId));
    const nm = h('input', { type: 'text', 'aria-label': 'Braze attribute name', value: remote || '', spellcheck: 'false', placeholder: 'attribute name', dataset: { diagTarget: '1' } });
    nm.dataset.touched = remote ? '1' : '';
    nm.addEventListener('input', () => { nm.dataset.touched = '1'; tr.dataset.field = `mapping.${nm.value}`; });
    p.addEventListener('change', () => {
      if (!nm.dataset.touched || !nm.value) { nm.value = propById[p.value] ? propById[p.value].key : ''; tr.dataset.field = `mapping.${nm.value}`; }
    });
    const rm = h('button.small', { type: 'button', on: { click: () => { tr.remove(); customEmpty(); } } }, 'Remove');
    const tr = h('tr.custom-row', { dataset: { field: `mapping.${remote || ''}` } }, h('td', p), h('td', nm), h('td', rm));
    p.id = uid('cp'); nm.id = uid('cn');
    rm.setAttribute('aria-label', 'Remove this custom attribute');
    customBody.appendChild(tr);
    customEmpty();
    return tr;
  };
  const customEmpty = () => { customTable.hidden = !customBody.children.length; };
  const customTable = h('table.data.mapping', h('caption', 'Custom attributes: any property, under a name you choose (it defaults to the property’s key).'),
    h('thead', h('tr', h('th', { scope: 'col' }, 'Property'), h('th', { scope: 'col' }, 'Braze attribute name'), h('th', { scope: 'col' }, h('span.visually-hidden', 'Actions')))), customBody);
  for (const [remote, pid] of Object.entries(mapping)) if (!fieldNames.has(remote)) addCustom(remote, pid);
  customEmpty();
  const addCustomBtn = h('button', {
    type: 'button', id: 'add-custom',
    on: { click: () => { const tr = addCustom('', ''); tr.querySelector('select').focus(); } },
  }, 'Add custom attribute');

  // group → subscription group, or → a value of the groups attribute: an explicit choice
  const gmBody = h('tbody', { id: 'group-rows' });
  const subNames = { ...((existing && existing.subscriptionGroupNames) || {}) };
  const addGroupMap = (remote, gid) => {
    const g = h('select', { 'aria-label': 'Group' }, h('option', { value: '' }, '— choose a group —'), groups.map((x) => h('option', { value: x.id, selected: x.id === gid }, x.name || x.id)));
    const isSub = !remote || UUID_RE.test(remote);
    const kind = h('select', { 'aria-label': 'Send as', dataset: { kind: '1' } },
      h('option', { value: 'sub', selected: isSub }, 'Braze subscription group'),
      h('option', { value: 'attr', selected: !isSub }, 'A value of the “groups” attribute'));
    const r = h('input', { type: 'text', 'aria-label': 'Braze subscription group ID', value: remote || '', spellcheck: 'false', placeholder: '00000000-0000-0000-0000-000000000000', class: 'mono', dataset: { diagTarget: '1', remote: '1' } });
    const nm = h('input', { type: 'text', 'aria-label': 'Name of the subscription group', value: remote && subNames[remote] ? subNames[remote] : '', placeholder: 'e.g. Newsletter', dataset: { subName: '1' } });
    const sync = () => {
      const sub = kind.value === 'sub';
      r.setAttribute('aria-label', sub ? 'Braze subscription group ID' : 'Value of the groups attribute');
      r.placeholder = sub ? '00000000-0000-0000-0000-000000000000' : 'e.g. vip';
      r.classList.toggle('mono', sub);
      nm.hidden = !sub;
    };
    kind.addEventListener('change', sync);
    r.addEventListener('input', () => { tr.dataset.field = `destinationGroupMemberships.${r.value}`; });
    const rm = h('button.small', { type: 'button', 'aria-label': 'Remove this group mapping', on: { click: () => { tr.remove(); gmEmpty(); } } }, 'Remove');
    const tr = h('tr.group-row', { dataset: { field: `destinationGroupMemberships.${remote || ''}` } }, h('td', g), h('td', kind), h('td', r, nm), h('td', rm));
    sync();
    gmBody.appendChild(tr);
    gmEmpty();
    return tr;
  };
  const gmEmpty = () => { gmTable.hidden = !gmBody.children.length; };
  const gmTable = h('table.data.mapping', h('caption', 'Members of a group are subscribed to the Braze subscription group (members who leave are unsubscribed), or get the value in their “groups” attribute.'),
    h('thead', h('tr', h('th', { scope: 'col' }, 'Group'), h('th', { scope: 'col' }, 'Send as'), h('th', { scope: 'col' }, 'Subscription group (ID and name) or value'), h('th', { scope: 'col' }, h('span.visually-hidden', 'Actions')))), gmBody);
  for (const [remote, gid] of Object.entries((existing && existing.destinationGroupMemberships) || {})) addGroupMap(remote, gid);
  gmEmpty();

  // guard
  const exOpts = (existing && existing.options) || {};
  const guard = h('input', { type: 'number', id: 'dest-guard', min: '0', max: '100', step: '1', value: exOpts.maxDeletePercent !== undefined ? String(exOpts.maxDeletePercent) : '', placeholder: '10' });

  const saveBtn = allow(h('button.primary', { type: 'submit', id: 'save-destination' }, isNew ? 'Save destination' : 'Save changes'), 'editor');
  const form = h('form.form', { novalidate: true, on: { submit: (e) => { e.preventDefault(); if (can('editor')) save(); } } },
    roleNotice('editor', 'Changing a destination'),
    diagBox,
    field('Name', name, 'Shown in joey, e.g. “Braze: all users”.', { field: 'name' }),
    field('ID', id, isNew ? 'Used in the config files; filled in from the name.' : 'The ID cannot change.', { field: 'id' }),
    field('Braze app', app, null, { field: 'appId' }),
    modeSet,
    collSet,
    h('fieldset', { dataset: { field: 'mapping' } }, h('legend', 'Braze profile fields'),
      h('div.actions', h('span.inline', h('label', { for: 'map-search' }, 'Find a field'), fieldSearch),
        h('span.inline', onlyFitting, h('label', { for: 'map-fit' }, 'Offer only properties whose type fits')), fillBtn),
      profileTable),
    h('fieldset', h('legend', 'Custom attributes'), customTable, h('div.actions', addCustomBtn)),
    h('fieldset', { dataset: { field: 'destinationGroupMemberships' } }, h('legend', 'Groups → Braze subscription groups'),
      h('p.help', 'Pick a group, then what its members get: a Braze subscription group (paste its ID from Braze → Audience → Subscriptions and give it a name you will recognise), or a value in their “groups” attribute.'),
      gmTable, h('div.actions', h('button', { type: 'button', id: 'add-group-map', on: { click: () => addGroupMap('', '').querySelector('select').focus() } }, 'Add group mapping'))),
    h('details', h('summary', 'Safety'),
      field('Mass-delete guard (%)', guard, 'A run stops and waits for approval instead of deleting more than this share of the Braze users it manages. Empty: 10.', { field: 'options.maxDeletePercent' })),
    h('div.actions', saveBtn, link(route('models', modelId), can('editor') ? 'Cancel' : 'Back'),
      !isNew ? allow(h('button.danger', { type: 'button', on: { click: () => removeObject('destinations', destId, route('models', modelId)) } }, 'Delete destination'), 'editor') : null));
  root.appendChild(form);
  syncGroupEnabled();

  async function save() {
    const errs = [];
    const obj = existing ? { ...existing } : { id: id.value.trim() };
    obj.class = 'Destination';
    obj.name = name.value.trim();
    obj.type = obj.type || 'braze-export-users';
    obj.appId = app.value;
    obj.modelId = modelId;
    obj.syncMode = (form.querySelector('input[name="syncMode"]:checked') || {}).value || '';
    if (!obj.syncMode) errs.push({ field: 'syncMode', message: 'Choose a sync mode: Sync deletes Braze users that leave the model, Additive never deletes, Enrich only updates.' });
    obj.collection = form.querySelector('input[name="collection"]:checked').value;
    if (obj.collection === 'group') obj.groupId = groupSel.value; else delete obj.groupId;
    const map = {};
    if (pk) map.external_id = pk.id;
    for (const tr of knownRows) { const s = tr.querySelector('select'); if (s.value) map[s.dataset.brazeField] = s.value; }
    for (const tr of customBody.querySelectorAll('tr')) {
      const [ps, nm] = [tr.querySelector('select'), tr.querySelector('input')];
      const n = nm.value.trim();
      if (!ps.value && !n) continue;
      if (!ps.value) errs.push({ field: `mapping.${n}`, message: `Pick the property for the custom attribute “${n}”.` });
      else if (!n) errs.push({ field: 'mapping.', message: 'Give every custom attribute a name.' });
      else if (n === 'external_id' || map[n] !== undefined) errs.push({ field: `mapping.${n}`, message: `“${n}” is mapped twice.` });
      else map[n] = ps.value;
    }
    obj.mapping = map;
    const gm = {};
    const names = {};
    for (const tr of gmBody.querySelectorAll('tr')) {
      const gs = tr.querySelector('select');
      const sub = tr.querySelector('select[data-kind]').value === 'sub';
      const r = tr.querySelector('input[data-remote]');
      const nm = tr.querySelector('input[data-sub-name]');
      const remote = r.value.trim();
      const f = `destinationGroupMemberships.${remote}`;
      if (!gs.value && !remote) continue;
      if (!gs.value || !remote) errs.push({ field: f, message: sub ? 'Each mapping needs a group and the ID of a Braze subscription group.' : 'Each mapping needs a group and the value for the “groups” attribute.' });
      else if (sub && !UUID_RE.test(remote)) errs.push({ field: f, message: `“${remote}” is not a subscription group ID: paste the 36-character ID from Braze (Audience → Subscriptions).` });
      else if (!sub && UUID_RE.test(remote)) errs.push({ field: f, message: `“${remote}” is a subscription group ID: choose “Braze subscription group”.` });
      else if (gm[remote]) errs.push({ field: f, message: `“${remote}” is used twice.` });
      else {
        gm[remote] = gs.value;
        if (sub && nm.value.trim()) names[remote] = nm.value.trim();
      }
    }
    if (Object.keys(gm).length || (existing && existing.destinationGroupMemberships)) obj.destinationGroupMemberships = gm;
    if (Object.keys(names).length) obj.subscriptionGroupNames = names; else delete obj.subscriptionGroupNames;
    const opts = { ...(obj.options || {}) };
    if (guard.value !== '') opts.maxDeletePercent = Number(guard.value); else delete opts.maxDeletePercent;
    if (Object.keys(opts).length || obj.options) obj.options = opts;
    if (!obj.name) errs.push({ field: 'name', message: 'Give the destination a name.' });
    if (!ID_RE.test(obj.id)) errs.push({ field: 'id', message: 'The ID may hold only letters, digits, _ and - (1 to 191 characters).' });
    if (!obj.appId) errs.push({ field: 'appId', message: 'Choose the Braze app to send through.' });
    if (obj.collection === 'group' && !obj.groupId) errs.push({ field: 'groupId', message: 'Choose the group whose members are sent.' });
    if (errs.length) { showDiagnostics(form, diagBox, errs); return; }
    saveBtn.disabled = true;
    try {
      const saved = await saveConfig(api, isNew ? 'POST' : 'PUT', isNew ? '/config/destinations' : `/config/destinations/${enc(destId)}`, obj);
      if (!saved) { saveBtn.disabled = false; return; }
      if (!ctx.alive()) return;
      go(route('models', modelId), `Saved the destination “${obj.name}”.${isNew ? ' Preview the plan before the first run.' : ''}`);
    } catch (e) {
      saveBtn.disabled = false;
      showDiagnostics(form, diagBox, e.body && Array.isArray(e.body.diagnostics) ? e.body.diagnostics : null, e);
    }
  }
}

// ---------------------------------------------------------------- schedule form

async function viewScheduleForm(root, { model: modelId, source: sourceId }, _q, ctx) {
  const m = await get(`/models/${enc(modelId)}`);
  const src = (m.sources || []).find((s) => s.id === sourceId);
  if (!src) throw new ApiError(404, { error: `no source “${sourceId}” in model “${modelId}”` });
  const summary = (m.schedules || []).find((s) => s.source === sourceId);
  const existing = summary ? configObjectBody(await get(`/config/schedules/${enc(summary.id)}`)) : null;
  const opts = (existing && existing.options) || {};
  append(root, pageHeader(`Schedule: ${src.name || src.id}`, `When joey reads “${src.name || src.id}” and sends the changes of ${m.name || m.id} to Braze.`));
  if (!src.primary) root.appendChild(h('div.notice.warn', 'This is not the model’s primary source: joey ignores schedules of secondary sources (they are read with the primary one).'));
  const diagBox = h('div', { id: 'form-diagnostics' });
  const name = h('input', { type: 'text', id: 'sched-name', value: existing ? existing.name || '' : `${src.name || src.id} schedule`, autocomplete: 'off' });
  const picker = schedulePicker(existing, api);
  const whenSet = picker.element;
  const cols = [...new Set([...Object.keys(src.mapping || {}), ...(m.properties || []).filter((p) => p.source === sourceId && p.options && p.options.column).map((p) => p.options.column)])];
  const incremental = existing ? existing.incremental !== false : false;
  const readSet = h('fieldset', { dataset: { field: 'incremental' } }, h('legend', 'What each run reads'),
    h('div.choice', h('input', { type: 'radio', name: 'reads', id: 'reads-all', value: 'all', checked: !incremental }),
      h('label', { for: 'reads-all' }, h('span.choice-label', 'Everything'), h('span.choice-help', 'Every row, every run: deletions in the source are noticed.'))),
    h('div.choice', h('input', { type: 'radio', name: 'reads', id: 'reads-inc', value: 'inc', checked: incremental }),
      h('label', { for: 'reads-inc' }, h('span.choice-label', 'Only rows changed since the last run (incremental)'), h('span.choice-help', 'Faster; needs a column every change moves forward, such as updated_at. Deleted rows are noticed only by a full run.'))));
  const column = h('input', { type: 'text', id: 'sched-column', list: 'sched-columns', value: opts.column || Object.keys(src.mapping || {})[0] || '', spellcheck: 'false' });
  const datalist = h('datalist', { id: 'sched-columns' }, cols.map((c) => h('option', { value: c })));
  const saveBtn = allow(h('button.primary', { type: 'submit', id: 'save-schedule' }, existing ? 'Save schedule' : 'Create schedule'), 'editor');
  const form = h('form.form', { novalidate: true, on: { submit: (e) => { e.preventDefault(); if (can('editor')) save(); } } },
    roleNotice('editor', 'Changing a schedule'),
    diagBox,
    field('Name', name, null, { field: 'name' }),
    whenSet, readSet,
    h('div.field', { dataset: { field: 'options.column' } }, h('label', { for: 'sched-column' }, 'Change-tracking column'), column, datalist,
      h('span.help', 'The high-water-mark column of the source table (needed for table sources).')),
    h('div.actions', saveBtn, link(route('models', modelId), can('editor') ? 'Cancel' : 'Back'),
      existing ? allow(h('button.danger', { type: 'button', on: { click: () => removeObject('schedules', existing.id, route('models', modelId)) } }, 'Remove schedule'), 'editor') : null));
  root.appendChild(form);

  async function save() {
    const pick = picker.read();
    const w = pick.kind;
    const obj = existing ? { ...existing } : { id: slug(`${sourceId}_schedule`), class: 'Schedule', sourceId };
    obj.class = 'Schedule';
    obj.name = name.value.trim() || `${src.name || src.id} schedule`;
    const o = { ...(obj.options || {}) };
    const errs = [...pick.errors];
    delete o.cron;
    obj.recurring = pick.recurring;
    if (pick.recurringFrequency) obj.recurringFrequency = pick.recurringFrequency; else delete obj.recurringFrequency;
    if (pick.cron) o.cron = pick.cron;
    obj.incremental = form.querySelector('input[name="reads"]:checked').value === 'inc';
    if (column.value.trim()) o.column = column.value.trim(); else delete o.column;
    if (obj.incremental && !o.column) errs.push({ field: 'options.column', message: 'An incremental schedule needs its change-tracking column.' });
    obj.options = o;
    if (errs.length) { showDiagnostics(form, diagBox, errs); return; }
    saveBtn.disabled = true;
    try {
      if (existing) await put(`/config/schedules/${enc(existing.id)}`, obj); else await post('/config/schedules', obj);
      if (!ctx.alive()) return;
      go(route('models', modelId), `Saved the schedule: runs ${scheduleWords({ recurring: obj.recurring, frequency_ms: obj.recurringFrequency, cron: o.cron })}.`);
    } catch (e) {
      saveBtn.disabled = false;
      showDiagnostics(form, diagBox, e.body && Array.isArray(e.body.diagnostics) ? e.body.diagnostics : null, e);
    }
  }
}

// ---------------------------------------------------------------- account

const ROLES = ['viewer', 'editor', 'admin'];
function roleSelect(id, value, upTo, label) {
  return h('select', { id, 'aria-label': label },
    ROLES.filter((r) => ROLE_RANK[r] <= ROLE_RANK[upTo]).map((r) => h('option', { value: r, selected: r === value }, r)));
}
function okNotice(...kids) { return h('div.notice.ok', { role: 'status' }, kids); }

async function viewAccount(root, _p, _q, ctx) {
  const me = session.user;
  append(root, pageHeader('Account', `Signed in as “${me.name}”, ${me.role}.`));
  root.appendChild(h('p', ROLE_HELP[me.role] || ''));

  // password
  root.appendChild(h('h2', { id: 'password-h' }, 'Change your password'));
  const cur = h('input', { type: 'password', id: 'pw-current', autocomplete: 'current-password', required: true });
  const nw = h('input', { type: 'password', id: 'pw-new', autocomplete: 'new-password', required: true });
  const nw2 = h('input', { type: 'password', id: 'pw-new2', autocomplete: 'new-password', required: true });
  const pwOut = h('div', { id: 'password-result', 'aria-live': 'polite' });
  const pwBtn = h('button.primary', { type: 'submit' }, 'Change password');
  root.appendChild(h('form.form.card', {
    'aria-labelledby': 'password-h',
    novalidate: true,
    on: {
      submit: async (e) => {
        e.preventDefault();
        clear(pwOut);
        const bad = (msg, el) => { pwOut.appendChild(h('div.notice.error', { role: 'alert' }, msg)); el.focus(); };
        if (!cur.value) return bad('Enter your current password.', cur);
        if (nw.value.length < 10) return bad('The new password needs at least 10 characters.', nw);
        if (nw.value !== nw2.value) return bad('The two new passwords differ.', nw2);
        pwBtn.disabled = true;
        try {
          const r = await post('/session/password', { current_password: cur.value, new_password: nw.value });
          if (r && r.csrf) session.csrf = r.csrf;
          cur.value = nw.value = nw2.value = '';
          pwOut.appendChild(okNotice(h('strong', 'Password changed. '), 'You stay signed in here; your other sessions have ended.'));
        } catch (err) {
          pwOut.appendChild(errorNotice(err, 'The password was not changed'));
        } finally { pwBtn.disabled = false; }
      },
    },
  }, field('Current password', cur), field('New password', nw, 'At least 10 characters.'), field('Repeat the new password', nw2), h('div.actions', pwBtn), pwOut));

  // API tokens
  root.appendChild(h('h2', { id: 'tokens-h' }, 'Personal API tokens'));
  root.appendChild(h('p', 'For scripts and automation. A program sends the token as “Authorization: Bearer <token>” and acts as you, with the token’s role (at most yours). joey keeps only a hash: you see a token once, when you make it. Revoke a token you no longer need.'));
  const newBox = h('div', { id: 'new-token-box', 'aria-live': 'polite' });
  const label = h('input', { type: 'text', id: 'token-label', autocomplete: 'off', required: true, placeholder: 'e.g. nightly export script' });
  const role = roleSelect('token-role', 'viewer', me.role);
  const mkBtn = h('button.primary', { type: 'submit' }, 'Create token');
  const listBox = h('div', { id: 'tokens' });
  root.appendChild(h('form.form.card', {
    'aria-labelledby': 'tokens-h',
    novalidate: true,
    on: {
      submit: async (e) => {
        e.preventDefault();
        clear(newBox);
        if (!label.value.trim()) { label.setAttribute('aria-invalid', 'true'); newBox.appendChild(h('div.notice.error', { role: 'alert' }, 'Say what the token is for (its label).')); label.focus(); return; }
        label.removeAttribute('aria-invalid');
        mkBtn.disabled = true;
        try {
          const t = await post('/tokens', { label: label.value.trim(), role: role.value });
          if (!ctx.alive()) return;
          label.value = '';
          newBox.appendChild(tokenOnce(t));
          await loadTokens();
        } catch (err) {
          newBox.appendChild(errorNotice(err, 'The token was not created'));
        } finally { mkBtn.disabled = false; }
      },
    },
  }, field('Label', label, 'What or who uses it.'), field('Role', role, 'What the token may do. Choose the least it needs.'), h('div.actions', mkBtn)));
  root.appendChild(newBox);
  root.appendChild(listBox);

  async function loadTokens() {
    const r = await get('/tokens');
    if (!ctx.alive()) return;
    const list = (r && r.tokens) || [];
    clear(listBox).appendChild(table(['Label', 'Role', 'Starts with', 'Created', 'Last used', 'Status', ''],
      list.map((t) => ({
        dataset: { token: String(t.id), revoked: String(!!t.revoked_at) },
        cells: [t.label || '—', t.role, h('code', `${t.prefix || ''}…`), fmtTime(t.created_at),
          t.last_used_at ? h('span', { title: fmtTime(t.last_used_at) }, fmtAgo(t.last_used_at)) : h('span.muted', 'never'),
          t.revoked_at ? badge(`revoked ${fmtAgo(t.revoked_at)}`, 'neutral') : badge('active', 'ok'),
          t.revoked_at ? '' : h('button.small.danger', { type: 'button', 'aria-label': `Revoke token “${t.label}”`, on: { click: (e) => revoke(t, e.currentTarget) } }, 'Revoke')],
      })), { empty: 'You have no API tokens.', caption: 'Your tokens' }));
  }
  async function revoke(t, btn) {
    // eslint-disable-next-line no-alert
    if (!window.confirm(`Revoke the token “${t.label}”? Programs using it are refused from now on.`)) return;
    btn.disabled = true;
    try {
      await del(`/tokens/${enc(t.id)}`);
      toast(`Revoked the token “${t.label}”.`);
      await loadTokens();
    } catch (err) {
      btn.disabled = false;
      toast(`Not revoked: ${err.message}`, 8000);
    }
  }
  await loadTokens();
}

// The token just made: shown here once, with a way to copy it.
function tokenOnce(t) {
  const input = h('input', { type: 'text', id: 'new-token', readOnly: true, value: t.token, class: 'mono', spellcheck: 'false', 'aria-describedby': 'new-token-help' });
  input.addEventListener('focus', () => input.select());
  const copy = async () => {
    input.focus();
    input.select();
    let ok = false;
    try { await navigator.clipboard.writeText(t.token); ok = true; } catch { try { ok = document.execCommand('copy'); } catch { ok = false; } }
    toast(ok ? 'Copied the token.' : 'Select the token and copy it (Ctrl+C).');
  };
  return h('div.notice.ok.token-once', { role: 'status' },
    h('h3', `Your new token “${t.label}” (${t.role})`),
    h('label', { for: 'new-token' }, 'The token'),
    h('div.password-row', input, h('button.small', { type: 'button', on: { click: copy } }, 'Copy')),
    h('p.help', { id: 'new-token-help' }, 'Copy it now and keep it in your secret store: joey shows it only once. Use it as: curl -H "Authorization: Bearer <token>" ',
      h('code', `${location.origin}/api/v1/status`)));
}

// ---------------------------------------------------------------- team (admin)

async function viewTeam(root, _p, _q, ctx) {
  const r = await get('/users');
  const users = (r && r.users) || [];
  append(root, pageHeader('Team', 'The people who may use joey, and what each may do.'));
  root.appendChild(h('ul.small', ROLES.map((x) => h('li', h('strong', x), ': ', ROLE_HELP[x]))));
  const out = h('div', { id: 'team-result', 'aria-live': 'polite' });

  // add
  root.appendChild(h('h2', { id: 'add-user-h' }, 'Add a person'));
  const name = h('input', { type: 'text', id: 'new-user-name', autocomplete: 'off', spellcheck: 'false', autocapitalize: 'none', required: true });
  const role = roleSelect('new-user-role', 'viewer', 'admin');
  const pw = h('input', { type: 'password', id: 'new-user-password', autocomplete: 'new-password', required: true });
  const addOut = h('div', { id: 'add-user-result', 'aria-live': 'polite' });
  const addBtn = h('button.primary', { type: 'submit' }, 'Add user');
  root.appendChild(h('form.form.card', {
    'aria-labelledby': 'add-user-h',
    novalidate: true,
    on: {
      submit: async (e) => {
        e.preventDefault();
        clear(addOut);
        if (!name.value.trim()) { addOut.appendChild(h('div.notice.error', { role: 'alert' }, 'Enter the user name.')); name.focus(); return; }
        if (pw.value.length < 10) { addOut.appendChild(h('div.notice.error', { role: 'alert' }, 'The initial password needs at least 10 characters.')); pw.focus(); return; }
        addBtn.disabled = true;
        try {
          await post('/users', { name: name.value.trim(), role: role.value, password: pw.value });
          go('#/team', `Added “${name.value.trim()}” (${role.value}). Give them the password through a safe channel; they can change it under Account.`);
        } catch (err) {
          addBtn.disabled = false;
          addOut.appendChild(errorNotice(err, 'The user was not added'));
        }
      },
    },
  }, field('User name', name, '1 to 64 letters, digits, _ . @ or -.'), field('Role', role),
  field('Initial password', pw, 'At least 10 characters. Tell it to them through a safe channel; they change it under Account.'),
  h('div.actions', addBtn), addOut));

  // list
  root.appendChild(h('h2', 'People'));
  root.appendChild(out);
  const rows = users.map((u) => {
    const you = u.name === session.user.name;
    const sel = roleSelect(uid('role'), u.role, 'admin', `Role of ${u.name}`);
    // a separate button: a keyboard user going through the options must not change the role at each one
    const roleBtn = h('button.small', { type: 'button', hidden: true, 'aria-label': `Save role of ${u.name}` }, 'Save');
    sel.addEventListener('change', () => { roleBtn.hidden = sel.value === u.role; });
    roleBtn.addEventListener('click', async () => {
      clear(out);
      sel.disabled = true;
      roleBtn.disabled = true;
      try {
        await put(`/users/${enc(u.name)}`, { role: sel.value });
        if (!ctx.alive()) return;
        if (you) { // our own role changed: the server ends our sessions; sign in again
          if (await resyncSession()) render();
          return;
        }
        u.role = sel.value;
        roleBtn.hidden = true;
        toast(`“${u.name}” is now ${sel.value}.`);
      } catch (err) {
        out.appendChild(errorNotice(err, `The role of “${u.name}” was not changed`));
      } finally { sel.disabled = false; roleBtn.disabled = false; }
    });
    const resetBox = h('div.reset-password', { hidden: true });
    const npw = h('input', { type: 'password', autocomplete: 'new-password', 'aria-label': `New password for ${u.name}` });
    const setBtn = h('button.small.primary', { type: 'button' }, 'Set password');
    setBtn.addEventListener('click', async () => {
      clear(out);
      if (npw.value.length < 10) { out.appendChild(h('div.notice.error', { role: 'alert' }, 'A password needs at least 10 characters.')); npw.focus(); return; }
      setBtn.disabled = true;
      try {
        await put(`/users/${enc(u.name)}`, { password: npw.value });
        npw.value = '';
        resetBox.hidden = true;
        out.appendChild(okNotice(h('strong', `New password set for “${u.name}”. `), you ? 'Your other sessions have ended.' : 'Their sessions have ended; tell them the new password through a safe channel.'));
      } catch (err) {
        out.appendChild(errorNotice(err, `The password of “${u.name}” was not changed`));
      } finally { setBtn.disabled = false; }
    });
    append(resetBox, [npw, ' ', setBtn, ' ', h('button.small', { type: 'button', on: { click: () => { npw.value = ''; resetBox.hidden = true; } } }, 'Cancel')]);
    const resetBtn = h('button.small', { type: 'button', 'aria-label': `Reset password of ${u.name}`, on: { click: () => { resetBox.hidden = false; npw.focus(); } } }, 'Reset password');
    const rmBtn = h('button.small.danger', {
      type: 'button',
      'aria-label': `Remove ${u.name}`,
      on: {
        click: async (e) => {
          clear(out);
          // eslint-disable-next-line no-alert
          if (!window.confirm(`Remove the user “${u.name}”? Their sessions and API tokens end.`)) return;
          const btn = e.currentTarget;
          btn.disabled = true;
          try {
            await del(`/users/${enc(u.name)}`);
            go('#/team', `Removed “${u.name}”.`);
          } catch (err) {
            btn.disabled = false;
            out.appendChild(errorNotice(err, `“${u.name}” was not removed`));
          }
        },
      },
    }, 'Remove');
    return {
      dataset: { user: u.name, role: u.role },
      cells: [h('span', u.name, you ? [' ', badge('you', 'info')] : null), h('span.inline', sel, roleBtn),
        u.last_login_at ? h('span', { title: fmtTime(u.last_login_at) }, fmtAgo(u.last_login_at)) : h('span.muted', 'never'),
        fmtTime(u.created_at),
        h('div', h('span.inline', resetBtn, rmBtn), resetBox)],
    };
  });
  root.appendChild(table(['Name', 'Role', 'Last sign-in', 'Added', 'Actions'], rows, { class: 'team', empty: 'Nobody yet.' }));
  root.appendChild(h('p.small.muted', 'Personal API tokens of everybody: GET /api/v1/tokens?all=1. Every change here is in the ', link('#/audit', 'audit log'), '.'));
}

// ---------------------------------------------------------------- audit log (admin)

function changedKeys(a, b) {
  if (!a || !b || typeof a !== 'object' || typeof b !== 'object') return [];
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
}

async function viewAudit(root, _p, query) {
  const sizes = [10, 25, 50, 100];
  const limit = sizes.includes(Number(query.get('limit'))) ? Number(query.get('limit')) : 50;
  const before = /^\d+$/.test(query.get('before') || '') ? query.get('before') : '';
  const qs = new URLSearchParams({ limit: String(limit) });
  if (before) qs.set('before', before);
  const r = await get(`/audit?${qs}`);
  const entries = (r && r.entries) || [];
  append(root, pageHeader('Audit log', 'Every change to the configuration, the team, the tokens and the runs: who, when, from where, and what it was before and after. Secrets are masked. Newest first.'));
  const size = h('select', { id: 'audit-limit' }, sizes.map((n) => h('option', { value: String(n), selected: n === limit }, String(n))));
  size.addEventListener('change', () => go(`#/audit?limit=${size.value}`));
  root.appendChild(h('div.actions', h('label', { for: 'audit-limit' }, 'Entries per page'), size));
  const mkq = (b) => { const q = new URLSearchParams(); if (limit !== 50) q.set('limit', String(limit)); if (b) q.set('before', String(b)); const t = q.toString(); return t ? `#/audit?${t}` : '#/audit'; };
  const pre = (v) => (v === null || v === undefined ? h('p.empty', 'nothing') : h('pre.json', JSON.stringify(v, null, 2)));
  const body = h('tbody');
  for (const e of entries) {
    const keys = changedKeys(e.before, e.after);
    const has = (e.before !== null && e.before !== undefined) || (e.after !== null && e.after !== undefined);
    let toggle = h('span.muted', '—');
    let detail = null;
    if (has) {
      const did = uid('audit');
      detail = h('tr.audit-detail', { id: did, hidden: true, dataset: { detailOf: String(e.id) } },
        h('td', { colspan: '7' }, h('div.audit-diff', h('div', h('h4', 'Before'), pre(e.before)), h('div', h('h4', 'After'), pre(e.after)))));
      toggle = h('button.small', { type: 'button', 'aria-expanded': 'false', 'aria-controls': did }, keys.length ? `Show (changed: ${keys.join(', ')})` : 'Show');
      toggle.addEventListener('click', () => {
        const open = detail.hidden;
        detail.hidden = !open;
        toggle.setAttribute('aria-expanded', String(open));
      });
    }
    body.appendChild(h('tr', { dataset: { id: String(e.id), action: e.action || '', object: e.object || '' } },
      h('td.nowrap', { title: fmtAgo(e.at) }, fmtTime(e.at)), h('td', e.actor || '—'), h('td', e.via ? badge(e.via, 'neutral') : '—'),
      h('td', e.addr ? h('code', e.addr) : '—'), h('td', h('code', e.action || '')),
      h('td', e.class || e.object ? [e.class ? h('span.muted', `${e.class} `) : null, e.object ? `“${e.object}”` : ''] : '—'),
      h('td', toggle)));
    if (detail) body.appendChild(detail);
  }
  root.appendChild(entries.length ? h('table.data.audit',
    h('thead', h('tr', ['When', 'Who', 'Via', 'Address', 'Action', 'Object', 'Before / after'].map((x) => h('th', { scope: 'col' }, x)))), body)
    : h('p.empty', before ? 'No older entries.' : 'Nothing recorded yet.'));
  const pager = h('div.pager');
  if (before) pager.appendChild(link(mkq(''), 'Newest entries'));
  if (r && r.next_before !== null && r.next_before !== undefined) pager.appendChild(link(mkq(r.next_before), 'Older entries'));
  root.appendChild(pager);
}

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
