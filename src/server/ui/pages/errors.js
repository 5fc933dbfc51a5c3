// pages/errors.js: the failed rows (#/errors), and payloadView, what joey last sent for
// a record (also shown by records.js).
// Routed by app.js; payloadView is handed to records.js.
import { append, badge, fmtAgo, fmtTime, fmtValue, h, link, pageHeader, plural, remoteName, route, table } from '../lib/dom.js';
import { allow, destName, destinationsById, get, itemsOf, runsOf } from '../lib/api.js';
import { go } from '../app.js';
import { retry } from './runs.js';
import { explanationView } from '../safety.js';

// ---------------------------------------------------------------- failed rows

// Is a ledger entry still failing? The server may say so (pending); otherwise a later
// successful run of the same destination with no failed row re-sent it (pending rows
// are retried by every run), so it is resolved.
export function errorState(e, runs) {
  if (typeof e.pending === 'boolean') return e.pending ? { failing: true } : { failing: false };
  if (typeof e.resolved === 'boolean') return { failing: !e.resolved };
  const ok = runs.filter((r) => r.destination === e.destination && r.status === 'success' && !(r.counts || {}).failed
    && (r.started_at || 0) > (e.at || 0) && (e.run_id === null || e.run_id === undefined || r.id === null || r.id > e.run_id));
  if (!ok.length) return { failing: true };
  const first = ok.reduce((a, r) => (r.started_at < a.started_at ? r : a));
  return { failing: false, by: first.id };
}

export async function viewErrors(root, _p, query) {
  const destFilter = query.get('destination') || '';
  const runFilter = query.get('run') || '';
  const before = query.get('before') || '';
  const showAll = query.get('all') === '1';
  const dmap = await destinationsById();
  const qs = new URLSearchParams({ limit: '50' });
  if (destFilter) qs.set('destination', destFilter);
  if (runFilter) qs.set('run', runFilter);
  if (before) qs.set('before', before);
  const [res, runsRes] = await Promise.all([get(`/errors?${qs}`), get('/runs?limit=200')]);
  const runs = runsOf(runsRes);
  const all = itemsOf(res).map((e) => ({ ...e, st: errorState(e, runs) }));
  // newest entry per (destination, key) decides; older entries of the same row are history
  const seen = new Set();
  for (const e of all) {
    const k = `${e.destination}\u0000${e.key}`;
    if (seen.has(k)) e.st = { failing: false, older: true };
    seen.add(k);
  }
  const failing = all.filter((e) => e.st.failing);
  const items = showAll ? all : failing;
  append(root, pageHeader('Failed rows', 'Records Braze refused, why, and what to do. The next run sends them again; Retry sends them now where that can help.'));
  const mkq = (o) => { const q = new URLSearchParams(); for (const [k, v] of Object.entries(o)) if (v) q.set(k, v); const t = q.toString(); return t ? `#/errors?${t}` : '#/errors'; };
  const picker = h('select', { id: 'errors-dest' }, h('option', { value: '' }, 'All destinations'),
    Object.values(dmap).map((d) => h('option', { value: d.id, selected: d.id === destFilter }, d.name || d.id)));
  picker.addEventListener('change', () => go(mkq({ destination: picker.value, all: showAll ? '1' : '' })));
  const allBox = h('input', { type: 'checkbox', id: 'errors-all', checked: showAll });
  allBox.addEventListener('change', () => go(mkq({ destination: destFilter, run: runFilter, all: allBox.checked ? '1' : '' })));
  root.appendChild(h('div.actions', h('label', { for: 'errors-dest' }, 'Destination'), picker,
    h('span.inline', allBox, h('label', { for: 'errors-all' }, 'Also show rows that went through later (history)')),
    runFilter ? h('span', `Run #${runFilter} `, link(mkq({ destination: destFilter, all: showAll ? '1' : '' }), '(show all runs)')) : null));
  const retryTargets = [...new Set(failing.filter((e) => !e.explanation || e.explanation.retry).map((e) => e.destination))];
  if (retryTargets.length) {
    root.appendChild(h('div.actions', retryTargets.map((d) => allow(h('button.primary', { type: 'button', on: { click: (e) => retry(d, e.currentTarget) } }, `Retry failed rows of ${destName(dmap, d)}`), 'editor'))));
  } else if (failing.length) {
    const fixed = [...new Set(failing.map((e) => e.destination))];
    root.appendChild(h('div.notice.info', h('p', 'Retrying alone would not help these rows: fix what each one says (in the source or the destination), then the next run sends them again, or send them now:'),
      h('div.actions', fixed.map((d) => allow(h('button', { type: 'button', on: { click: (e) => retry(d, e.currentTarget) } }, `Send the failed rows of ${destName(dmap, d)} again`), 'editor')))));
  }
  const hidden = all.length - items.length;
  const models = Object.fromEntries(Object.values(dmap).map((d) => [d.id, d.model]));
  root.appendChild(table(['When', 'Destination', 'Record', 'Why', '#Attempts', 'Run', 'Now'],
    items.map((e) => ({
      dataset: { key: String(e.key), destination: e.destination || '', failing: String(e.st.failing) },
      cells: [h('span.nowrap', { title: fmtTime(e.at) }, fmtAgo(e.at)), destName(dmap, e.destination),
        models[e.destination] ? link(route('records', models[e.destination], e.key), String(e.key)) : String(e.key),
        explanationView(e), String(e.attempts ?? ''), e.run_id ? link(route('runs', e.run_id), `#${e.run_id}`) : '—',
        e.st.failing ? badge('still failing', 'bad') : e.st.older ? badge('earlier attempt', 'neutral') : badge(e.st.by ? `went through (run #${e.st.by})` : 'went through', 'ok')],
    })),
    { empty: hidden ? `No row is failing now (${plural(hidden, 'earlier error')} in the history).` : 'No failed rows. Everything joey sent was accepted.' }));
  const pager = h('div.pager');
  if (before) pager.appendChild(link(mkq({ destination: destFilter, run: runFilter, all: showAll ? '1' : '' }), 'Newest'));
  if (res && res.next !== null && res.next !== undefined) {
    pager.appendChild(link(mkq({ destination: destFilter, run: runFilter, all: showAll ? '1' : '', before: String(res.next) }), 'Older failed rows'));
  }
  root.appendChild(pager);
}

// ---------------------------------------------------------------- records: records.js

// What joey last sent for a record: {attributes, groups} (or a flat attribute object).
export function payloadView(payload, dest, gname) {
  if (!payload || typeof payload !== 'object') return h('p.empty', 'Nothing sent yet.');
  const nested = payload.attributes && typeof payload.attributes === 'object' && !Array.isArray(payload.attributes);
  const attrs = nested ? payload.attributes : payload;
  const out = [table(['Braze field', 'Last sent value'], Object.entries(attrs).map(([k, v]) => [h('code', k), h('span.break', fmtValue(v))]), { class: 'kv', rowHeader: true, empty: 'No attributes.' })];
  if (nested && Array.isArray(payload.groups)) {
    const byRemote = {};
    for (const m of (dest && dest.memberships) || []) byRemote[m.remote] = m.group;
    out.push(h('p', h('strong', 'Subscription groups and groups: '),
      payload.groups.length ? payload.groups.map((g, i) => [i ? ', ' : '', remoteName(dest, g), byRemote[g] ? ` (for members of ${gname[byRemote[g]] || byRemote[g]})` : '']) : 'none'));
  }
  return out;
}

