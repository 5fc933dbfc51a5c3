// pages/runs.js: the run history (#/runs) and one run (#/runs/<id>): counts, the held
// run of the mass-delete guard and its approval, retrying failed rows.
// Routed by app.js.
import { append, clear, enc, fmtAgo, fmtDuration, fmtTime, fmtValue, h, link, pageHeader, plural, route, table, toast } from '../lib/dom.js';
import { allow, can, destName, destinationsById, get, post, runsOf, session } from '../lib/api.js';
import { every, go, render } from '../app.js';
import { chartLegend, runsChart } from '../chart.js';
import { runLabel, runNow } from './overview.js';
import { confirmDialog, liveRunPanel, num, runAnnouncement, runBadge, triggerText } from '../safety.js';

// ---------------------------------------------------------------- runs

export function runsTable(runs, dmap, opts = {}) {
  return table(['Run', 'Destination', 'Status', 'Trigger', 'Started', 'Took', '#Read', '#Created', '#Updated', '#Deleted', '#Failed'],
    runs.map((r) => ({
      dataset: { run: r.id ?? '', status: r.status || '', destination: r.destination || '' },
      cells: [r.id !== null && r.id !== undefined ? link(route('runs', r.id), `#${r.id}`) : h('span.muted', 'queued'),
        destName(dmap, r.destination), runBadge(r), triggerText(r.trigger),
        h('span.nowrap', { title: fmtTime(r.started_at) }, fmtAgo(r.started_at)),
        r.finished_at && r.started_at ? fmtDuration(r.finished_at - r.started_at) : r.started_at ? `${fmtDuration(Date.now() - r.started_at)}…` : '—',
        String(r.records_read ?? '—'),
        String((r.counts || {}).created ?? 0), String((r.counts || {}).updated ?? 0), String((r.counts || {}).deleted ?? 0),
        (r.counts || {}).failed ? link(`#/errors?run=${enc(r.id)}`, String(r.counts.failed)) : '0'],
    })), { empty: opts.empty || 'No runs yet. Press “Run now” on a model (preview its plan first), or give it a schedule.' });
}

// The records the last finished run of a destination read: what a run now will read, about.
export function expectedRecords(runs, dest) {
  // the last finished run's records read; the run itself may have read more already
  const last = runs.find((x) => x.destination === dest && x.finished_at && x.records_read);
  const now = runs.find((x) => x.destination === dest && !x.finished_at);
  return Math.max(last ? last.records_read : 0, (now && now.records_read) || 0);
}

