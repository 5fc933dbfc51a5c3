// editors.js: the Data pages of joey's web UI: every model with its sources and
// properties, and the forms an editor creates and changes them with. A source is picked
// from its app's tables with a preview of the first rows and the key column; a property
// from its source's columns with sample values, an aggregation, filters and a type
// (GET /apps/{app}/tables: an app's file outside joey serve's data directory is never
// shown). Saving writes Grouparoo JSON through the config API, validated as `joey
// validate` would. app.js hands in its helpers; every text from the API is inserted as
// text, never parsed as HTML. A source reads a table or, for apps whose type has a
// query source, an SQL query previewed with POST /apps/{app}/preview (query_source.js);
// a property of a query source picks from its query's columns.
import { fillKeyColumns, isQuerySource, previewErrorNotice, previewQuery, previewTable, queryAppTypes, readsChoice } from './query_source.js';

const AGGS = [
  ['exact', 'its value (one row per record)'],
  ['count', 'the number of rows'],
  ['sum', 'the sum'],
  ['average', 'the average'],
  ['min', 'the smallest'],
  ['max', 'the largest'],
  ['most recent value', 'the most recent value'],
  ['least recent value', 'the oldest value'],
];
const FILTER_OPS = [
  ['eq', 'is'], ['ne', 'is not'], ['gt', 'is more than'], ['gte', 'is at least'], ['lt', 'is less than'], ['lte', 'is at most'],
  ['substring', 'contains'], ['notSubstring', 'does not contain'], ['in', 'is one of (comma separated)'], ['exists', 'has a value'], ['notExists', 'has no value'],
];
const MODEL_TYPES = [['profile', 'People (profile)'], ['account', 'Accounts'], ['event', 'Events'], ['custom', 'Something else']];
const SOURCE_APPS = ['sqlite', 'postgres', 'mysql', 'csv', 'redshift', 'clickhouse'];
// Warehouse apps whose connectors list tables and preview queries too (#16).
const WAREHOUSE_SOURCE_APPS = ['snowflake', 'snowflake-keypair', 'bigquery'];
// The app type a source's type is named after: a snowflake-keypair app holds snowflake-import-* sources.
function srcAppType(a) {
  return a.type === 'snowflake-keypair' ? 'snowflake' : a.type;
}

// app.js's helpers, set once by editorViews (the views below run only after it).
let h, append, clear, route, link, field, slug, ID_RE, badge, can, allow, roleNotice, get, post, put,
  errorNotice, pageHeader, table, showDiagnostics, removeObject, go, enc, configObjectBody, fmtValue;

export function editorViews(ui) {
  ({ h, append, clear, route, link, field, slug, ID_RE, badge, can, allow, roleNotice, get, post, put,
    errorNotice, pageHeader, table, showDiagnostics, removeObject, go, enc, configObjectBody, fmtValue } = ui);
  return { viewData, viewModelForm, viewSourceForm, viewPropertyForm };
}

async function viewData(root) {
  const models = await get('/models');
  const edit = can('editor');
  append(root, pageHeader('Data', 'Models, the sources they are read from and their properties.',
    edit ? link(route('data', 'models', 'new'), 'New model') : null));
  if (!edit) root.appendChild(roleNotice('editor', 'Changing models, sources and properties'));
  for (const mm of models) {
    const m = await get(`/models/${enc(mm.id)}`);
    root.appendChild(h('h2', { id: `data-${m.id}` }, m.name || m.id, ' ', edit ? h('span.small', link(route('data', 'models', m.id), 'Edit model', h('span.visually-hidden', ` ${m.name || m.id}`))) : null));
    root.appendChild(h('h3', 'Sources'));
    root.appendChild(table(['Source', 'App', 'Reads', 'Key column'], (m.sources || []).map((s) => [
      link(route('data', m.id, 'sources', s.id), s.name || s.id, s.primary ? [' ', badge('primary', 'info')] : null), s.app || '—',
      s.options && s.options.table ? `table ${s.options.table}` : 'a query',
      Object.entries(s.mapping || {}).map(([c, p]) => `${c} → ${p}`).join(', ') || '—']), { empty: 'No sources.' }));
    if (edit) root.appendChild(h('p', link(route('data', m.id, 'sources', 'new'), `Add a source to ${m.name || m.id}`)));
    root.appendChild(h('h3', 'Properties'));
    const srcName = Object.fromEntries((m.sources || []).map((s) => [s.id, s.name || s.id]));
    root.appendChild(table(['Property', 'Type', 'From', 'Read as'], (m.properties || []).map((p) => [
      link(route('data', m.id, 'properties', p.id), p.key, p.unique ? [' ', badge('unique')] : null), p.type, srcName[p.source] || p.source || '—',
      p.options && p.options.column ? `${p.options.column}${p.options.aggregationMethod && p.options.aggregationMethod !== 'exact' ? ` (${p.options.aggregationMethod})` : ''}${(p.filters || []).length ? `, ${p.filters.length} filter(s)` : ''}` : '—']),
    { empty: 'No properties.' }));
    if (edit) root.appendChild(h('p', link(route('data', m.id, 'properties', 'new'), `Add a property to ${m.name || m.id}`)));
  }
}

