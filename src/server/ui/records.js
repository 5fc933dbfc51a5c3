// records.js: the Records pages of joey's web UI (docs/api.md "Records"): a model's
// records a page at a time, searched by key or by any unique property (an email), or
// filtered by audience; and one record with its properties, audiences, what each Braze
// destination holds, what the next run would do and why, and its history (the sync log's
// rows, or what the state store knows) as a timeline. A
// search or a record page reads only the records asked for: the server pushes the key or
// the value into the source's query. app.js hands in its helpers; every text from the API
// is inserted as text, never parsed as HTML.

// app.js's helpers, set once by recordViews
let h, append, clear, route, link, field, fmtTime, fmtAgo, plural, badge, get, errorNotice, pageHeader, table,
  go, enc, fmtValue, destinationsById, destName, payloadView;

export function recordViews(ui) {
  ({ h, append, clear, route, link, field, fmtTime, fmtAgo, plural, badge, get, errorNotice, pageHeader, table, go, enc, fmtValue, destinationsById, destName, payloadView } = ui);
  return { viewRecords, viewRecord };
}

// Up to four columns of a list: the unique properties first.
function columnsOf(m) {
  const props = m.properties || [];
  const first = props.filter((p) => p.unique || p.primary_key);
  const rest = props.filter((p) => !first.includes(p));
  return [...first, ...rest].slice(0, 4).map((p) => p.key);
}

async function viewRecords(root, params, query) {
  const models = await get('/models');
  // the model last looked at in this tab, while it still exists (it may have been deleted since)
  const last = sessionStorage.getItem('joey-last-model');
  const modelId = params.model || (models.some((x) => x.id === last) ? last : '') || (models[0] && models[0].id) || '';
  append(root, pageHeader('Records', 'Find a record by its key or a unique property such as an email, or list the members of an audience.'));
  if (!modelId) { root.appendChild(h('p.empty', 'No models in the config.')); return; }
  const m = await get(`/models/${enc(modelId)}`);
  const uniques = (m.properties || []).filter((p) => p.unique || p.primary_key).map((p) => p.key);
  const sel = h('select', { id: 'records-model' }, models.map((x) => h('option', { value: x.id, selected: x.id === modelId }, x.name || x.id)));
  const q = h('input', { type: 'search', id: 'records-q', value: query.get('q') || '', autocomplete: 'off', spellcheck: 'false' });
  const grp = h('select', { id: 'records-group' }, h('option', { value: '' }, 'Everyone'),
    (m.groups || []).map((g) => h('option', { value: g.id, selected: g.id === query.get('group') }, g.name || g.id)));
  const qs = (o) => {
    const u = new URLSearchParams();
    for (const [k, v] of Object.entries(o)) if (v) u.set(k, v);
    const s = u.toString();
    return `${route('records', sel.value)}${s ? `?${s}` : ''}`;
  };
  sel.addEventListener('change', () => { sessionStorage.setItem('joey-last-model', sel.value); go(route('records', sel.value)); });
  root.appendChild(h('form.form.card', {
    role: 'search',
    on: { submit: (e) => { e.preventDefault(); sessionStorage.setItem('joey-last-model', sel.value); go(qs({ q: q.value.trim(), group: grp.value })); } },
  }, h('div.inline', field('Model', sel), field('Find a record', q, `Key or ${uniques.filter((k) => k !== (m.primary_key || '')).join(', ') || 'a unique property'}; leave empty to list.`),
    field('In audience', grp), h('button.primary', { type: 'submit' }, 'Search'))));

  const api = new URLSearchParams();
  if (query.get('q')) api.set('q', query.get('q'));
  if (query.get('group')) api.set('group', query.get('group'));
  if (query.get('after')) api.set('after', query.get('after'));
  api.set('limit', '25');
  let res;
  try {
    res = await get(`/records/${enc(modelId)}?${api}`);
  } catch (e) {
    if (e.status >= 400 && e.status < 500 && e.status !== 401) { root.appendChild(errorNotice(e, 'Cannot search')); return; }
    throw e;
  }
  const items = res.items || [];
  if (query.get('q') && items.length === 1 && !query.get('group')) {
    // one match: its page, as a look-up by key did
    go(route('records', modelId, items[0].key));
    return;
  }
  const gname = Object.fromEntries((m.groups || []).map((g) => [g.id, g.name || g.id]));
  if (query.get('q') && !items.length) {
    root.appendChild(h('div.notice.warn', { role: 'status' }, `No record matches “${query.get('q')}”`,
      query.get('group') ? ` in “${gname[query.get('group')] || query.get('group')}”` : '',
      `. Searched by ${(res.searched || []).join(', ') || 'nothing'}.`));
    return;
  }
  const cols = columnsOf(m);
  const out = h('section', { id: 'records', 'aria-label': 'Records found' },
    table(['Key', ...cols, 'Audiences'], items.map((r) => [link(route('records', modelId, r.key), r.key),
      ...cols.map((k) => h('span.break', fmtValue(r.properties[k]))),
      (r.groups || []).map((g) => gname[g] || g).join(', ') || h('span.muted', 'none')]),
    { empty: query.get('group') ? 'Nobody in this audience.' : 'No records.', caption: query.get('group') ? `Members of “${gname[query.get('group')] || query.get('group')}”` : undefined }));
  root.appendChild(out);
  if (!res.complete) root.appendChild(h('p.help', 'This page stopped early: the audience is sparse among many records. The next page goes on.'));
  if (res.next) root.appendChild(h('p', link(qs({ q: query.get('q'), group: query.get('group'), after: res.next }), 'Next page')));
}

