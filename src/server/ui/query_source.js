// query_source.js: what the source and property editors need for query sources: which
// app types can read an SQL query (the catalog's `<type>-import-query`), the preview of
// a query (POST /apps/{app}/preview: its columns and first rows, read as a query source
// reads it: read-only, rolled back, under the app's time limit), and a failed preview
// told in plain words with the database's own message behind a toggle; and the parts
// of the source form built on them (the "It reads" choice, the key column select, the
// preview table). Imported by editors.js; every text from the API is inserted as text.
import { post } from './lib/api.js';
import { clear, enc, fmtValue, h, table } from './lib/dom.js';

// Is a source (its saved JSON body) a query source?
export function isQuerySource(src) {
  return !!(src && ((src.options && typeof src.options.query === 'string') || /-import-query$|-query-import$/.test(src.type || '')));
}

// The app types that have a query source type in the catalog.
export function queryAppTypes(catalog) {
  return new Set(((catalog && catalog.source_types) || []).filter((t) => t.endsWith('-import-query')).map((t) => t.slice(0, -'-import-query'.length)));
}

// The columns and first rows of query on app (the reply of POST /apps/{app}/preview); throws the API error.
export function previewQuery(appId, query, limit = 10) {
  return post(`/apps/${enc(appId)}/preview`, { query, limit });
}

// What went wrong, in words a marketer reads; the database's message is the detail.
function plainWords(e) {
  const b = (e && e.body) || {};
  const said = `${b.error || ''} ${b.detail || ''}`;
  if (e.status === 422 && /sent nothing for/.test(said)) return 'The database took too long to answer, so joey stopped the query. Make it simpler, or ask for fewer rows.';
  if (e.status === 422 && b.error && /cannot be read|more than one statement/.test(b.error)) return 'The database could not run this query. It must be a single SELECT that names tables and columns the database has; it can never change data.';
  if (e.status === 422) return b.error || 'The query is not valid.';
  if (e.status === 502) return 'joey cannot reach the app’s database right now. Try again, or ask an admin to test the app’s connection.';
  if (e.status === 403) return b.detail || 'You may not preview queries of this app.';
  if (e.status === 429) return 'Too many previews are running; try again in a moment.';
  return b.error || (e && e.message) || 'The preview failed.';
}

// A failed preview: plain words first, what to do, then the technical detail behind a toggle.
export function previewErrorNotice(e) {
  const b = (e && e.body) || {};
  const tech = [b.error, b.detail].filter(Boolean).join(': ');
  return h('div.notice.error', { role: 'alert' },
    h('h3', 'The query cannot be previewed'),
    h('p', plainWords(e)),
    b.hint ? h('p', h('strong', 'What to do: '), String(b.hint)) : null,
    tech ? h('details', h('summary', 'What the database said'), h('p.break.mono', tech)) : null);
}

// "It reads": a table or an SQL query (only for apps whose type has a query source).
export function readsChoice(query) {
  const mk = (value, label, help) => {
    const rid = `reads-${value}`;
    return h('div.choice', h('input', { type: 'radio', name: 'source-reads', id: rid, value, checked: query === (value === 'query'), 'aria-describedby': `${rid}-help` }),
      h('div', h('label.choice-label', { for: rid }, label), h('span.choice-help', { id: `${rid}-help` }, help)));
  };
  const el = h('fieldset', { dataset: { field: 'type' } }, h('legend', 'It reads'),
    mk('table', 'A table', 'Pick a table or a view of the app’s database.'),
    mk('query', 'An SQL query', 'Write one SELECT; joey runs it read-only and never changes data.'));
  const radio = (v) => el.querySelector(`input[value="${v}"]`);
  return {
    el,
    isQuery: () => radio('query').checked,
    allowQuery(ok) {
      radio('query').disabled = !ok;
      el.querySelector('#reads-query-help').textContent = ok ? 'Write one SELECT; joey runs it read-only and never changes data.' : 'This app’s kind of database cannot be read with a query here.';
      if (!ok && radio('query').checked) radio('table').checked = true;
    },
    onChange(fn) { el.addEventListener('change', fn); },
  };
}

// The key column select: the columns of the last preview, or the saved column until one comes.
export function fillKeyColumns(keyCol, columns, current, guess) {
  clear(keyCol);
  const cols = columns && columns.length ? columns : current ? [current] : [];
  for (const c of cols) keyCol.appendChild(h('option', { value: c, selected: c === (current && cols.includes(current) ? current : guess) }, c));
}

export function previewTable(s, caption) {
  return h('div', s.columns_cut ? h('p.help', 'The query returns more than 100 columns; the first 100 are shown.') : null,
    table(s.columns, s.rows.map((r) => r.map((v) => h('span.break', fmtValue(v)))), { caption, empty: 'It returns no rows.' }));
}