function idField(isNew, value, nameInput) {
  const id = h('input', { type: 'text', value: value || '', readOnly: !isNew, required: true, pattern: '[A-Za-z0-9_-]{1,191}', spellcheck: 'false', autocomplete: 'off' });
  let touched = !isNew;
  id.addEventListener('input', () => { touched = true; });
  if (nameInput) nameInput.addEventListener('input', () => { if (!touched) id.value = slug(nameInput.value); });
  return id;
}
async function save(form, diag, cls, isNew, id, body, back, what) {
  try {
    if (isNew) await post(`/config/${cls}`, body);
    else await put(`/config/${cls}/${enc(id)}`, body);
    go(back, `${what} “${body.name || body.key || body.id}” saved.`);
  } catch (err) {
    showDiagnostics(form, diag, err.body && err.body.diagnostics, err);
  }
}
function actions(isNew, label, back, cls, id) {
  return h('div.actions', allow(h('button.primary', { type: 'submit' }, isNew ? `Create ${label}` : `Save ${label}`), 'editor'), link(back, 'Cancel'),
    !isNew && can('editor') ? h('button.danger', { type: 'button', on: { click: () => removeObject(cls, id, back) } }, `Delete ${label}`) : null);
}

// A table's first rows (GET /apps/{app}/tables?table=); null with a notice when not shown.
async function sample(appId, tbl, box, limit = 10) {
  try {
    return await get(`/apps/${enc(appId)}/tables?table=${enc(tbl)}&limit=${limit}`);
  } catch (e) {
    if (box) clear(box).appendChild(e.status === 403 ? h('div.notice.info', h('strong', 'Not shown: '), (e.body && e.body.detail) || e.message) : errorNotice(e, 'Cannot read the table'));
    return null;
  }
}

async function viewModelForm(root, { model: modelId }) {
  const isNew = !modelId;
  const raw = isNew ? null : await get(`/config/models/${enc(modelId)}`);
  const m = raw ? configObjectBody(raw) : { name: '', type: 'profile' };
  append(root, pageHeader(isNew ? 'New model' : `Model: ${m.name || m.id}`, 'A model is a kind of record: people, accounts, …'));
  if (!can('editor')) root.appendChild(roleNotice('editor', 'Changing models'));
  const name = h('input', { type: 'text', value: m.name || '', required: true, autocomplete: 'off' });
  const id = idField(isNew, m.id, name);
  const type = h('select', MODEL_TYPES.map(([v, l]) => h('option', { value: v, selected: m.type === v }, l)));
  const diag = h('div');
  const back = route('data');
  const form = h('form.form.card', { novalidate: true },
    field('Name', name, null, { field: 'name' }), field('ID', id, isNew ? 'Cannot be changed later.' : null, { field: 'id' }),
    field('Kind of record', type, null, { field: 'type' }), diag, actions(isNew, 'model', back, 'models', modelId));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    save(form, diag, 'models', isNew, modelId, { ...m, id: id.value, class: 'Model', name: name.value, type: type.value }, back, 'Model');
  });
  root.appendChild(form);
}