// One status per destination, from what the server says happens next.
function destStatus(d) {
  if (d.pending) return badge(`failed, will retry (attempt ${d.attempts || 1})`, 'warn');
  switch (d.next) {
    case 'none': return d.in_scope ? badge('up to date', 'ok') : badge('not sent: outside its audience', 'neutral');
    case 'update': return badge('changes wait for the next run', 'info');
    case 'create': return badge('not sent yet', 'neutral');
    case 'remove': return badge('will be removed from Braze', 'warn');
    case 'release': return badge('left its audience; Braze keeps it', 'neutral');
    default: return badge(d.confirmed ? 'sent' : 'not sent', 'neutral');
  }
}

// What happened, in words: "Updated in Braze users: email, ltv".
const WHAT = {
  created: 'Created in', updated: 'Updated in', deleted: 'Removed from', unsubscribed: 'Left the audience; kept in',
  failed: 'Failed to send to', sent: 'Sent to and confirmed by', pending: 'Waiting to be sent again to',
  not_in_braze: 'Not found, nothing sent to',
};
const TRIGGER = { cli: 'joey run', schedule: 'scheduled', api: 'started here', retry: 'retry', worker: 'worker' };
const shortTime = (ms) => new Date(ms).toLocaleString(undefined, { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });

// The history as a timeline, newest first, with a note per destination on where it comes from.
function historyView(rec, dmap) {
  const box = h('section', { id: 'record-history', 'aria-label': 'History' });
  const dests = rec.destinations || [];
  const noLog = dests.filter((d) => d.sync_log === null);
  if (noLog.length) {
    box.appendChild(h('p.help', { id: 'history-no-log' }, `${noLog.map((d) => destName(dmap, d.id)).join(', ')}: only the last send and the failed attempts are kept. `,
      'Turning on the sync log (a destination setting) keeps the full history.'));
  }
  for (const d of dests) {
    if (d.sync_log && d.sync_log.error) {
      box.appendChild(h('div.notice.warn', { role: 'status', dataset: { logError: d.id } },
        `The sync log of ${destName(dmap, d.id)} could not be read, so this shows only what joey's state store knows. `,
        h('span.small.break', d.sync_log.error)));
    } else if (d.sync_log && d.sync_log.outbox_complete === false) {
      box.appendChild(h('p.help', `${destName(dmap, d.id)}: many rows still wait to be copied to the sync log; the newest may be missing here.`));
    }
  }
  const items = rec.history || [];
  if (!items.length) { box.appendChild(h('p.empty', 'Nothing has happened to this record in Braze yet.')); return box; }
  box.appendChild(h('ol.timeline', { 'aria-label': 'What happened, newest first' }, items.map((x) => {
    const words = `${WHAT[x.what] || x.what} ${destName(dmap, x.destination)}`;
    const detail = x.detail && x.what !== 'sent' ? `: ${x.detail}` : '';
    const run = x.run_id ? [link(route('runs', x.run_id), `run ${x.run_id}`), x.trigger ? ` (${TRIGGER[x.trigger] || x.trigger})` : '', ', '] : null;
    return h('li', { dataset: { what: x.what, destination: x.destination, source: x.source } },
      h('span.break', h('strong', words), detail, ' — ', run, h('time', { datetime: new Date(x.at).toISOString(), title: fmtTime(x.at) }, shortTime(x.at))),
      x.what === 'failed' && x.attempts > 1 ? h('span.small.muted', ` (attempt ${x.attempts})`) : null,
      x.waiting ? [' ', badge('not yet in the sync log', 'neutral')] : null);
  })));
  return box;
}

