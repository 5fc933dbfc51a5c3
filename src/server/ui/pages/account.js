// pages/account.js: the signed-in user's own account (#/account): password, API tokens
// (a new token shown once).
// Routed by app.js.
import { append, badge, clear, enc, field, fmtAgo, fmtTime, formError, h, pageHeader, passwordInput, selfCheckedForm, table, toast } from '../lib/dom.js';
import { ROLE_HELP, ROLE_RANK, del, errorNotice, get, post, session } from '../lib/api.js';

// ---------------------------------------------------------------- account

export const ROLES = ['viewer', 'editor', 'admin'];
export function roleSelect(id, value, upTo, label) {
  return h('select', { id, 'aria-label': label },
    ROLES.filter((r) => ROLE_RANK[r] <= ROLE_RANK[upTo]).map((r) => h('option', { value: r, selected: r === value }, r)));
}
export function okNotice(...kids) { return h('div.notice.ok', { role: 'status' }, kids); }

export async function viewAccount(root, _p, _q, ctx) {
  const me = session.user;
  append(root, pageHeader('Account', `Signed in as “${me.name}”, ${me.role}.`));
  root.appendChild(h('p', ROLE_HELP[me.role] || ''));

  // password
  root.appendChild(h('h2', { id: 'password-h' }, 'Change your password'));
  const cur = passwordInput('pw-current', 'current-password');
  const nw = passwordInput('pw-new', 'new-password');
  const nw2 = passwordInput('pw-new2', 'new-password');
  const pwOut = h('div', { id: 'password-result', 'aria-live': 'polite' });
  const pwBtn = h('button.primary', { type: 'submit' }, 'Change password');
  root.appendChild(selfCheckedForm('form.form.card', { 'aria-labelledby': 'password-h' }, pwOut, async () => {
    if (!cur.value) return formError(pwOut, 'Enter your current password.', cur);
    if (nw.value.length < 10) return formError(pwOut, 'The new password needs at least 10 characters.', nw);
    if (nw.value !== nw2.value) return formError(pwOut, 'The two new passwords differ.', nw2);
    pwBtn.disabled = true;
    try {
      const r = await post('/session/password', { current_password: cur.value, new_password: nw.value });
      if (r && r.csrf) session.csrf = r.csrf;
      cur.value = nw.value = nw2.value = '';
      pwOut.appendChild(okNotice(h('strong', 'Password changed. '), 'You stay signed in here; your other sessions have ended.'));
    } catch (err) {
      pwOut.appendChild(errorNotice(err, 'The password was not changed'));
    } finally { pwBtn.disabled = false; }
  }, field('Current password', cur), field('New password', nw, 'At least 10 characters.'), field('Repeat the new password', nw2), h('div.actions', pwBtn), pwOut));

  // API tokens
  root.appendChild(h('h2', { id: 'tokens-h' }, 'Personal API tokens'));
  root.appendChild(h('p', 'For scripts and automation. A program sends the token as “Authorization: Bearer <token>” and acts as you, with the token’s role (at most yours). joey keeps only a hash: you see a token once, when you make it. Revoke a token you no longer need.'));
  const newBox = h('div', { id: 'new-token-box', 'aria-live': 'polite' });
  const label = h('input', { type: 'text', id: 'token-label', autocomplete: 'off', required: true, placeholder: 'e.g. nightly export script' });
  const role = roleSelect('token-role', 'viewer', me.role);
  const mkBtn = h('button.primary', { type: 'submit' }, 'Create token');
  const listBox = h('div', { id: 'tokens' });
  root.appendChild(selfCheckedForm('form.form.card', { 'aria-labelledby': 'tokens-h' }, newBox, async () => {
    if (!label.value.trim()) { label.setAttribute('aria-invalid', 'true'); return formError(newBox, 'Say what the token is for (its label).', label); }
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
export function tokenOnce(t) {
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

