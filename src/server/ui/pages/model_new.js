// pages/model_new.js: "New model" (#/data/models/new): a model made from one table in one
// step. A Model alone does not validate (it needs a primary source and a unique key
// property), so this form writes the Model, its Source and the key property (and an
// optional unique email property) together with POST /api/v1/config (docs/api.md
// "Several objects in one write"): all are written or none. The table is picked from
// the app's tables with a preview of its first rows (GET /apps/{app}/tables, as the
// source form); the key's type is guessed from those rows and can be changed.
// Diagnostics of the write are shown at the control of the object and field they name.
// Routed by app.js; every text from the API is inserted as text.
import { append, clear, enc, field, fmtValue, h, idFollowsName, link, pageHeader, route, slug, table } from '../lib/dom.js';
import { allow, can, errorNotice, get, post, roleNotice } from '../lib/api.js';
import { showDiagnostics } from '../lib/forms.js';
import { go } from '../app.js';

const MODEL_TYPES = [['profile', 'People (profile)'], ['account', 'Accounts'], ['event', 'Events'], ['custom', 'Something else']];
// The objects of the write, in order, and the prefix of their controls' data-field.
const PARTS = ['model', 'source', 'key', 'email'];
const EMAIL_RE = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;

// The type a column's sample values suggest: integer, float, boolean, email, date or string.
export function guessType(values) {
  const vs = values.filter((v) => v !== null && v !== undefined && String(v).trim() !== '').map((v) => String(v).trim());
  if (!vs.length) return 'string';
  const all = (re) => vs.every((v) => re.test(v));
  if (all(/^-?(0|[1-9]\d{0,17})$/)) return 'integer'; // "007" keeps its zeros: a string
  if (all(/^-?\d+(\.\d+)?([eE][-+]?\d+)?$/)) return 'float';
  if (all(/^(true|false)$/i)) return 'boolean';
  if (all(EMAIL_RE)) return 'email';
  if (all(/^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/)) return 'date';
  return 'string';
}

// The column most likely to hold email addresses: by name, else by its values; '' if none.
function emailGuess(s) {
  const byName = s.columns.find((c) => /^(e-?mail|email_address|mail)$/i.test(c)) || s.columns.find((c) => /mail/i.test(c));
  if (byName) return byName;
  const i = s.columns.findIndex((_c, k) => s.rows.length && guessType(s.rows.map((r) => r[k])) === 'email');
  return i >= 0 ? s.columns[i] : '';
}

// The app type a source's type is named after: a snowflake-keypair app holds snowflake-import-* sources.
function srcAppType(a) {
  return a.type === 'snowflake-keypair' ? 'snowflake' : a.type;
}

// The page's steps share one state object `st`: the apps that can hold the table, the
// property types, the form's controls, `sample` (the table's first rows, as GET
// /apps/{app}/tables?table= answered) and `seq`, the number of the latest request.
export async function viewNewModel(root, _params, _query, ctx) {
  const [apps, cat] = await Promise.all([get('/apps'), get('/catalog')]);
  append(root, pageHeader('New model',
    'A model is a kind of record: people, accounts, … Pick the table its records are in and the column that tells them apart.'));
  if (!can('editor')) { root.appendChild(roleNotice('editor', 'Creating models')); return; }
  const srcTypes = new Set(cat.source_types || []);
  const st = {
    ctx, sample: null, seq: 0,
    srcApps: apps.filter((a) => srcTypes.has(`${srcAppType(a)}-import-table`)),
    propTypes: cat.property_types && cat.property_types.length ? cat.property_types : ['string', 'integer', 'float', 'boolean', 'email', 'date'],
  };
  newModelControls(st);
  st.app.addEventListener('change', () => loadTables(st));
  st.tbl.addEventListener('change', () => loadPreview(st));
  st.keyCol.addEventListener('change', () => {
    guessKeyType(st);
    if (st.emailCol.value === st.keyCol.value) st.emailCol.value = '';
  });
  const form = newModelForm(st);
  form.addEventListener('submit', (e) => submitNewModel(st, form, e));
  root.appendChild(form);
  await loadTables(st);
}