// The source form. Its steps share one state object `st`: the page's arguments, the
// source being edited, its controls, and `seq`, the number of the latest request.
async function viewSourceForm(root, { model: modelId, source: sourceId }, _q, ctx) {
  const isNew = !sourceId;
  const [m, apps, raw, catalog] = await Promise.all([get(`/models/${enc(modelId)}`), get('/apps'), isNew ? null : get(`/config/sources/${enc(sourceId)}`), get('/catalog')]);
  const src = raw ? configObjectBody(raw) : { name: '', options: {}, mapping: {} };
  const st = { modelId, sourceId, isNew, ctx, m, src, queryTypes: queryAppTypes(catalog), seq: 0 };
  append(root, pageHeader(isNew ? `New source of ${m.name || m.id}` : `Source: ${src.name || src.id}`,
    'Pick the app and the table or SQL query to read, and the column that holds each record’s key.'));
  if (!can('editor')) root.appendChild(roleNotice('editor', 'Changing sources'));
  sourceControls(st, apps);
  st.app.addEventListener('change', () => showReads(st));
  st.reads.onChange(() => showReads(st));
  st.tbl.addEventListener('change', () => sourceTablePreview(st));
  st.previewBtn.addEventListener('click', () => sourceQueryPreview(st));
  root.appendChild(sourceForm(st));
  await showReads(st);
}

// The source form's controls, into st.
function sourceControls(st, apps) {
  const { src, m } = st;
  st.srcApps = apps.filter((a) => SOURCE_APPS.includes(a.type) || WAREHOUSE_SOURCE_APPS.includes(a.type));
  st.name = h('input', { type: 'text', value: src.name || '', required: true, autocomplete: 'off' });
  st.id = idField(st.isNew, src.id, st.name);
  st.app = h('select', st.srcApps.map((a) => h('option', { value: a.id, selected: a.id === src.appId }, `${a.name || a.id} (${a.type})`)));
  st.reads = readsChoice(isQuerySource(src));
  st.tbl = h('select', { 'aria-describedby': undefined });
  st.tableField = field('Table', st.tbl, null, { field: 'options.table' });
  st.query = h('textarea.mono.query', { id: 'source-query', rows: 8, spellcheck: 'false', autocomplete: 'off', value: (src.options || {}).query || '' });
  st.previewBtn = h('button', { type: 'button', id: 'query-preview' }, 'Preview');
  st.queryField = h('div', field('SQL query', st.query, 'One SELECT statement. Preview shows the columns and first rows it returns; the key column is picked from them.', { field: 'options.query' }), h('div.actions', st.previewBtn));
  st.current = Object.keys(src.mapping || {})[0];
  st.keyCol = h('select');
  fillKeyColumns(st.keyCol, null, st.current);
  // a source's mapping names a property by its ID (docs/config.md "Primary keys"), which
  // need not be its key (New model makes <model>_<column>)
  const mapped = Object.values(src.mapping || {})[0];
  st.mapsTo = h('select', (m.properties || []).filter((p) => p.unique || p.primary_key).map((p) => h('option', { value: p.id, selected: mapped === p.id }, `${p.key}${p.primary_key ? ' (the model’s key)' : ''}`)));
  st.preview = h('div', { id: 'source-preview', 'aria-live': 'polite' });
  st.diag = h('div');
  st.back = route('data');
}

function sourceApp(st) {
  return st.srcApps.find((x) => x.id === st.app.value);
}

