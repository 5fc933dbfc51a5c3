// pages/plan.js: the plan preview of a model (#/models/<id>/plan[/<dest>]): what a run
// would send to each destination, before it runs.
// Routed by app.js.
import { append, badge, clear, enc, fmtValue, h, link, pageHeader, plural, remoteName, route, slug, table } from '../lib/dom.js';
import { allow, can, destName, errorNotice, get, post, roleNotice, syncModeLabel } from '../lib/api.js';
import { runNow } from './overview.js';

// ---------------------------------------------------------------- plan preview

export async function viewPlan(root, { model: id, dest }, _q, ctx) {
  const m = await get(`/models/${enc(id)}`);
  const dests = m.destinations || [];
  const dmap = Object.fromEntries(dests.map((d) => [d.id, d]));
  append(root, pageHeader(`Plan: ${dest ? destName(dmap, dest) : m.name || m.id}`,
    'What the next run would send to Braze. Nothing is sent and nothing is written.'));
  // a viewer may not preview (POST /plan is an editor's): the notice says so, and no
  // request is sent only to show its 403
  const mayPlan = can('editor');
  if (!mayPlan) root.appendChild(roleNotice('editor', 'Previewing a plan (it reads the sources and asks Braze)'));
  const picker = h('select', { id: 'plan-dest' },
    h('option', { value: '' }, 'All destinations of this model'),
    dests.map((d) => h('option', { value: d.id, selected: d.id === dest }, d.name || d.id)));
  const full = h('input', { type: 'checkbox', id: 'plan-full' });
  const out = h('div', { 'aria-live': 'polite', id: 'plan-result' });
  const runBtn = allow(h('button.primary', { type: 'button', on: { click: (e) => runNow(picker.value ? { destination: picker.value } : { model: id }, e.currentTarget) } }, 'Run now'), 'editor');
  const load = async () => {
    if (!mayPlan) return;
    clear(out).appendChild(h('p.muted', 'Reading the sources and comparing with what Braze holds…'));
    const body = {};
    if (picker.value) body.destination = picker.value;
    if (full.checked) body.full = true;
    let plan;
    try {
      try {
        plan = await post('/plan', { ...body, details: true });
      } catch (e) {
        // A server that does not take "details" answers 400 naming it: ask without.
        if (e.status !== 400) throw e;
        plan = await post('/plan', body);
      }
    } catch (e) {
      if (!ctx.alive()) return;
      clear(out).appendChild(errorNotice(e, 'The plan could not be made'));
      return;
    }
    if (!ctx.alive()) return;
    clear(out);
    renderPlan(out, plan, dests.map((d) => d.id), dmap);
  };
  picker.addEventListener('change', () => { history.replaceState(null, '', picker.value ? route('models', id, 'plan', picker.value) : route('models', id, 'plan')); load(); });
  full.addEventListener('change', load);
  root.appendChild(h('div.actions',
    h('label', { for: 'plan-dest' }, 'Destination'), picker,
    h('span.inline', full, h('label', { for: 'plan-full' }, 'Full run (ignore the incremental mark)')),
    allow(h('button', { type: 'button', on: { click: load } }, 'Refresh'), 'editor'), runBtn));
  root.appendChild(out);
  load();
}

export function renderPlan(out, plan, destIds, dmap) {
  const list = (plan.destinations || []).filter((d) => destIds.includes(d.id));
  for (const md of plan.models || []) {
    out.appendChild(h('p', `Model “${md.id}”: ${plural(md.records ?? 0, 'record')} read`,
      md.invalid_values ? `, ${plural(md.invalid_values, 'value')} that do not fit their property's type` : '',
      md.orphans ? `, ${plural(md.orphans, 'orphan row')}` : '',
      md.incremental_since !== undefined && md.incremental_since !== null ? `, incremental since ${fmtValue(md.incremental_since)}` : '', '.'));
  }
  if (plan.guard_tripped) out.appendChild(h('div.notice.error', { role: 'alert' }, h('strong', 'Mass-delete guard: '), 'a run would delete more than the allowed share of Braze users, so it will stop before deleting and wait for an admin or an editor to approve it on the Runs page. Check the source first: an empty or cut-off table looks like this.'));
  if (!list.length) { out.appendChild(h('p.empty', 'No destination to plan for.')); return; }
  for (const d of list) {
    const c = d.counts || {};
    const card = h('section.card', { 'aria-labelledby': `plan-${slug(d.id)}`, dataset: { destination: d.id } });
    card.appendChild(h('h2', { id: `plan-${slug(d.id)}` }, destName(dmap, d.id), ' ', h('span.muted.small', `(${syncModeLabel(d.sync_mode)})`)));
    card.appendChild(h('div.stats',
      ['create', 'update', 'delete', 'unsubscribe', 'unchanged'].map((k) => h('div.stat', { dataset: { count: k } }, h('span.num', String(c[k] ?? 0)), h('span.label', { create: 'to create', update: 'to update', delete: 'to delete', unsubscribe: 'to unsubscribe', unchanged: 'unchanged' }[k]))),
      h('div.stat', h('span.num', String(d.data_points ?? 0)), h('span.label', 'Braze data points'))));
    const extra = [];
    if (d.subscribes) extra.push(`${plural(d.subscribes, 'subscription change')} to subscribe`);
    if (d.unsubscribes) extra.push(`${d.unsubscribes} to unsubscribe from subscription groups`);
    if (d.retries) extra.push(`${plural(d.retries, 'failed row')} to retry`);
    if (d.state_records !== undefined && d.state_records !== null) extra.push(`${plural(d.state_records, 'record')} already confirmed in Braze`);
    if (extra.length) card.appendChild(h('p.small.muted', extra.join(' · ')));
    if (d.guard && d.guard.tripped) card.appendChild(h('p.notice.error', `Mass-delete guard: ${d.guard.deletes} deletes exceed ${d.guard.max_delete_percent}% of the users. The run would stop.`));
    if (Array.isArray(d.records)) {
      const changed = d.records.filter((r) => r.action !== 'unchanged');
      const sample = changed.slice(0, 25);
      card.appendChild(table(['Record', 'Action', 'Changes', 'Groups'],
        sample.map((r) => [link(route('records', d.model || '', r.key), String(r.key)), badge(r.action, r.action),
          h('ul.small', Object.entries(r.changes || {}).map(([f, ch]) => h('li', h('code', f), ': ', fmtValue(ch && ch.old), ' → ', fmtValue(ch && ch.new)))),
          r.groups ? h('span.small', [(r.groups.add || []).length ? `joins ${r.groups.add.map((g) => remoteName(dmap[d.id], g)).join(', ')}` : '', (r.groups.remove || []).length ? ` leaves ${r.groups.remove.map((g) => remoteName(dmap[d.id], g)).join(', ')}` : ''].join('').trim() || '—') : '—']),
        { caption: changed.length > sample.length ? `A sample: ${sample.length} of ${changed.length} changed records` : `${plural(changed.length, 'changed record')}`, empty: 'Nothing would change.' }));
    } else {
      card.appendChild(h('p.small.muted', 'This server does not list the individual records of a plan (only the counts).'));
    }
    out.appendChild(card);
  }
}

