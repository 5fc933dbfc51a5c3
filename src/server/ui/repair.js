// repair.js: config errors in plain words (root cause first, the technical detail behind
// a toggle) and the repair page: the config files as text, saved through the API's
// validation (PUT /api/v1/files/{path}), so an editor can fix a config that is broken,
// also one broken at start (`joey serve` then runs in repair mode). Text from the API is
// only ever inserted as text.
import { h as el } from './lib/dom.js';

// One diagnostic in plain words: where (object or file and line), then what.
export function plainDiag(d) {
  const where = d.class && d.id ? `${d.class} “${d.id}”` : d.file ? `The file ${d.file}${d.line ? `, line ${d.line}` : ''}` : 'The configuration';
  let m = String(d.message || 'error');
  let what;
  const syn = /^syntax error: (.*)$/.exec(m);
  const unk = /^unknown (\w+) "(.*)"$/.exec(m);
  if (syn) what = `has a typing mistake (${syn[1].replace(/found ','/, 'found an extra comma').replace(/^expected /, 'expected ')}), so nothing in this file could be read`;
  else if (unk) what = `refers to the ${unk[1].toLowerCase()} “${unk[2]}”, which does not exist${d.follow_on ? ' (probably because of the typing mistake above)' : ''}`;
  else {
    m = m.replace(/^([a-z])/, (c) => c);
    what = m;
  }
  return { where, what, field: d.field };
}

// Diagnostics, root causes first: errors that are not follow-ons, then follow-ons, then warnings.
export function orderDiags(diags) {
  const rank = (d) => (d.severity === 'warning' ? 2 : d.follow_on ? 1 : 0);
  return (diags || []).map((d, i) => [d, i]).sort((a, b) => rank(a[0]) - rank(b[0]) || a[1] - b[1]).map(([d]) => d);
}

// The technical list (file:line:col, class "id", field, message, hint).
export function technicalList(diags) {
  return el('ul.diagnostics.mono.small', (diags || []).map((d) => el('li',
    [d.file ? `${d.file}${d.line ? `:${d.line}:${d.col || 0}` : ''}: ` : '', `${d.severity || 'error'}: `,
      d.class ? `${d.class}${d.id ? ` "${d.id}"` : ''}: ` : '', d.field ? `${d.field}: ` : '', d.message || '',
      d.hint ? ` (hint: ${d.hint})` : ''].join(''))));
}

// A config error ({error, detail, hint, diagnostics}) in plain words.
export function configErrorBody(ce, { repair }) {
  const diags = orderDiags(ce.diagnostics || []).filter((d) => d.severity !== 'warning');
  const roots = diags.filter((d) => !d.follow_on);
  const follow = diags.filter((d) => d.follow_on);
  const item = (d) => { const p = plainDiag(d); return el('li', el('strong', p.where), ` ${p.what}.`, d.hint ? el('span.small.muted', ` ${d.hint[0].toUpperCase()}${d.hint.slice(1)}.`) : null); };
  return [
    el('p', repair ? 'joey could not load its configuration when it started, so nothing runs until it is fixed.'
      : 'joey keeps running with the last configuration that loaded, until the files are fixed.'),
    roots.length ? el('ol.root-causes', roots.slice(0, 5).map(item)) : el('p', el('strong', ce.error || 'config error')),
    roots.length > 5 ? el('p.small', `and ${roots.length - 5} more.`) : null,
    follow.length ? el('p.small', `${follow.length} more ${follow.length === 1 ? 'error follows' : 'errors follow'} from ${roots.length === 1 ? 'this one' : 'these'} and should go away with ${roots.length === 1 ? 'it' : 'them'}.`) : null,
    el('details.small', el('summary', 'Technical detail'), el('p', ce.error || ''), technicalList(ce.diagnostics || [])),
  ];
}