// The form's controls, into st; the ID follows the name until it is typed in.
function newModelControls(st) {
  const name = h('input', { type: 'text', required: true, autocomplete: 'off', 'aria-required': 'true' });
  const id = h('input', { type: 'text', required: true, pattern: '[A-Za-z0-9_-]{1,100}', spellcheck: 'false', autocomplete: 'off' });
  idFollowsName(name, id, true);
  st.name = name;
  st.id = id;
  st.kind = h('select', MODEL_TYPES.map(([v, l]) => h('option', { value: v }, l)));
  st.app = h('select', st.srcApps.map((a) => h('option', { value: a.id }, a.name || a.id)));
  st.tbl = h('select');
  st.keyCol = h('select');
  st.keyType = h('select', st.propTypes.map((t) => h('option', { value: t }, t)));
  st.typeHelp = h('span');
  st.keyWarning = h('p.help.warn', { id: 'key-warning', role: 'status' });
  st.emailCol = h('select');
  st.preview = h('div', { id: 'new-model-preview', 'aria-live': 'polite' });
  st.diag = h('div');
}

function columnValues(st, col) {
  const { sample } = st;
  const i = sample ? sample.columns.indexOf(col) : -1;
  return i < 0 ? [] : sample.rows.map((r) => r[i]);
}
function guessKeyType(st) {
  const { sample } = st;
  const vals = columnValues(st, st.keyCol.value);
  const t = guessType(vals);
  st.keyType.value = st.propTypes.includes(t) ? t : 'string';
  st.typeHelp.textContent = sample && sample.rows.length ? `Guessed from the first ${sample.rows.length} rows; change it if it is wrong.` : '';
  // a key that repeats, or is empty, in the first rows cannot tell the records apart
  const seen = new Set();
  const dup = vals.find((v) => v !== null && v !== '' && (seen.has(String(v)) || !seen.add(String(v))));
  const empty = vals.some((v) => v === null || v === '');
  st.keyWarning.textContent = dup !== undefined ? `“${dup}” appears twice in the first rows: this column may not tell the records apart.`
    : empty ? 'Some of the first rows have no value in this column: those records would be left out.' : '';
}
// Answers can come back out of order: only the latest request (st.seq) draws.
async function loadTables(st) {
  const { tbl, preview, keyCol, emailCol, app } = st;
  const mine = ++st.seq;
  clear(tbl); clear(preview); clear(keyCol); clear(emailCol);
  st.sample = null;
  if (!app.value) return;
  try {
    const t = await get(`/apps/${enc(app.value)}/tables`);
    if (mine !== st.seq || !st.ctx.alive()) return;
    for (const n of t.tables) tbl.appendChild(h('option', { value: n }, n));
    if (!t.tables.length) preview.appendChild(h('p.empty', 'This app has no tables.'));
    await loadPreview(st);
  } catch (e) {
    if (mine !== st.seq) return;
    preview.appendChild(e.status === 403 ? h('div.notice.info', h('strong', 'Tables not shown: '), (e.body && e.body.detail) || e.message) : errorNotice(e, 'Cannot list the tables'));
  }
}
async function loadPreview(st) {
  const { tbl, preview, keyCol, emailCol, app } = st;
  const mine = ++st.seq;
  clear(preview); clear(keyCol); clear(emailCol);
  st.sample = null;
  if (!tbl.value) return;
  let s;
  try {
    s = await get(`/apps/${enc(app.value)}/tables?table=${enc(tbl.value)}&limit=5`);
  } catch (e) {
    if (mine === st.seq) clear(preview).appendChild(errorNotice(e, 'Cannot read the table'));
    return;
  }
  if (mine !== st.seq || !st.ctx.alive()) return;
  st.sample = s;
  for (const c of s.columns) keyCol.appendChild(h('option', { value: c, selected: c === s.key_guess }, c));
  const eg = emailGuess(s);
  emailCol.appendChild(h('option', { value: '' }, 'None'));
  for (const c of s.columns) if (c !== keyCol.value) emailCol.appendChild(h('option', { value: c, selected: c === eg }, c));
  guessKeyType(st);
  preview.appendChild(table(s.columns, s.rows.map((r) => r.map((v) => h('span.break', fmtValue(v)))),
    { caption: `The first ${s.rows.length} rows of ${s.table}`, empty: 'The table is empty.' }));
}

// The form; its Create button is st.submit.
function newModelForm(st) {
  const { name, id, kind, app, srcApps, tbl, preview, keyCol, keyType, typeHelp, keyWarning, emailCol, diag } = st;
  const f = (label, ctl, help, part, fld) => field(label, ctl, help, { field: `${part}.${fld}` });
  st.submit = allow(h('button.primary', { type: 'submit' }, 'Create model'), 'editor');
  return h('form.form.card', { novalidate: true, 'aria-label': 'New model' },
    h('div.inline', f('Name', name, null, 'model', 'name'), f('ID', id, 'Made from the name; cannot be changed later.', 'model', 'id')),
    f('Kind of record', kind, null, 'model', 'type'),
    h('h2', 'Where the records are'),
    field('App', app, srcApps.length ? null : 'No database or file app yet: an admin connects one under Apps.', { field: 'source.appId' }),
    f('Table', tbl, null, 'source', 'options.table'),
    preview,
    h('h2', 'What identifies a record'),
    h('div.inline',
      field('Key column', keyCol, 'The column whose value is different for every record. It becomes the model’s key (the Braze external_id when a destination sends it).', { field: 'key.options.column' }),
      f('Key type', keyType, typeHelp, 'key', 'type')),
    keyWarning,
    field('Email column (optional)', emailCol, 'A second unique property, for finding records by email.', { field: 'email.options.column' }),
    diag,
    h('div.actions', st.submit, link(route('data'), 'Cancel')));
}

