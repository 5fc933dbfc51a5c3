// pages/session.js: the pages shown without a session: sign-in, the one-time setup of
// the first admin, "session lost", and signing out; boot() asks the server who this
// browser is at start. Writes the session held by lib/api.js.
// Called by app.js (boot, render) and lib/api.js (sessionLost on a 401).
import { append, badge, clear, field, formError, h, passwordInput, plural, selfCheckedForm, userNameInput } from '../lib/dom.js';
import { api, errorNotice, session, state } from '../lib/api.js';
import { flash, parseHash, refreshNav, refreshStatus, render, stopTimers, view } from '../app.js';

// ---------------------------------------------------------------- sign-in, setup, sign-out

// The page frame without the app: no menu, no user; main is cleared for a form.
export function signedOutFrame() {
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

export function fmtWait(s) {
  if (!s) return 'a while';
  if (s < 90) return plural(Math.ceil(s), 'second');
  return `${Math.ceil(s / 60)} minutes`;
}

// An API error of a sign-in form as sentences a person understands.
export function signInError(e) {
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
export function showLogin(opts = {}) {
  const shown = document.getElementById('login-form');
  if (shown && !document.getElementById('setup-form')) {
    const n = document.getElementById('login-notice');
    if (opts.notice) { n.className = `notice ${opts.kind || 'info'}`; n.textContent = opts.notice; n.hidden = false; }
    return;
  }
  const main = signedOutFrame();
  const user = userNameInput('login-user', 'username');
  const pw = passwordInput('login-password', 'current-password');
  const out = h('div', { id: 'login-error', 'aria-live': 'assertive' });
  const btn = h('button.primary', { type: 'submit' }, 'Sign in');
  const form = selfCheckedForm('form.form.card.login', { id: 'login-form' }, out, async () => {
    for (const el of [user, pw]) el.removeAttribute('aria-invalid');
    const empty = [user, pw].filter((el) => !el.value);
    if (empty.length) {
      empty.forEach((el) => el.setAttribute('aria-invalid', 'true'));
      return formError(out, 'Enter your user name and your password.', empty[0]);
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
export function showSetup(token) {
  const main = signedOutFrame();
  const user = userNameInput('setup-user', 'username', 'admin');
  const pw = passwordInput('setup-password', 'new-password');
  const pw2 = passwordInput('setup-password2', 'new-password');
  const out = h('div', { id: 'setup-error', 'aria-live': 'assertive' });
  const btn = h('button.primary', { type: 'submit' }, 'Create admin and sign in');
  const form = selfCheckedForm('form.form.card.login', { id: 'setup-form' }, out, async () => {
    if (!user.value.trim()) return formError(out, 'Choose a user name.', user);
    if (pw.value.length < 10) return formError(out, 'The password needs at least 10 characters.', pw);
    if (pw.value !== pw2.value) return formError(out, 'The two passwords differ.', pw2);
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
export function sessionLost(data) {
  const was = !!session.user;
  session.user = null;
  session.csrf = '';
  const expired = data && /session has ended/i.test(data.error || '');
  showLogin(expired ? { notice: 'Your session has ended. Sign in again to continue where you were.', kind: 'warn' }
    : was ? { notice: 'You are no longer signed in. Sign in again to continue where you were.', kind: 'warn' } : {});
}

// Ask the server who this browser is now; the header and the menu follow a change.
// false: nobody (the sign-in page shows).
export async function resyncSession() {
  let s;
  try { s = await api('GET', '/session', undefined, { auth: true }); } catch { return false; }
  if (!s.user) { sessionLost({ error: s.session_expired ? 'your session has ended' : '' }); return false; }
  const changed = !session.user || s.user.name !== session.user.name || s.user.role !== session.user.role;
  session.user = s.user;
  session.csrf = s.csrf || '';
  if (changed) { drawUserBox(); refreshNav(parseHash().hash); }
  return true;
}

export function signedIn(user, csrf) {
  session.user = user;
  session.csrf = csrf || '';
  state.catalog = null;
  document.body.classList.remove('signed-out');
  drawUserBox();
  render.last = undefined;
  refreshStatus();
  render();
}

export function drawUserBox() {
  const user = session.user;
  const ub = document.getElementById('userbox');
  clear(ub).hidden = false;
  append(ub, [
    h('a', { href: '#/account', id: 'user-link', title: 'Your account: password and API tokens' },
      h('span.visually-hidden', 'Signed in as '), h('strong', { id: 'user-name' }, user.name), ' ', badge(user.role, 'info')),
    h('button.small', { type: 'button', id: 'sign-out', on: { click: signOut } }, 'Sign out'),
  ]);
}

export async function signOut() {
  try { await api('DELETE', '/session', undefined, { auth: true }); } catch { /* gone already: signed out anyway */ }
  session.user = null;
  session.csrf = '';
  state.status = null;
  state.catalog = null;
  history.replaceState(null, '', `${location.pathname}${location.search}#/`);
  showLogin({ notice: 'You have signed out.', kind: 'ok' });
}

// "#setup=<token>" in the address: take it, and take it out of the address bar and history.
export function takeSetupToken() {
  const m = /^#setup=([^&]*)/.exec(location.hash);
  if (!m) return '';
  history.replaceState(null, '', `${location.pathname}${location.search}`);
  try { return decodeURIComponent(m[1]); } catch { return m[1]; }
}

export async function boot() {
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

