// pages/model.js: the page of one model (#/models/<id>): its sources, schedules,
// properties, groups and destinations, with "Run now".
// Routed by app.js.
import { append, badge, enc, fmtAgo, h, link, pageHeader, plural, route, table } from '../lib/dom.js';
import { allow, can, get, itemsOf, primaryKeyProp, runsOf, syncModeLabel } from '../lib/api.js';
import { every, render } from '../app.js';
import { listedGroupWords } from '../audiences.js';
import { runNow } from './overview.js';
import { runsTable } from './runs.js';
import { runBadge } from '../safety.js';
import { fmtRun, scheduleWords } from '../schedule.js';

// ---------------------------------------------------------------- model

export function scheduleText(s) {
  if (!s) return 'only when someone presses Run now';
  return scheduleWords(s);
}
export async function viewModel(root, { model: id }, _q, ctx) {
  const [m, runsRes, apps] = await Promise.all([get(`/models/${enc(id)}`), get('/runs?limit=100'), get('/apps')]);
  const runs = runsOf(runsRes);
  const appMap = Object.fromEntries(itemsOf(apps).map((a) => [a.id, a]));
  const dests = m.destinations || [];
  const dmap = Object.fromEntries(dests.map((d) => [d.id, d]));
  const groupsById = Object.fromEntries((m.groups || []).map((g) => [g.id, g]));
  const pk = primaryKeyProp(m);
  const runBtn = allow(h('button.primary', { type: 'button', disabled: !dests.length, on: { click: (e) => runNow({ model: id }, e.currentTarget) } }, 'Run now'), 'editor');
  const edit = can('editor');
  append(root, pageHeader(m.name || m.id, `Model “${m.id}” · ${m.type || 'profile'} · primary key ${pk ? pk.key : m.primary_key || '—'}`,
    edit ? link(route('models', id, 'destinations', 'new'), 'Add Braze destination') : null,
    edit && dests.length ? link(route('models', id, 'plan'), 'Preview plan') : null,
    runBtn));
  const modelRuns = runs.filter((r) => dests.some((d) => d.id === r.destination));
  const live = modelRuns.filter((r) => r.status === 'running' || r.status === 'queued');
  if (live.length) {
    root.appendChild(h('div.notice.info', `${plural(live.length, 'run')} going for this model. `, link('#/runs', 'Follow the run')));
    every(1000, () => { render(); return 60000; });
  }
  const neverRan = dests.filter((d) => !modelRuns.some((r) => r.destination === d.id));
  if (neverRan.length) {
    root.appendChild(h('div.notice.info', h('h2', 'Before the first run'),
      h('p', `${neverRan.map((d) => d.name || d.id).join(', ')} never ran. Preview what would be created, updated and deleted in Braze before you press Run now.`),
      edit ? link(route('models', id, 'plan', neverRan.length === 1 ? neverRan[0].id : ''), 'Preview the plan') : null));
  }

  // destinations
  root.appendChild(h('h2', { id: 'destinations' }, 'Braze destinations'));
  root.appendChild(table(['Name', 'Braze app', 'Sync mode', 'Who is sent', 'Fields', 'Last run', 'Actions'],
    dests.map((d) => {
      const last = modelRuns.find((r) => r.destination === d.id && r.status !== 'queued');
      const who = d.collection === 'group' ? `group: ${(groupsById[d.group] || {}).name || d.group}` : d.collection === 'model' ? 'everyone in the model' : 'nobody (paused)';
      return [link(route('models', id, 'destinations', d.id), d.name || d.id),
        appMap[d.app] ? appMap[d.app].name || d.app : d.app || '—',
        syncModeLabel(d.sync_mode), who,
        String(Object.keys(d.mapping || {}).length),
        last ? [runBadge(last), ' ', h('span.small', fmtAgo(last.started_at))] : h('span.muted', 'never'),
        h('span.inline',
          link(route('models', id, 'destinations', d.id), edit ? 'Edit' : 'View', h('span.visually-hidden', ` ${d.name || d.id}`)),
          edit ? link(route('models', id, 'plan', d.id), 'Plan', h('span.visually-hidden', ` ${d.name || d.id}`)) : null,
          allow(h('button.small', { type: 'button', on: { click: (e) => runNow({ destination: d.id }, e.currentTarget) } }, 'Run', h('span.visually-hidden', ` ${d.name || d.id}`)), 'editor'))];
    }), { empty: 'No Braze destination yet. Add one to start sending this model to Braze.' }));

  // sources + schedules
  root.appendChild(h('h2', { id: 'sources' }, 'Sources and schedules'));
  const schedBySource = Object.fromEntries((m.schedules || []).map((s) => [s.source, s]));
  root.appendChild(table(['Source', 'Type', 'Reads', 'Key column', 'Schedule', 'Next runs', ''],
    (m.sources || []).slice().sort((a, b) => (b.primary ? 1 : 0) - (a.primary ? 1 : 0)).map((s) => {
      const sch = schedBySource[s.id];
      const o = s.options || {};
      return [h('span', s.name || s.id, s.primary ? [' ', badge('primary', 'info')] : null), s.type || '',
        o.table ? `table ${o.table}` : o.query ? h('code.break', String(o.query)) : '—',
        Object.keys(s.mapping || {}).map((c) => `${c} → ${s.mapping[c]}`).join(', ') || '—',
        !s.primary && !sch ? '—' : [scheduleText(sch), sch && sch.incremental ? h('span.help', `incremental on ${sch.column || '?'}`) : null],
        sch && (sch.next_runs || []).length ? h('span.small', sch.next_runs.map(fmtRun).join('; ')) : sch && sch.next_run_at ? fmtRun(sch.next_run_at) : '—',
        !s.primary && !sch ? h('span.small.muted', 'read with the primary source')
          : edit ? link(route('models', id, 'schedules', s.id), sch ? 'Change schedule' : 'Set schedule', h('span.visually-hidden', ` of ${s.name || s.id}`))
            : sch ? link(route('models', id, 'schedules', s.id), 'View schedule', h('span.visually-hidden', ` of ${s.name || s.id}`)) : h('span.small.muted', 'an editor sets it')];
    }), { empty: 'No sources.' }));

  // properties
  root.appendChild(h('h2', { id: 'properties' }, 'Properties'));
  const srcName = Object.fromEntries((m.sources || []).map((s) => [s.id, s.name || s.id]));
  root.appendChild(table(['Key', 'Type', 'Source', 'Read from', 'Flags'],
    (m.properties || []).map((p) => {
      const o = p.options || {};
      const flags = [];
      if (p.primary_key) flags.push(badge('primary key', 'info'));
      if (p.unique) flags.push(badge('unique'));
      if (p.is_array) flags.push(badge('array'));
      if ((p.filters || []).length) flags.push(badge(`${p.filters.length} filter(s)`));
      return [h('code', p.key), p.type, srcName[p.source] || p.source || '',
        o.column ? `${o.column}${o.aggregationMethod && o.aggregationMethod !== 'exact' ? ` (${o.aggregationMethod})` : ''}` : o.query ? 'query' : '—',
        flags.length ? flags.flatMap((f) => [f, ' ']) : ''];
    }), { empty: 'No properties.' }));

  // groups
  root.appendChild(h('h2', { id: 'groups' }, 'Groups'));
  root.appendChild(table(['Group', 'Rules', '#Members', 'Counted'],
    (m.groups || []).map((g) => [g.name || g.id,
      h('span.small', listedGroupWords(g, m.properties || [])),
      g.member_count === null || g.member_count === undefined ? h('span.muted', 'not counted yet') : String(g.member_count),
      g.counted_at ? fmtAgo(g.counted_at) : '—']),
    { empty: 'No groups.' }));

  // schedules (as listed by the API)
  root.appendChild(h('h2', { id: 'schedules' }, 'Schedules'));
  root.appendChild(table(['Schedule', 'Source', 'When', 'Reads', 'Last run', 'Next runs'],
    (m.schedules || []).map((s) => [link(route('models', id, 'schedules', s.source), s.name || s.id), srcName[s.source] || s.source,
      scheduleText(s), s.incremental ? `changed rows (${s.column || '?'})` : 'everything', fmtAgo(s.last_run_at),
      (s.next_runs || []).length ? h('span.small', s.next_runs.map(fmtRun).join('; ')) : s.next_run_at ? fmtRun(s.next_run_at) : '—']),
    { empty: 'No schedule yet: this model runs only when someone presses Run now. Set a schedule on its primary source above.' }));

  root.appendChild(h('h2', 'Recent runs of this model'));
  root.appendChild(runsTable(modelRuns.slice(0, 10), dmap));
  void ctx;
}