export async function viewRuns(root, _p, query, ctx) {
  const destFilter = query.get('destination') || '';
  const before = query.get('before') || '';
  const dmap = await destinationsById();
  append(root, pageHeader('Runs', 'Every run of every Braze destination, newest first. The page follows running runs live.'));
  const picker = h('select', { id: 'runs-dest' }, h('option', { value: '' }, 'All destinations'),
    Object.values(dmap).map((d) => h('option', { value: d.id, selected: d.id === destFilter }, d.name || d.id)));
  picker.addEventListener('change', () => go(picker.value ? `#/runs?destination=${enc(picker.value)}` : '#/runs'));
  root.appendChild(h('div.actions', h('label', { for: 'runs-dest' }, 'Destination'), picker,
    allow(h('button.primary', { type: 'button', disabled: !Object.keys(dmap).length, on: { click: (e) => runNow(destFilter ? { destination: destFilter } : {}, e.currentTarget) } }, destFilter ? 'Run this destination now' : 'Run everything now'), 'editor')));
  const liveBox = h('section.live', { 'aria-labelledby': 'live-h', hidden: true, id: 'live' });
  // runs followed on this page stay in the panel, as a summary, once they end
  const followed = new Map();
  const announcer = h('p.visually-hidden', { 'aria-live': 'polite', id: 'live-announce' });
  let lastSaid = '';
  let lastSaidAt = 0;
  const chartBox = h('div.chart');
  const tableBox = h('div', { id: 'runs-table' });
  const pager = h('div.pager');
  root.appendChild(liveBox);
  root.appendChild(announcer);
  root.appendChild(h('h2', 'Runs over time'));
  root.appendChild(chartBox);
  root.appendChild(h('h2', 'History'));
  root.appendChild(tableBox);
  root.appendChild(pager);
  const started = Date.now();
  const refresh = async () => {
    const qs = new URLSearchParams({ limit: '50' });
    if (destFilter) qs.set('destination', destFilter);
    if (before) qs.set('before', before);
    const res = await get(`/runs?${qs}`);
    if (!ctx.alive()) return undefined;
    const runs = runsOf(res);
    const active = runs.filter((r) => r.status === 'running' || r.status === 'queued');
    for (const r of active) followed.set(r.destination, r);
    for (const [d, old] of followed) {
      if (active.some((r) => r.destination === d)) continue;
      // it ended: the newest run of the destination, finished, replaces it (once known)
      const fin = runs.find((r) => r.destination === d && r.finished_at && (old.id === null || old.id === undefined || r.id >= old.id));
      if (fin) followed.set(d, fin);
    }
    clear(liveBox);
    liveBox.hidden = !followed.size;
    if (followed.size) {
      liveBox.appendChild(h('h2', { id: 'live-h' }, active.length ? `Running now (${active.length})` : 'Just finished'));
      for (const r of followed.values()) liveBox.appendChild(liveRunPanel(r, destName(dmap, r.destination), expectedRecords(runs, r.destination)));
      // announced when a run starts or ends, and every 15 s while it goes
      const said = [...followed.values()].map((r) => runAnnouncement(r, destName(dmap, r.destination))).join(' ');
      const phase = [...followed.values()].map((r) => r.status).join();
      if (said !== lastSaid && (phase !== announcer.dataset.phase || Date.now() - lastSaidAt > 15000)) {
        announcer.textContent = said;
        announcer.dataset.phase = phase;
        lastSaid = said;
        lastSaidAt = Date.now();
      }
    }
    clear(chartBox).appendChild(runsChart(runs, { label: (r) => runLabel(r, dmap), onSelect: (r) => go(route('runs', r.id)) }));
    chartBox.appendChild(chartLegend());
    clear(tableBox).appendChild(runsTable(runs, dmap));
    clear(pager);
    if (before) pager.appendChild(link(destFilter ? `#/runs?destination=${enc(destFilter)}` : '#/runs', 'Newest runs'));
    if (res && res.next !== null && res.next !== undefined) {
      const qs2 = new URLSearchParams({ before: String(res.next) });
      if (destFilter) qs2.set('destination', destFilter);
      pager.appendChild(link(`#/runs?${qs2}`, 'Older runs'));
    }
    // Every second while a run goes (or just after one was asked for); calmer otherwise.
    return active.length || Date.now() - started < 5000 ? 1000 : 10000;
  };
  const first = await refresh();
  every(first || 1000, refresh);
}