// The repair page: the files with errors first, a text editor, save with validation.
export async function viewRepair(root, query, ctx, x) {
  const { api, can, refreshStatus, go } = x;
  const list = await api('GET', '/files');
  const files = list.files || [];
  const ce = list.config_error;
  root.appendChild(el('h1', { tabindex: '-1' }, 'Repair the configuration'));
  root.appendChild(el('p.subtitle', list.repair ? 'joey started with a configuration it could not load. Fix the files here; when they are valid, joey loads them and starts working.'
    : 'The configuration files as text. Each save is checked: a change that would break the configuration is not saved.'));
  if (ce) root.appendChild(el('div.notice.error', { role: 'alert' }, el('h2', 'What is wrong'), configErrorBody(ce, { repair: list.repair })));
  else root.appendChild(el('div.notice.ok', { role: 'status' }, 'The configuration is valid.'));
  // the file of the root cause first (a file that does not parse), then any with errors
  const root0 = orderDiags(((ce && ce.diagnostics) || []).filter((d) => d.severity !== 'warning' && d.file))[0];
  const wanted = query.get('file') || (root0 && root0.file) || (files.find((f) => f.errors) || files[0] || {}).path;
  const picker = el('select', { id: 'repair-file' }, files.map((f) => {
    const o = el('option', { value: f.path }, `${f.path}${f.errors ? ` — ${f.errors} error${f.errors === 1 ? '' : 's'}` : ''}${f.admin_only ? ' (admins)' : ''}`);
    if (f.path === wanted) o.selected = true;
    return o;
  }));
  picker.addEventListener('change', () => go(`#/repair?file=${encodeURIComponent(picker.value)}`));
  root.appendChild(el('div.field', el('label', { for: 'repair-file' }, 'File'), picker));
  if (!wanted) { root.appendChild(el('p.empty', 'The configuration directory has no files yet.')); return; }
  const meta = files.find((f) => f.path === wanted) || {};
  if (meta.admin_only && !can('admin')) {
    root.appendChild(el('div.notice.info', 'This file holds a Braze app (its API key), so only an admin can open it.'));
    return;
  }
  const file = await api('GET', `/files/${encodeURIComponent(wanted)}`);
  if (!ctx.alive()) return;
  const fileDiags = orderDiags(((ce && ce.diagnostics) || []).filter((d) => d.file === wanted));
  const ta = el('textarea.mono.editor', { id: 'repair-text', spellcheck: 'false', rows: '22', 'aria-describedby': 'repair-help' });
  ta.value = file.text;
  const out = el('div', { id: 'repair-result', 'aria-live': 'polite' });
  const save = el('button.primary', { type: 'submit', id: 'repair-save' }, 'Check and save');
  if (!can('editor')) { save.disabled = true; save.title = 'Needs the editor role'; }
  const form = el('form.form', {
    on: {
      submit: async (e) => {
        e.preventDefault();
        save.disabled = true;
        out.textContent = '';
        try {
          const r = await api('PUT', `/files/${encodeURIComponent(wanted)}`, { text: ta.value });
          if (r.valid) {
            out.appendChild(el('div.notice.ok', { role: 'status' }, el('strong', 'Saved. The configuration is valid again'), ' and joey loaded it.'));
            await refreshStatus();
          } else {
            out.appendChild(el('div.notice.warn', { role: 'status' }, el('strong', 'Saved, but the configuration still has errors:'),
              configErrorBody({ error: 'still not valid', diagnostics: r.diagnostics }, { repair: true })));
            await refreshStatus();
          }
        } catch (err) {
          const b = (err && err.body) || {};
          // only a 422 is about the text; another refusal (412: the file changed since it
          // was opened, 403, 400) says what it is, with its hint
          out.appendChild(err.status === 422
            ? el('div.notice.error', { role: 'alert' }, el('strong', 'Not saved: this change would break the configuration.'),
              b.diagnostics ? configErrorBody({ error: b.error, diagnostics: b.diagnostics }, { repair: false }) : el('p', b.error || err.message))
            : el('div.notice.error', { role: 'alert' }, el('strong', `Not saved: ${b.error || err.message}.`),
              b.hint ? el('p', el('strong', 'Hint: '), String(b.hint)) : null));
        } finally { save.disabled = !can('editor'); }
      },
    },
  },
  fileDiags.length ? el('div.notice.warn', el('h2', 'In this file'), el('ul', fileDiags.map((d) => { const p = plainDiag(d); return el('li', d.line ? `Line ${d.line}: ` : '', p.what, '.'); }))) : null,
  el('label', { for: 'repair-text' }, `Text of ${wanted}`),
  ta,
  el('p.help', { id: 'repair-help' }, 'JSON, as Grouparoo wrote it. joey checks the whole configuration before it saves.'),
  el('div.actions', save));
  root.appendChild(form);
  root.appendChild(out);
}
