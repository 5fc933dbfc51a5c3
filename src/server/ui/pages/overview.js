// pages/overview.js: the overview page (#/): models, apps, recent runs and failed rows at
// a glance, and the run helpers the overview, model and runs pages share.
// Routed by app.js.
import { append, fmtTime, h, link, pageHeader, plural, route, table, toast } from '../lib/dom.js';
import { can, destName, destinationsById, get, itemsOf, post, runsOf, state } from '../lib/api.js';
import { every, go, refreshStatus, render } from '../app.js';
import { chartLegend, runsChart } from '../chart.js';
import { errorState } from './errors.js';
import { runsTable } from './runs.js';
import { num, runBadge } from '../safety.js';

export async function runNow(body, btn) {
  if (btn) btn.disabled = true;
  try {
    const r = await post('/runs', body);
    const started = (r && r.started) || [];
    const queued = (r && r.queued) || [];
    const parts = [];
    const names = await destinationsById().catch(() => ({}));
    const nm = (ids) => ids.map((x) => destName(names, x)).join(', ');
    if (started.length) parts.push(`started ${nm(started)}`);
    if (queued.length) parts.push(`queued ${nm(queued)} (already running)`);
    go('#/runs', `Run requested: ${parts.join('; ') || 'nothing to run'}.`);
  } catch (e) {
    if (btn) btn.disabled = false;
    if (e.status === 409) toast(`A run is already going: ${e.body.detail || e.message}`);
    else toast(`Run failed to start: ${e.message}${e.body && e.body.hint ? ` — ${e.body.hint}` : ''}`, 8000);
  }
}

// ---------------------------------------------------------------- overview

export async function viewOverview(root, _p, _q, ctx) {
  await refreshStatus();
  const [models, apps, runsRes, errs, dests] = await Promise.all([
    get('/models'), get('/apps'), get('/runs?limit=100'), get('/errors?limit=100').catch(() => ({ items: [] })), get('/destinations'),
  ]);
  const runs = runsOf(runsRes);
  const seenRows = new Set();
  const errors = itemsOf(errs).filter((e) => {
    const k = `${e.destination}\u0000${e.key}`;
    const first = !seenRows.has(k);
    seenRows.add(k);
    return first && errorState(e, runs).failing;
  });
  const brazeApps = itemsOf(apps).filter((a) => a.type === 'braze');
  const dmap = Object.fromEntries(itemsOf(dests).map((d) => [d.id, d]));
  const day = Date.now() - 86400000;
  const recent = runs.filter((r) => r.started_at && r.started_at >= day);
  append(root, pageHeader('Overview', 'What joey keeps in sync with Braze, and how the last runs went.'));
  if (state.status && state.status.repair) {
    root.appendChild(h('div.notice.error', h('h2', 'joey is in repair mode'), h('p', 'Its configuration could not be loaded when it started, so nothing is shown or run until the files are fixed.'),
      can('editor') ? link('#/repair', 'Repair the configuration') : h('p', 'Ask an editor or an admin to fix it.')));
    return;
  }
  if (!brazeApps.length) {
    root.appendChild(h('div.notice.info', h('h2', 'Start here: connect Braze'),
      h('p', 'joey needs a Braze app (an API key and a REST endpoint) before it can send anything.'),
      can('admin') ? link('#/apps/new', 'Connect a Braze app') : h('p', 'An admin connects it (apps hold the API keys).')));
  } else if (!itemsOf(dests).length && models.length) {
    root.appendChild(h('div.notice.info', h('h2', 'Next: add a Braze destination'),
      h('p', 'Pick a model and choose which of its properties go to Braze.'),
      can('editor') ? link(route('models', models[0].id, 'destinations', 'new'), `Add a destination to ${models[0].name || models[0].id}`) : h('p', 'An editor or an admin adds it.')));
  }
  const stat = (num, label, href) => h('div.stat', h('span.num', String(num)), href ? link(href, h('span.label', label)) : h('span.label', label));
  root.appendChild(h('div.stats',
    stat(models.length, models.length === 1 ? 'model' : 'models'),
    stat(itemsOf(dests).length, 'Braze destinations'),
    stat(brazeApps.length, 'Braze apps', '#/apps'),
    stat(recent.filter((r) => r.status === 'success').length, 'successful runs (24 h)', '#/runs'),
    stat(recent.filter((r) => r.status === 'completed_with_failures').length, 'runs with failed rows (24 h)', '#/runs'),
    stat(recent.filter((r) => r.status === 'failed').length, 'failed runs (24 h)', '#/runs'),
    stat(errs && errs.next && errors.length ? `${errors.length}+` : errors.length, 'failed rows', '#/errors')));
  const running = runs.filter((r) => r.status === 'running' || r.status === 'queued');
  if (running.length) root.appendChild(h('p.notice.info', `${plural(running.length, 'run')} going now. `, link('#/runs', 'Follow them')));
  // a run the mass-delete guard held, still the latest of its destination: someone must decide
  const latest = new Map();
  for (const r of runs) if (r.id !== null && r.id !== undefined && !latest.has(r.destination)) latest.set(r.destination, r);
  for (const r of latest.values()) {
    if (!r.held) continue;
    root.appendChild(h('div.notice.warn', { dataset: { heldRun: String(r.id) } }, h('h2', `Waiting for approval: ${destName(dmap, r.destination)}`),
      h('p', `A run would ${r.held.action} ${num(r.held.count)} of ${num(r.held.of)} Braze users, more than this destination allows, so it stopped. An editor or an admin decides.`),
      link(route('runs', r.id), 'Review the held run')));
  }
  root.appendChild(h('h2', 'Runs over time'));
  root.appendChild(h('div.chart', runsChart(runs, { label: (r) => runLabel(r, dmap), onSelect: (r) => go(route('runs', r.id)) }), chartLegend()));
  root.appendChild(h('h2', 'Models'));
  if (can('editor')) root.appendChild(h('div.actions', h('a.button.primary', { href: route('data', 'models', 'new') }, 'New model')));
  root.appendChild(table(['Model', 'Type', 'Primary key', '#Sources', '#Properties', '#Groups', '#Destinations', '#Schedules'],
    models.map((m) => [link(route('models', m.id), m.name || m.id), m.type || '', m.primary_key || '—',
      (m.counts || {}).sources ?? '', (m.counts || {}).properties ?? '', (m.counts || {}).groups ?? '', (m.counts || {}).destinations ?? '', (m.counts || {}).schedules ?? '']),
    { empty: 'No models in the config directory.' }));
  root.appendChild(h('h2', 'Latest runs'));
  root.appendChild(runsTable(runs.slice(0, 8), dmap));
  if (running.length) every(1000, async () => { if (ctx.alive()) render(); return 100000; });
}
export function runStatusText(r) { return runBadge(r).textContent; }
export function runLabel(r, dmap) {
  const c = r.counts || {};
  return `Run ${r.id ?? '(queued)'} of ${destName(dmap, r.destination)}: ${runStatusText(r)}, ${fmtTime(r.started_at)} — ${c.created || 0} created, ${c.updated || 0} updated, ${c.deleted || 0} deleted, ${c.failed || 0} failed`;
}