// Answers can come back out of order (a table picked while the app's first table
// still loads): only the latest request (st.seq) draws.
async function sourceTables(st) {
  const { tbl, preview, src } = st;
  const mine = ++st.seq;
  clear(tbl);
  clear(preview);
  const a = sourceApp(st);
  if (!a) return;
  try {
    const t = await get(`/apps/${enc(a.id)}/tables`);
    if (mine !== st.seq) return;
    for (const n of t.tables) tbl.appendChild(h('option', { value: n, selected: n === (src.options || {}).table }, n));
    keepSavedTable(st);
    await sourceTablePreview(st);
  } catch (e) {
    if (mine !== st.seq) return;
    keepSavedTable(st);
    preview.appendChild(e.status === 403 ? h('div.notice.info', h('strong', 'Tables not shown: '), (e.body && e.body.detail) || e.message) : errorNotice(e, 'Cannot list the tables'));
  }
}
// The saved table of the saved app stays a choice (and the choice) when the app's tables
// cannot be listed (its file is outside the data directory: 403) or the list lacks it:
// a save that changes something else must not change or empty the table.
function keepSavedTable(st) {
  const saved = (st.src.options || {}).table;
  if (!saved || st.app.value !== st.src.appId) return;
  if (![...st.tbl.options].some((o) => o.value === saved)) st.tbl.appendChild(h('option', { value: saved }, saved));
  st.tbl.value = saved;
}
async function sourceTablePreview(st) {
  const { tbl, preview } = st;
  const mine = ++st.seq;
  clear(preview);
  if (!tbl.value) return;
  const box = h('div');
  const s = await sample(st.app.value, tbl.value, box, 5);
  if (mine !== st.seq || !st.ctx.alive()) return;
  clear(preview).appendChild(box);
  if (!s) return;
  fillKeyColumns(st.keyCol, s.columns, st.current, s.key_guess);
  box.appendChild(previewTable(s, `The first ${s.rows.length} rows of ${s.table}`));
}
async function sourceQueryPreview(st) {
  const { query, preview, previewBtn, keyCol } = st;
  const mine = ++st.seq;
  clear(preview);
  if (!query.value.trim() || !sourceApp(st)) {
    preview.appendChild(h('p.help', 'Write a query, then press Preview.'));
    return;
  }
  preview.appendChild(h('p.help', 'Running the query…'));
  previewBtn.disabled = true;
  try {
    const s = await previewQuery(st.app.value, query.value, 5);
    if (mine !== st.seq || !st.ctx.alive()) return;
    fillKeyColumns(keyCol, s.columns, keyCol.value || st.current, s.key_guess);
    clear(preview).appendChild(previewTable(s, `The first ${s.rows.length} rows the query returns`));
  } catch (e) {
    if (mine !== st.seq || !st.ctx.alive()) return;
    clear(preview).appendChild(previewErrorNotice(e));
  } finally {
    previewBtn.disabled = false;
  }
}
// Shows the table or the query controls; the key column comes from the new preview.
async function showReads(st) {
  const a = sourceApp(st);
  st.reads.allowQuery(!!a && st.queryTypes.has(srcAppType(a)));
  const q = st.reads.isQuery();
  st.tableField.hidden = q;
  st.queryField.hidden = !q;
  st.seq++;
  clear(st.preview);
  if (q) { if (st.query.value.trim()) await sourceQueryPreview(st); else st.preview.appendChild(h('p.help', 'Write a query, then press Preview.')); } else await sourceTables(st);
}

// The source form with its submit handler.
function sourceForm(st) {
  const { isNew, name, id, app, srcApps, reads, tableField, queryField, preview, keyCol, mapsTo, diag, back, sourceId } = st;
  const form = h('form.form.card', { novalidate: true },
    h('div.inline', field('Name', name, null, { field: 'name' }), field('ID', id, isNew ? 'Cannot be changed later.' : null, { field: 'id' })),
    field('App', app, srcApps.length ? null : 'No database or file app yet: an admin connects one.', { field: 'appId' }),
    reads.el, tableField, queryField,
    preview,
    h('div.inline', field('Key column', keyCol, 'The column that holds the record key.', { field: 'mapping' }), field('It matches property', mapsTo, 'A unique property of the model, read by another source.')),
    diag, actions(isNew, 'source', back, 'sources', sourceId));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    save(form, diag, 'sources', isNew, sourceId, sourceBody(st), back, 'Source');
  });
  return form;
}
// The Source object the form describes.
function sourceBody(st) {
  const { src, id, name, app, tbl, query, keyCol, mapsTo, modelId } = st;
  const a = sourceApp(st);
  const q = st.reads.isQuery();
  const options = { ...(src.options || {}) };
  if (q) { options.query = query.value; delete options.table; } else { options.table = tbl.value; delete options.query; }
  return { ...src, id: id.value, class: 'Source', name: name.value, type: a ? `${srcAppType(a)}-import-${q ? 'query' : 'table'}` : src.type, appId: app.value, modelId,
    options, mapping: keyCol.value && mapsTo.value ? { [keyCol.value]: mapsTo.value } : {} };
}

// The property form. Its steps share one state object `st`: the page's arguments, the
// property being edited (p, its options o), its controls, the filters being edited,
// the source's columns and first rows, and `seq`, the number of the latest request.
async function viewPropertyForm(root, { model: modelId, property: propId }, _q, ctx) {
  const isNew = !propId;
  const [m, raw] = await Promise.all([get(`/models/${enc(modelId)}`), isNew ? null : get(`/config/properties/${enc(propId)}`)]);
  const p = raw ? configObjectBody(raw) : { key: '', type: 'string', options: { aggregationMethod: 'exact' }, filters: [] };
  const st = { propId, isNew, ctx, m, p, o: p.options || {}, columns: [], rows: null, seq: 0 };
  append(root, pageHeader(isNew ? `New property of ${m.name || m.id}` : `Property: ${p.key || p.id}`,
    'Pick the source and the column; say how rows become one value per record.'));
  if (!can('editor')) root.appendChild(roleNotice('editor', 'Changing properties'));
  await propertyControls(st);
  const showSort = () => { st.sortField.hidden = !/recent/.test(st.agg.value); };
  st.agg.addEventListener('change', showSort);
  st.source.addEventListener('change', () => propertyColumns(st));
  st.column.addEventListener('change', () => showSamples(st));
  root.appendChild(propertyForm(st));
  showSort();
  await propertyColumns(st);
  void fmtValue;
}

