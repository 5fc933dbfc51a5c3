// lib/forms.js: what the config forms share: the body of a config object as the API
// wants it back, deleting a config object, and showing 422 diagnostics next to the
// form and at the control each one names. Holds no state.
// Imported by app.js (handed to alerts.js, audiences.js, editors.js) and the form pages.
import { clear, enc, h, toast, uid } from './dom.js';
import { api, diagList } from './api.js';
import { go } from '../app.js';
import { saveConfig } from '../safety.js';

export function configObjectBody(o) {
  const c = { ...o };
  delete c.file; // the answer's "file" is not part of the object
  return c;
}

export async function removeObject(cls, id, back) {
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
export function showDiagnostics(form, box, diags, err) {
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
export function findField(form, f) {
  const all = [...form.querySelectorAll('[data-field]')];
  let best = null;
  for (const e of all) {
    const df = e.dataset.field;
    if (df === f) return e;
    if (f.startsWith(df + '.') && (!best || df.length > best.dataset.field.length)) best = e;
  }
  return best;
}