export async function viewRun(root, { run: id }) {
  const [r, dmap] = await Promise.all([get(`/runs/${enc(id)}`), destinationsById()]);
  const c = r.counts || {};
  append(root, pageHeader(`Run #${r.id ?? id}`, `${destName(dmap, r.destination)} · ${triggerText(r.trigger)}`,
    link(`#/runs?destination=${enc(r.destination || '')}`, 'All runs of this destination'),
    c.failed ? link(`#/errors?run=${enc(r.id)}`, `See the ${plural(c.failed, 'failed row')}`) : null,
    null));
  root.appendChild(h('p', 'Status: ', runBadge(r)));
  if (r.held) root.appendChild(heldNotice(r, dmap));
  else if (r.status === 'completed_with_failures') root.appendChild(h('div.notice.warn', h('strong', `Completed with ${plural(r.failed_rows || c.failed || 0, 'failed row')}. `), 'Everything else went to Braze. ', link(`#/errors?run=${enc(r.id)}`, 'See why those rows failed and what to do')));
  else if (r.error && r.explanation) {
    root.appendChild(h('div.notice.error', h('h2', 'Why the run stopped'), h('p', h('strong', r.explanation.title)),
      h('p', h('em', 'What to do: '), r.explanation.action),
      h('details.small', h('summary', 'Technical detail'), h('code.break', String(r.error)))));
  } else if (r.error) root.appendChild(h('div.notice.error', h('strong', 'Error: '), fmtValue(r.error)));
  root.appendChild(table(['Field', 'Value'], [
    ['Started', fmtTime(r.started_at)], ['Finished', fmtTime(r.finished_at)],
    ['Took', r.finished_at && r.started_at ? fmtDuration(r.finished_at - r.started_at) : '—'],
    ['Records read', r.records_read === null || r.records_read === undefined ? 'not known (a run of an older joey)' : num(r.records_read)],
    ...Object.entries(c).map(([k, v]) => { const w = COUNT_WORDS[k] || k.replace(/_/g, ' '); return [w[0].toUpperCase() + w.slice(1), num(v)]; }),
    // the sync log (docs/config.md "Sync logs in the warehouse"), when the destination has one
    ...(r.sync_log ? [['Sync log', `${r.sync_log.status}: ${plural(r.sync_log.rows, 'row')} written` +
      (r.sync_log.pending ? `, ${r.sync_log.pending} waiting for a later run` : '') +
      (r.sync_log.error ? ` (${r.sync_log.error})` : '')]] : []),
  ], { class: 'kv', rowHeader: true }));
  if (r.status === 'running' || r.status === 'queued') every(1000, () => { render(); return 60000; });
}

export const COUNT_WORDS = { requests: 'requests to Braze', retries: 'requests sent again', throttled: 'times Braze asked to slow down', data_points: 'data points billed', skipped: 'skipped', failed: 'failed rows' };

// A run the mass-delete guard held: what it held, who may approve, and the approval.
export function heldNotice(r, dmap) {
  const x = r.held;
  const verb = x.action === 'unsubscribe' ? 'unsubscribe' : 'delete';
  const btn = allow(h('button.danger', {
    type: 'button', id: 'approve-run',
    on: {
      click: async (e) => {
        const b = e.currentTarget;
        const yes = await confirmDialog({
          title: `Approve: ${verb} ${num(x.count)} Braze users?`,
          body: [h('p', `The run of ${destName(dmap, r.destination)} will ${verb} ${num(x.count)} of the ${num(x.of)} Braze users it manages (${Math.round(x.percent)}%).`),
            h('p', 'Approve only if this is intended: an empty or cut-off source table looks the same. Your approval is recorded in the audit log.')],
          confirmLabel: `Approve and ${verb}`,
        });
        if (!yes) return;
        b.disabled = true;
        try {
          await post(`/runs/${enc(r.id)}/approve`);
          go('#/runs', 'Approved: the run goes ahead.');
        } catch (err) {
          b.disabled = false;
          toast(`Not approved: ${err.message}${err.body && err.body.hint ? ` — ${err.body.hint}` : ''}`, 10000);
        }
      },
    },
  }, `Approve and ${verb} ${num(x.count)} users`), 'editor');
  return h('div.notice.warn', { role: 'status', id: 'held-notice' },
    h('h2', 'Held by the mass-delete guard'),
    h('p', `This run would ${verb} ${num(x.count)} of the ${num(x.of)} Braze users it manages (${Math.round(x.percent)}%), more than the destination allows in one run, so it stopped before doing it. Creates and updates were sent.`),
    h('p', `Who may approve: ${(x.approvers || ['admin', 'editor']).slice().reverse().map((a) => `an ${a}`).join(' or ')}. ${can('editor') ? '' : `You are signed in as a ${session.user ? session.user.role : 'nobody'}: ask an editor or an admin.`}`),
    h('div.actions', btn));
}

export async function retry(destination, btn) {
  if (btn) btn.disabled = true;
  try {
    await post('/retry', { destination });
    go('#/runs', `Retry started for ${destination}.`);
  } catch (e) {
    if (btn) btn.disabled = false;
    toast(`Retry failed: ${e.message}${e.body && e.body.hint ? ` — ${e.body.hint}` : ''}`, 8000);
  }
}