// The property form's controls, into st (the types come from GET /catalog).
async function propertyControls(st) {
  const { p, o, isNew } = st;
  st.key = h('input', { type: 'text', value: p.key || p.id || '', required: true, readOnly: !isNew, pattern: '[A-Za-z0-9_-]{1,191}', spellcheck: 'false', autocomplete: 'off' });
  st.sources = st.m.sources || [];
  st.source = h('select', st.sources.map((s) => h('option', { value: s.id, selected: s.id === p.sourceId }, s.name || s.id)));
  st.column = h('select');
  st.samples = h('p.help', { id: 'column-samples', 'aria-live': 'polite' });
  st.agg = h('select', AGGS.map(([v, l]) => h('option', { value: v, selected: (o.aggregationMethod || 'exact') === v }, l)));
  st.sortCol = h('select');
  st.sortField = field('Most recent by', st.sortCol, 'The column that says which row is the most recent.', { field: 'options.sortColumn' });
  const catalog = await get('/catalog');
  st.type = h('select', (catalog.property_types || []).map((t) => h('option', { value: t, selected: p.type === t }, t)));
  st.unique = h('input', { type: 'checkbox', checked: !!p.unique });
  st.filters = (p.filters || []).map((f) => ({ ...f }));
  st.fbox = h('ol.rules', { 'aria-label': 'Filters' });
  st.diag = h('div');
  st.back = route('data');
}

function drawFilters(st) {
  clear(st.fbox);
  st.filters.forEach((f, i) => st.fbox.appendChild(filterRow(st, f, i)));
}
// One filter's row: column, condition, value and Remove.
function filterRow(st, f, i) {
  const { columns, filters } = st;
  const col = h('select', { 'aria-label': `Filter ${i + 1}: column` }, columns.map((c) => h('option', { value: c, selected: c === f.key }, c)));
  if (!columns.includes(f.key)) { f.key = columns[0]; }
  const op = h('select', { 'aria-label': `Filter ${i + 1}: condition` }, FILTER_OPS.map(([v, l]) => h('option', { value: v, selected: v === f.op }, l)));
  f.op = op.value;
  const val = h('input', { type: 'text', 'aria-label': `Filter ${i + 1}: value`, value: Array.isArray(f.match) ? f.match.join(', ') : f.match ?? '', spellcheck: 'false', autocomplete: 'off' });
  col.addEventListener('change', () => { f.key = col.value; });
  op.addEventListener('change', () => { f.op = op.value; val.hidden = f.op === 'exists' || f.op === 'notExists'; });
  val.addEventListener('input', () => { f.match = val.value; f.typed = true; });
  val.hidden = f.op === 'exists' || f.op === 'notExists';
  return h('li.rule-row.card', h('div.inline', col, op, val, h('button.small', { type: 'button', on: { click: () => { filters.splice(i, 1); drawFilters(st); } } }, 'Remove', h('span.visually-hidden', ` filter ${i + 1}`))));
}
function showSamples(st) {
  const { rows } = st;
  const i = rows ? rows.columns.indexOf(st.column.value) : -1;
  st.samples.textContent = i < 0 ? st.note || '' : `Sample values: ${rows.rows.map((r) => r[i]).filter((v) => v !== null).slice(0, 5).map((v) => `“${v}”`).join(', ') || 'none (all empty)'}`;
}
// The chosen source's columns (and first rows, for the sample values); only the latest
// request (st.seq) draws.
async function propertyColumns(st) {
  const { sources, source, column, sortCol, samples, o } = st;
  const mine = ++st.seq;
  const s = sources.find((x) => x.id === source.value);
  clear(column);
  clear(sortCol);
  st.rows = null;
  st.note = '';
  samples.textContent = '';
  if (s && s.options && typeof s.options.query === 'string' && s.options.query.trim()) {
    // a query source: the columns (with sample values) of its query
    let got = null;
    try { got = await previewQuery(s.app, s.options.query, 10); } catch (e) { got = null; }
    if (mine !== st.seq || !st.ctx.alive()) return;
    st.rows = got;
    st.columns = st.rows ? st.rows.columns : (o.column ? [o.column] : []);
    if (!st.rows) st.note = 'The columns of the source’s query cannot be shown here (the query cannot be read now): the saved column is kept.';
  } else if (!s || !s.options || !s.options.table) {
    st.columns = o.column ? [o.column] : [];
  } else {
    const got = await sample(s.app, s.options.table, null, 10);
    if (mine !== st.seq || !st.ctx.alive()) return;
    st.rows = got;
    st.columns = st.rows ? st.rows.columns : (o.column ? [o.column] : []);
    if (!st.rows) st.note = 'The source’s columns cannot be shown here (its file is outside joey serve’s data directory, or the table cannot be read): the saved columns are kept.';
  }
  // the saved column, sort column and filter columns stay choices when the columns are
  // not known (or not among them): a save that changes something else must not change them
  if (s && s.id === st.p.sourceId) {
    for (const c of [o.column, o.sortColumn, ...(st.p.filters || []).map((f) => f.key)]) {
      if (typeof c === 'string' && c && !st.columns.includes(c)) st.columns = [...st.columns, c];
    }
  }
  for (const c of st.columns) column.appendChild(h('option', { value: c, selected: c === o.column }, c));
  for (const c of st.columns) sortCol.appendChild(h('option', { value: c, selected: c === o.sortColumn }, c));
  showSamples(st);
  drawFilters(st);
}