async function viewRecord(root, { model: modelId, key }) {
  let rec;
  try {
    rec = await get(`/records/${enc(modelId)}/${enc(key)}`);
  } catch (e) {
    append(root, pageHeader(`Record “${key}”`));
    if (e.status === 400) {
      // not a key: search for it (an email, another unique property)
      go(`${route('records', modelId)}?q=${enc(key)}`);
      return;
    }
    if (e.status >= 400 && e.status < 500 && e.status !== 401) { root.appendChild(errorNotice(e, `Cannot look up “${key}”`)); return; }
    throw e;
  }
  const [m, dmap] = await Promise.all([get(`/models/${enc(modelId)}`).catch(() => ({ groups: [] })), destinationsById()]);
  const gname = Object.fromEntries((m.groups || []).map((g) => [g.id, g.name || g.id]));
  append(root, pageHeader(`Record “${rec.key}”`, `${m.name || modelId}`, link(route('records', modelId), 'Back to the records')));
  const result = h('section', { id: 'record', 'aria-label': `Record ${rec.key}` });
  if (rec.found === false) {
    result.appendChild(h('div.notice.warn', { role: 'status' }, `No record with key “${rec.key}” in model “${modelId}”: the sources have no such row.`));
    if (!(rec.destinations || []).some((d) => d.known)) { root.appendChild(result); return; }
  } else {
    result.appendChild(h('h2', 'Properties'));
    result.appendChild(table(['Property', 'Value'], Object.entries(rec.properties || {}).map(([k, v]) => [h('code', k), h('span.break', fmtValue(v))]), { class: 'kv', rowHeader: true, empty: 'No properties.' }));
    result.appendChild(h('h2', 'Audiences'));
    result.appendChild((rec.groups || []).length ? h('ul', { id: 'record-groups' }, rec.groups.map((g) => h('li', link(route('audiences', modelId, g), gname[g] || g)))) : h('p.empty', 'In no audience.'));
  }
  result.appendChild(h('h2', 'In Braze'));
  for (const d of rec.destinations || []) {
    result.appendChild(h('div.card', { dataset: { destination: d.id, next: d.next || '' } },
      h('h3', destName(dmap, d.id), ' ', destStatus(d)),
      h('p', { class: 'why' }, d.why || ''),
      d.confirmed_at ? h('p.small.muted', `Braze confirmed it ${fmtTime(d.confirmed_at)} (${fmtAgo(d.confirmed_at)}).`) : null,
      d.last_error ? h('div.notice.error', h('strong', 'Last error: '), fmtValue(d.last_error)) : null,
      h('h4', 'What Braze holds'),
      payloadView(d.payload, dmap[d.id], gname),
      d.would_send && d.next !== 'none' ? [h('h4', 'What the next run sends'), payloadView(d.would_send, dmap[d.id], gname)] : null));
  }
  if (!(rec.destinations || []).length) result.appendChild(h('p.empty', 'No Braze destination sends this model.'));
  result.appendChild(h('h2', 'History'));
  result.appendChild(historyView(rec, dmap));
  root.appendChild(result);
  void plural; void clear;
}
