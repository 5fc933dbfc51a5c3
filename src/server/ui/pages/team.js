// pages/team.js: the team page for admins (#/team): users, roles, invitations.
// Routed by app.js.
import { append, badge, clear, enc, field, fmtAgo, fmtTime, formError, h, link, pageHeader, passwordInput, selfCheckedForm, table, toast, uid, userNameInput } from '../lib/dom.js';
import { ROLE_HELP, del, errorNotice, get, post, put, session } from '../lib/api.js';
import { go, render } from '../app.js';
import { ROLES, okNotice, roleSelect } from './account.js';
import { resyncSession } from './session.js';

// ---------------------------------------------------------------- team (admin)

export async function viewTeam(root, _p, _q, ctx) {
  const r = await get('/users');
  const users = (r && r.users) || [];
  append(root, pageHeader('Team', 'The people who may use joey, and what each may do.'));
  root.appendChild(h('ul.small', ROLES.map((x) => h('li', h('strong', x), ': ', ROLE_HELP[x]))));
  const out = h('div', { id: 'team-result', 'aria-live': 'polite' });

  // add
  root.appendChild(h('h2', { id: 'add-user-h' }, 'Add a person'));
  const name = userNameInput('new-user-name', 'off');
  const role = roleSelect('new-user-role', 'viewer', 'admin');
  const pw = passwordInput('new-user-password', 'new-password');
  const addOut = h('div', { id: 'add-user-result', 'aria-live': 'polite' });
  const addBtn = h('button.primary', { type: 'submit' }, 'Add user');
  root.appendChild(selfCheckedForm('form.form.card', { 'aria-labelledby': 'add-user-h' }, addOut, async () => {
    if (!name.value.trim()) return formError(addOut, 'Enter the user name.', name);
    if (pw.value.length < 10) return formError(addOut, 'The initial password needs at least 10 characters.', pw);
    addBtn.disabled = true;
    try {
      await post('/users', { name: name.value.trim(), role: role.value, password: pw.value });
      go('#/team', `Added “${name.value.trim()}” (${role.value}). Give them the password through a safe channel; they can change it under Account.`);
    } catch (err) {
      addBtn.disabled = false;
      addOut.appendChild(errorNotice(err, 'The user was not added'));
    }
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
      if (npw.value.length < 10) return formError(out, 'A password needs at least 10 characters.', npw);
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