// The property form with its submit handler.
function propertyForm(st) {
  const { isNew, key, source, column, samples, agg, sortField, type, unique, fbox, diag, back, propId } = st;
  const addFilter = h('button', { type: 'button', on: { click: () => { st.filters.push({ key: st.columns[0], op: 'eq', match: '' }); drawFilters(st); } } }, 'Add a filter');
  const form = h('form.form.card', { novalidate: true },
    field('Key', key, isNew ? 'The name destinations map; letters, digits, _ and -.' : 'Cannot be changed.', { field: 'key' }),
    field('Source', source, null, { field: 'sourceId' }),
    h('div', field('Column', column, null, { field: 'options.column' }), samples),
    field('Value per record', agg, null, { field: 'options.aggregationMethod' }),
    sortField,
    field('Type', type, null, { field: 'type' }),
    h('label.check', unique, ' Unique: no two records share a value (records can be searched by it)'),
    h('div.field', { dataset: { field: 'filters' } }, h('span.label', 'Only rows where'), fbox, addFilter),
    diag, actions(isNew, 'property', back, 'properties', propId));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (!ID_RE.test(key.value)) { showDiagnostics(form, diag, [{ field: 'key', message: 'The key may hold letters, digits, _ and - only.' }], null); return; }
    save(form, diag, 'properties', isNew, propId, propertyBody(st), back, 'Property');
  });
  return form;
}
// A filter value typed in the form: a number when the text is one as written ("12",
// "-1.5"), else the text itself: "007", "0x10" or " 12" compare as text in a text column.
function filterValue(v) {
  return v !== '' && String(Number(v)) === v ? Number(v) : v;
}
// The Property object the form describes.
function propertyBody(st) {
  const { p, o, isNew, key, type, source, column, agg, sortCol, unique } = st;
  const options = { ...o, column: column.value, aggregationMethod: agg.value };
  if (/recent/.test(agg.value)) options.sortColumn = sortCol.value; else delete options.sortColumn;
  const body = { ...p, id: isNew ? key.value : p.id, class: 'Property', key: key.value, type: type.value, sourceId: source.value, options };
  if (unique.checked) body.unique = true; else delete body.unique;
  body.filters = st.filters.map((f) => {
    const c = { key: f.key, op: f.op };
    const untouched = !f.typed && Array.isArray(f.match) === (f.op === 'in');
    if (f.op === 'exists' || f.op === 'notExists') return c;
    if (untouched) c.match = f.match; // as saved: "007" stays text, 7 a number
    else if (f.op === 'in') c.match = String(f.match || '').split(',').map((x) => x.trim()).filter(Boolean).map(filterValue);
    else c.match = filterValue(String(f.match ?? ''));
    return c;
  });
  if (!body.filters.length) delete body.filters;
  return body;
}
