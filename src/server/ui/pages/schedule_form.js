// pages/schedule_form.js: the form of the schedule of a source
// (#/models/<id>/schedules/<source>).
// Routed by app.js.
import { append, enc, field, h, link, pageHeader, route, slug } from '../lib/dom.js';
import { ApiError, allow, api, can, get, post, put, roleNotice } from '../lib/api.js';
import { configObjectBody, removeObject, showDiagnostics } from '../lib/forms.js';
import { go } from '../app.js';
import { schedulePicker, scheduleWords } from '../schedule.js';

// ---------------------------------------------------------------- schedule form

export async function viewScheduleForm(root, { model: modelId, source: sourceId }, _q, ctx) {
  const m = await get(`/models/${enc(modelId)}`);
  const src = (m.sources || []).find((s) => s.id === sourceId);
  if (!src) throw new ApiError(404, { error: `no source “${sourceId}” in model “${modelId}”` });
  const summary = (m.schedules || []).find((s) => s.source === sourceId);
  const existing = summary ? configObjectBody(await get(`/config/schedules/${enc(summary.id)}`)) : null;
  const opts = (existing && existing.options) || {};
  append(root, pageHeader(`Schedule: ${src.name || src.id}`, `When joey reads “${src.name || src.id}” and sends the changes of ${m.name || m.id} to Braze.`));
  if (!src.primary) root.appendChild(h('div.notice.warn', 'This is not the model’s primary source: joey ignores schedules of secondary sources (they are read with the primary one).'));
  const diagBox = h('div', { id: 'form-diagnostics' });
  const name = h('input', { type: 'text', id: 'sched-name', value: existing ? existing.name || '' : `${src.name || src.id} schedule`, autocomplete: 'off' });
  const picker = schedulePicker(existing, api);
  const whenSet = picker.element;
  const cols = [...new Set([...Object.keys(src.mapping || {}), ...(m.properties || []).filter((p) => p.source === sourceId && p.options && p.options.column).map((p) => p.options.column)])];
  const incremental = existing ? existing.incremental !== false : false;
  const readSet = h('fieldset', { dataset: { field: 'incremental' } }, h('legend', 'What each run reads'),
    h('div.choice', h('input', { type: 'radio', name: 'reads', id: 'reads-all', value: 'all', checked: !incremental }),
      h('label', { for: 'reads-all' }, h('span.choice-label', 'Everything'), h('span.choice-help', 'Every row, every run: deletions in the source are noticed.'))),
    h('div.choice', h('input', { type: 'radio', name: 'reads', id: 'reads-inc', value: 'inc', checked: incremental }),
      h('label', { for: 'reads-inc' }, h('span.choice-label', 'Only rows changed since the last run (incremental)'), h('span.choice-help', 'Faster; needs a column every change moves forward, such as updated_at. Deleted rows are noticed only by a full run.'))));
  const column = h('input', { type: 'text', id: 'sched-column', list: 'sched-columns', value: opts.column || Object.keys(src.mapping || {})[0] || '', spellcheck: 'false' });
  const datalist = h('datalist', { id: 'sched-columns' }, cols.map((c) => h('option', { value: c })));
  const saveBtn = allow(h('button.primary', { type: 'submit', id: 'save-schedule' }, existing ? 'Save schedule' : 'Create schedule'), 'editor');
  const form = h('form.form', { novalidate: true, on: { submit: (e) => { e.preventDefault(); if (can('editor')) save(); } } },
    roleNotice('editor', 'Changing a schedule'),
    diagBox,
    field('Name', name, null, { field: 'name' }),
    whenSet, readSet,
    h('div.field', { dataset: { field: 'options.column' } }, h('label', { for: 'sched-column' }, 'Change-tracking column'), column, datalist,
      h('span.help', 'The high-water-mark column of the source table (needed for table sources).')),
    h('div.actions', saveBtn, link(route('models', modelId), can('editor') ? 'Cancel' : 'Back'),
      existing ? allow(h('button.danger', { type: 'button', on: { click: () => removeObject('schedules', existing.id, route('models', modelId)) } }, 'Remove schedule'), 'editor') : null));
  root.appendChild(form);

  async function save() {
    const pick = picker.read();
    const w = pick.kind;
    const obj = existing ? { ...existing } : { id: slug(`${sourceId}_schedule`), class: 'Schedule', sourceId };
    obj.class = 'Schedule';
    obj.name = name.value.trim() || `${src.name || src.id} schedule`;
    const o = { ...(obj.options || {}) };
    const errs = [...pick.errors];
    delete o.cron;
    obj.recurring = pick.recurring;
    if (pick.recurringFrequency) obj.recurringFrequency = pick.recurringFrequency; else delete obj.recurringFrequency;
    if (pick.cron) o.cron = pick.cron;
    obj.incremental = form.querySelector('input[name="reads"]:checked').value === 'inc';
    if (column.value.trim()) o.column = column.value.trim(); else delete o.column;
    if (obj.incremental && !o.column) errs.push({ field: 'options.column', message: 'An incremental schedule needs its change-tracking column.' });
    obj.options = o;
    if (errs.length) { showDiagnostics(form, diagBox, errs); return; }
    saveBtn.disabled = true;
    try {
      if (existing) await put(`/config/schedules/${enc(existing.id)}`, obj); else await post('/config/schedules', obj);
      if (!ctx.alive()) return;
      go(route('models', modelId), `Saved the schedule: runs ${scheduleWords({ recurring: obj.recurring, frequency_ms: obj.recurringFrequency, cron: o.cron })}.`);
    } catch (e) {
      saveBtn.disabled = false;
      showDiagnostics(form, diagBox, e.body && Array.isArray(e.body.diagnostics) ? e.body.diagnostics : null, e);
    }
  }
}

