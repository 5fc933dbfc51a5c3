// lib/api.js: the client of the JSON API (docs/api.md): api/get/post/put/del, the
// signed-in session and its role checks (can, allow, roleNotice), API errors and config
// diagnostics as notices, the catalog of the server, and the shared look-ups of
// destinations and properties. Owns the in-memory session (user, CSRF token) and the
// app state (status, models, catalog). A 401 hands over to pages/session.js.
// Imported by app.js and every module under pages/.
import { badge, h } from './dom.js';
import { resyncSession, sessionLost } from '../pages/session.js';

export const API = '/api/v1';

// ---------------------------------------------------------------- API client

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

// Who is signed in (GET /api/v1/session), and the CSRF token every change made with
// the session cookie must send. Kept in memory only: the page and the browser's storage
// never hold a credential (the cookie is HttpOnly); a reload asks the server again.
export const session = { user: null, csrf: '', setupPending: false };
export const ROLE_RANK = { viewer: 1, editor: 2, admin: 3 };
export const ROLE_HELP = {
  viewer: 'Viewers see everything (but the keys, the team and the audit log) and change nothing.',
  editor: 'Editors also change models, sources, properties, groups, destinations and schedules, preview plans and start runs.',
  admin: 'Admins also connect Braze apps (they hold the API keys), manage the team and read the audit log.',
};
// May the signed-in user do what needs role?
export function can(role) { return !!session.user && (ROLE_RANK[session.user.role] || 0) >= ROLE_RANK[role]; }
export function roleNote(role) { return `Needs the ${role} role; you are signed in as ${session.user ? session.user.role : 'nobody'}.`; }
// A control the signed-in user's role cannot use: disabled, the reason as its tooltip.
export function allow(el, role) {
  if (!can(role)) {
    el.disabled = true;
    el.title = roleNote(role);
    el.dataset.needsRole = role;
  }
  return el;
}
// Above a form the user may look at but not save.
export function roleNotice(role, what) {
  if (can(role)) return null;
  return h('div.notice.info', { dataset: { needsRole: role } },
    h('strong', 'Read only. '), `${what} needs the ${role} role; you are signed in as ${session.user ? session.user.role : 'nobody'}. An admin can give you another role.`);
}

// opts.auth: a sign-in route, whose 401 is an answer for its form (not "signed out").
// The versions (ETags) of the config objects and files this page loaded: a save or a
// delete sends the one it was made to (If-Match), so that a change somebody else saved
// meanwhile is not overwritten: the server answers 412 and nothing is written
// (docs/api.md "Concurrent edits").
const versions = new Map();
function versioned(path) {
  const p = path.split('?')[0];
  return /^\/(config\/[a-z]+\/[^/]+|files\/[^/]+)$/.test(p) ? p : null;
}

export async function api(method, path, body, opts = {}) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET' && session.csrf) headers['X-CSRF-Token'] = session.csrf;
  const vkey = versioned(path);
  if (vkey && (method === 'PUT' || method === 'DELETE') && versions.has(vkey)) headers['If-Match'] = versions.get(vkey);
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
  if (vkey && res.ok) {
    const etag = res.headers.get('ETag');
    if (method === 'DELETE') versions.delete(vkey);
    else if (etag) versions.set(vkey, etag);
  }
  if (!res.ok) {
    const err = new ApiError(res.status, data);
    const ra = Number(res.headers.get('Retry-After'));
    if (ra > 0) err.retryAfter = ra;
    throw err;
  }
  return data;
}
export const get = (p) => api('GET', p);
export const post = (p, b) => api('POST', p, b); // no body when b is undefined (routes such as /apps/{id}/test take none)
export const put = (p, b) => api('PUT', p, b);
export const del = (p) => api('DELETE', p);
// A paginated list answer, or a plain array: always an array of items.
export const itemsOf = (x) => (Array.isArray(x) ? x : (x && x.items) || []);
// Runs as the UI shows them. A run that is going may be listed twice, once by the
// scheduler (id null, with trigger and progress) and once by the state store (with its
// id): they are merged into one row.
export function runsOf(x) {
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
export function errorNotice(err, title) {
  const b = (err && err.body) || {};
  return h('div.notice.error', { role: 'alert' },
    h('h2', title || 'Something went wrong'),
    h('p', h('strong', b.error || (err && err.message) || 'error'), err && err.status ? ` (HTTP ${err.status})` : ''),
    b.detail ? h('p.break', String(b.detail)) : null,
    b.hint ? h('p', h('strong', 'Hint: '), String(b.hint)) : null,
    Array.isArray(b.diagnostics) && b.diagnostics.length ? diagList(b.diagnostics) : null);
}

export function diagLocation(d) {
  let s = d.file || '';
  if (s && d.line) s += `:${d.line}`;
  if (s && d.line && d.col) s += `:${d.col}`;
  return s;
}
// Diagnostics: the message and what to do; where in the files (file, line, field) is
// technical detail, behind a toggle.
export function diagList(diags) {
  return h('ul.diagnostics', diags.map((d) => h('li',
    d.severity && d.severity !== 'error' ? [badge(d.severity, 'warn'), ' '] : null,
    h('strong', d.message || 'error'),
    d.hint ? h('span.diag-hint', h('em', 'What to do: '), d.hint) : null,
    diagLocation(d) || d.id || d.field ? h('details.small', h('summary', 'Technical detail'),
      h('span.help', [diagLocation(d), d.class || d.id ? ` ${d.class || ''} "${d.id || ''}"` : '', d.field ? ` ${d.field}` : ''].join(''))) : null)));
}

// ---------------------------------------------------------------- app state

export const state = {
  catalog: null,
  models: [],
  status: null,
};
export const FALLBACK_SYNC_MODES = [
  { id: 'sync', label: 'Sync', help: 'Create, update and delete Braze users to mirror the model.' },
  { id: 'additive', label: 'Additive', help: 'Create and update Braze users, never delete.' },
  { id: 'enrich', label: 'Enrich', help: 'Update only users that already exist in Braze.' },
];
export const FALLBACK_BRAZE_FIELDS = ['email', 'first_name', 'last_name', 'phone', 'country', 'home_city', 'gender', 'dob', 'language', 'time_zone',
  'email_subscribe', 'push_subscribe', 'image_url', 'date_of_first_session', 'date_of_last_session', 'facebook', 'twitter',
  'marked_email_as_spam_at', 'email_open_tracking_disabled', 'email_click_tracking_disabled'].map((name) => ({ name, type: name === 'email' ? 'email' : name === 'phone' ? 'phoneNumber' : /tracking/.test(name) ? 'boolean' : 'string' }));

export async function catalog() {
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
export function syncModeLabel(id) {
  const m = ((state.catalog && state.catalog.sync_modes) || FALLBACK_SYNC_MODES).find((x) => x.id === id);
  return m ? m.label || id : id || '—';
}

// ---------------------------------------------------------------- shared data

export async function destinationsById() {
  const ds = itemsOf(await get('/destinations'));
  return Object.fromEntries(ds.map((d) => [d.id, d]));
}
export function destName(map, id) { return map[id] ? map[id].name || id : id; }
export function propLabel(p) { return `${p.key} (${p.type})`; }
export function primaryKeyProp(model) {
  const props = model.properties || [];
  return props.find((p) => p.primary_key) || props.find((p) => p.id === model.primary_key || p.key === model.primary_key) || null;
}