// The objects of the write, in the order of PARTS.
function objects(st) {
  const { id, srcApps, app, tbl, keyCol, name, kind, keyType, emailCol } = st;
  const mid = id.value.trim();
  const a = srcApps.find((x) => x.id === app.value);
  const srcId = `${mid}_${slug(tbl.value) || 'table'}`;
  const keyId = `${mid}_${slug(keyCol.value) || 'key'}`;
  const objs = [
    { class: 'Model', id: mid, name: name.value.trim(), type: kind.value },
    { class: 'Source', id: srcId, name: tbl.value, type: a ? `${srcAppType(a)}-import-table` : '', appId: app.value, modelId: mid,
      options: { table: tbl.value }, mapping: keyCol.value ? { [keyCol.value]: keyId } : {} },
    { class: 'Property', id: keyId, key: slug(keyCol.value) || keyCol.value, type: keyType.value, unique: true, sourceId: srcId,
      options: { column: keyCol.value, aggregationMethod: 'exact' } },
  ];
  if (emailCol.value) {
    objs.push({ class: 'Property', id: `${mid}_${slug(emailCol.value) || 'email'}`, key: 'email', type: 'email', unique: true,
      sourceId: srcId, options: { column: emailCol.value, aggregationMethod: 'exact' } });
  }
  return objs;
}
// What the form can say before asking the server (in the words of its labels).
function check(st) {
  const { name, id, app, tbl, keyCol } = st;
  const out = [];
  if (!name.value.trim()) out.push({ field: 'model.name', message: 'give the model a name' });
  if (!/^[A-Za-z0-9_-]{1,100}$/.test(id.value.trim())) out.push({ field: 'model.id', message: 'the ID may hold only letters, digits, “_” and “-”' });
  if (!app.value) out.push({ field: 'source.appId', message: 'pick the app the records are in' });
  else if (!tbl.value) out.push({ field: 'source.options.table', message: 'pick a table' });
  else if (!keyCol.value) out.push({ field: 'key.options.column', message: 'pick the key column' });
  return out;
}
// The server's diagnostics and errors, pointed at this form's controls by object and field.
function located(diags) {
  return diags.map((d) => {
    const part = PARTS[d.object];
    if (!part || !d.field) return part ? { ...d, field: null } : d;
    const fld = d.field === 'mapping' || d.field.startsWith('mapping.') ? (part === 'source' ? 'key.options.column' : d.field) : d.field;
    return { ...d, field: fld.startsWith('key.') ? fld : `${part}.${fld}` };
  });
}
// The diagnostics of a failed write: the server's, else one made from its error and the object it names.
function writeDiagnostics(st, err) {
  const b = err.body || {};
  let diags = Array.isArray(b.diagnostics) ? located(b.diagnostics) : null;
  if (!diags && err.status === 409 && b.object === 0) {
    diags = [{ field: 'model.id', message: `A model with the ID “${st.id.value.trim()}” already exists`, hint: 'change the ID (or the name, while the ID follows it)' }];
  } else if (!diags && typeof b.object === 'number' && PARTS[b.object]) {
    const what = b.object === 0 ? 'model.id' : b.object === 1 ? 'source.options.table' : b.object === 2 ? 'key.options.column' : 'email.options.column';
    diags = [{ field: what, message: b.error || err.message, hint: b.hint || null }];
  }
  return diags;
}
async function submitNewModel(st, form, e) {
  e.preventDefault();
  const problems = check(st);
  if (problems.length) { showDiagnostics(form, st.diag, problems, null); return; }
  st.submit.disabled = true;
  try {
    await post('/config', { mode: 'create', objects: objects(st) });
    go(route('models', st.id.value.trim()), `Model “${st.name.value.trim()}” created.`);
  } catch (err) {
    showDiagnostics(form, st.diag, writeDiagnostics(st, err), err);
  } finally {
    st.submit.disabled = false;
  }
}
