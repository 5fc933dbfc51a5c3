// alerts.js: the Alerts pages of joey's web UI (docs/config.md "Alerts", docs/api.md
// "Alerts"): the list with open incidents and recent messages, and the form admins
// create and edit an alert with (channel, scope, triggers, secrets kept as ****), with
// a test send. app.js hands in its helpers; like app.js, every text from the API is
// inserted as text, never parsed as HTML.

const TRIGGERS = [
  { key: 'runFailed', kind: 'bool', label: 'A run failed', help: 'Braze unreachable or refusing the key, the source query failed, unreadable rows, the mass-delete guard.' },
  { key: 'failedRows', kind: 'count', label: 'More than N rows failed in a run', help: 'A whole number; 0 fires on any failed row.' },
  { key: 'failedRowsPercent', kind: 'percent', label: 'More than N % of a run’s rows failed', help: 'Of the rows the run tried to create, update, delete or unsubscribe.' },
  { key: 'noSuccessFor', kind: 'duration', label: 'No successful run for longer than', help: 'e.g. 6h, 90m, 2d. Checked after every run and every minute.' },
  { key: 'deleteGuard', kind: 'bool', label: 'The mass-delete guard held a run', help: 'The run wanted to delete more than the destination’s maxDeletePercent.' },
  { key: 'recordsDropPercent', kind: 'percent', label: 'Records read dropped by more than N %', help: 'Against the previous full read of the destination’s model.' },
  { key: 'runLongerThan', kind: 'duration', label: 'A run took longer than', help: 'e.g. 2h, 45m.' },
];
const CHANNELS = {
  webhook: { label: 'Webhook (signed JSON)', options: ['url', 'secret'] },
  slack: { label: 'Slack incoming webhook', options: ['url'] },
  email: { label: 'Email (SMTP with STARTTLS)', options: ['host', 'port', 'user', 'password', 'from', 'to', 'starttls', 'caFile'] },
};

// app.js's helpers, set once by alertViews (the views below run only after it).
let h, append, clear, route, link, field, fmtTime, fmtAgo, plural, idFollowsName, ID_RE, badge, can, allow, roleNotice,
  get, post, put, itemsOf, errorNotice, pageHeader, table, showDiagnostics, removeObject, go, enc, every, configObjectBody,
  destinationsById;

export function alertViews(ui) {
  ({ h, append, clear, route, link, field, fmtTime, fmtAgo, plural, idFollowsName, ID_RE, badge, can, allow, roleNotice,
    get, post, put, itemsOf, errorNotice, pageHeader, table, showDiagnostics, removeObject, go, enc, every, configObjectBody,
    destinationsById } = ui);
  return { viewAlerts, viewAlertForm };
}

function fmtMs(ms) {
  if (ms % 86400000 === 0) return `${ms / 86400000}d`;
  if (ms % 3600000 === 0) return `${ms / 3600000}h`;
  if (ms % 60000 === 0) return `${ms / 60000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return String(ms);
}
function triggerText(t) {
  const parts = [];
  if (t.runFailed) parts.push('run failed');
  if (t.failedRows !== undefined) parts.push(`> ${t.failedRows} rows failed`);
  if (t.failedRowsPercent !== undefined) parts.push(`> ${t.failedRowsPercent}% rows failed`);
  if (t.noSuccessFor !== undefined) parts.push(`no success for ${typeof t.noSuccessFor === 'number' ? fmtMs(t.noSuccessFor) : t.noSuccessFor}`);
  if (t.deleteGuard) parts.push('delete guard');
  if (t.recordsDropPercent !== undefined) parts.push(`records drop > ${t.recordsDropPercent}%`);
  if (t.runLongerThan !== undefined) parts.push(`run longer than ${typeof t.runLongerThan === 'number' ? fmtMs(t.runLongerThan) : t.runLongerThan}`);
  return parts.join(', ') || '—';
}
function scopeText(s) {
  if (s && s.destinations) return s.destinations.join(', ');
  if (s && s.model) return `model ${s.model}`;
  return 'all destinations';
}
function deliveryBadge(status) {
  return badge(status, status === 'sent' ? 'success' : status === 'failed' ? 'failed' : 'running');
}

async function testAlert(id, box, btn) {
  if (btn) btn.disabled = true;
  clear(box).appendChild(h('p.muted', 'Sending a test message…'));
  try {
    const r = await post(`/alerts/${enc(id)}/test`);
    clear(box);
    if (r && r.ok) box.appendChild(h('div.notice.ok', { role: 'status' }, h('strong', 'Test message sent. '), `Message #${r.delivery}.`));
    else box.appendChild(h('div.notice.error', { role: 'alert' }, h('strong', 'Test message not delivered: '), String((r && r.error) || 'unknown error'),
      r && r.detail ? h('p.break', String(r.detail)) : null, r && r.hint ? h('p', h('strong', 'Hint: '), String(r.hint)) : null));
  } catch (e) {
    clear(box).appendChild(errorNotice(e, 'Test message failed'));
  } finally { if (btn) btn.disabled = false; }
}

function deliveriesTable(items) {
  return table(['#', 'Alert', 'Event', 'Destination', 'Status', 'Attempts', 'Summary', 'Queued', 'Sent / next try'],
    items.map((d) => [String(d.id), link(route('alerts', d.alert), d.alert), d.event, d.destination || '—', deliveryBadge(d.status),
      String(d.attempts), h('span.break', d.summary || '', d.last_error ? h('span.help', `Last error: ${d.last_error}`) : null),
      fmtAgo(d.created_at), d.sent_at ? fmtAgo(d.sent_at) : d.next_at ? fmtAgo(d.next_at) : '—']),
    { empty: 'No messages yet.', caption: 'Messages, newest first' });
}

async function viewAlerts(root, _p, query, ctx) {
  const [alerts, open, dels] = await Promise.all([get('/alerts'), get('/alerts/incidents?open=true&limit=100'),
    get(`/alerts/deliveries?limit=50${query.get('before') ? `&before=${enc(query.get('before'))}` : ''}`)]);
  const admin = can('admin');
  append(root, pageHeader('Alerts', 'Who hears about a sync that goes wrong: one message when a problem starts, one when it clears.',
    admin ? link('#/alerts/new', 'New alert') : h('span.muted', { dataset: { needsRole: 'admin' } }, 'Only admins create and change alerts: they hold webhook URLs and passwords.')));
  const testBox = h('div', { 'aria-live': 'polite' });
  root.appendChild(table(['Name', 'Channel', 'Watches', 'Triggers', 'Open incidents', ''],
    itemsOf(alerts).map((a) => [link(route('alerts', a.id), a.name || a.id), (CHANNELS[a.type] || {}).label || a.type, scopeText(a.scope),
      triggerText(a.triggers || {}), (a.open_incidents || []).length ? badge(String(a.open_incidents.length), 'failed') : badge('0', 'success'),
      h('span', link(route('alerts', a.id), admin ? 'Edit' : 'View', h('span.visually-hidden', ` ${a.name || a.id}`)), ' ',
        allow(h('button.small', { type: 'button', on: { click: (e) => testAlert(a.id, testBox, e.currentTarget) } }, 'Send test', h('span.visually-hidden', ` of ${a.name || a.id}`)), 'admin'))]),
    { empty: 'No alerts yet. Without one, nobody hears about a failing sync unless they look.' }));
  root.appendChild(testBox);
  root.appendChild(h('h2', 'Open incidents'));
  root.appendChild(table(['Alert', 'Destination', 'Trigger', 'What happened', 'Since', 'Seen'],
    itemsOf(open).map((i) => [link(route('alerts', i.alert), i.alert), i.destination, i.trigger, h('span.break', i.summary),
      fmtTime(i.opened_at), plural(i.hits, 'time')]),
    { empty: 'Nothing is wrong right now.' }));
  root.appendChild(h('h2', 'Messages'));
  const box = h('div', deliveriesTable(itemsOf(dels)));
  root.appendChild(box);
  if (dels && dels.next) root.appendChild(h('p', link(`#/alerts?before=${enc(dels.next)}`, 'Older messages')));
  every(5000, async () => {
    const fresh = await get(`/alerts/deliveries?limit=50${query.get('before') ? `&before=${enc(query.get('before'))}` : ''}`);
    if (ctx.alive()) clear(box).appendChild(deliveriesTable(itemsOf(fresh)));
  });
}

// The alert form. Its controls travel in one object `f` between the steps below:
// the identity fields, the scope, the triggers, the channel options, the form itself,
// the alert's incidents and messages, and save.
async function viewAlertForm(root, { alert: alertId }, _q, ctx) {
  const isNew = !alertId;
  const [raw, dmap, models, listed] = await Promise.all([isNew ? null : get(`/config/alerts/${enc(alertId)}`), destinationsById(), get('/models'),
    isNew ? null : get('/alerts')]);
  const existing = raw ? configObjectBody(raw) : null;
  const admin = can('admin');
  append(root, pageHeader(isNew ? 'New alert' : `Alert: ${existing.name || existing.id}`,
    isNew ? 'Choose how to tell people, which destinations to watch and what counts as a problem.'
      : `ID “${existing.id}”${raw.file ? `, saved in ${raw.file}` : ''}.`));
  const o = (existing && existing.options) || {};
  const trig = (existing && existing.triggers) || (isNew ? { runFailed: true } : {});
  const f = { alertId, isNew, existing, admin, ...identityFields(existing, isNew) };
  Object.assign(f, scopeFields(existing, dmap, models));
  f.trigRows = triggerRows(trig);
  Object.assign(f, channelOptions(o));
  f.type.addEventListener('change', () => showChannel(f));

  root.appendChild(alertForm(f));
  f.showScope();
  showChannel(f);
  if (!admin) f.form.querySelectorAll('input,select').forEach((e) => { e.disabled = true; });
  if (!isNew) await alertActivity(root, alertId, listed, ctx);
}

// Name, ID (follows the name until typed in) and channel; an existing alert keeps its ID and channel.
function identityFields(existing, isNew) {
  const name = h('input', { type: 'text', id: 'alert-name', value: existing ? existing.name || '' : '', required: true, autocomplete: 'off' });
  const id = h('input', { type: 'text', id: 'alert-id', value: existing ? existing.id : '', readOnly: !isNew, required: true, pattern: '[A-Za-z0-9_-]{1,191}', spellcheck: 'false' });
  idFollowsName(name, id, isNew);
  const type = h('select', { id: 'alert-type' }, Object.entries(CHANNELS).map(([k, c]) => h('option', { value: k, selected: existing ? existing.type === k : k === 'webhook' }, c.label)));
  if (!isNew) type.disabled = true; // a new type is a new alert: its secrets would go elsewhere
  return { name, id, type };
}

// What the alert watches: every destination, those of a model, or the ones checked.
function scopeFields(existing, dmap, models) {
  const dests = Object.values(dmap);
  const scopeKind = existing && existing.destinationIds ? 'dests' : existing && existing.modelId ? 'model' : 'all';
  const scope = h('select', { id: 'alert-scope' },
    h('option', { value: 'all', selected: scopeKind === 'all' }, 'Every destination'),
    h('option', { value: 'model', selected: scopeKind === 'model' }, 'Every destination of a model'),
    h('option', { value: 'dests', selected: scopeKind === 'dests' }, 'These destinations'));
  const model = h('select', { id: 'alert-model' }, itemsOf(models).map((m) => h('option', { value: m.id, selected: existing && existing.modelId === m.id }, m.name || m.id)));
  const destBoxes = dests.map((d) => h('input', { type: 'checkbox', value: d.id, id: uid2('alert-dest'), checked: !!(existing && (existing.destinationIds || []).includes(d.id)) }));
  const modelField = field('Model', model, null, { field: 'modelId' });
  const destField = h('fieldset.field', { dataset: { field: 'destinationIds' } }, h('legend', 'Destinations'),
    dests.length ? destBoxes.map((b) => h('label.check', b, ` ${dmap[b.value].name || b.value}`)) : h('p.muted', 'No destinations in the config yet.'));
  const showScope = () => { modelField.hidden = scope.value !== 'model'; destField.hidden = scope.value !== 'dests'; };
  scope.addEventListener('change', showScope);
  return { scope, model, destBoxes, modelField, destField, showScope };
}

// One row per trigger: its checkbox and, unless it is yes/no, its value.
function triggerRows(trig) {
  return TRIGGERS.map((t) => {
    const on = h('input', { type: 'checkbox', id: `trig-${t.key}`, checked: trig[t.key] !== undefined && trig[t.key] !== false });
    let val = null;
    if (t.kind !== 'bool') {
      const v = trig[t.key];
      val = h('input', { type: t.kind === 'duration' ? 'text' : 'number', id: `trig-${t.key}-value`, 'aria-label': `${t.label}: value`,
        value: v === undefined ? '' : t.kind === 'duration' && typeof v === 'number' ? fmtMs(v) : String(v),
        min: t.kind === 'duration' ? undefined : '0', max: t.kind === 'percent' ? '100' : undefined, step: t.kind === 'percent' ? 'any' : '1',
        placeholder: t.kind === 'duration' ? '6h' : t.kind === 'percent' ? '5' : '0', spellcheck: 'false' });
    }
    const row = h('div.field.trigger', { dataset: { field: `triggers.${t.key}` } },
      h('label.check', { for: on.id }, on, ` ${t.label}`), val ? [' ', val] : null, h('span.help', t.help));
    return { t, on, val, row };
  });
}

// Every channel's settings (o: the stored options); showChannel shows the chosen channel's.
function channelOptions(o) {
  const opt = {};
  const optField = {};
  const mkSecret = (k, label, help) => {
    const inp = h('input', { type: 'password', id: `alert-${k}`, autocomplete: 'new-password', spellcheck: 'false', value: o[k] ? '****' : '' });
    inp.addEventListener('focus', () => { if (inp.value === '****') inp.select(); });
    opt[k] = inp;
    const stored = o[k] && o[k] !== '****' ? ` Stored as the reference ${o[k]}.` : o[k] ? ' A value is stored: leave **** to keep it.' : '';
    optField[k] = field(label, inp, help + stored, { field: `options.${k}` });
  };
  const mkText = (k, label, help, attrs = {}) => {
    opt[k] = h('input', { type: 'text', id: `alert-${k}`, value: o[k] === undefined ? '' : String(o[k]), spellcheck: 'false', autocomplete: 'off', ...attrs });
    optField[k] = field(label, opt[k], help, { field: `options.${k}` });
  };
  mkSecret('url', 'URL', 'The webhook’s address (kept in joey’s secrets file, never shown again). Through the UI it must be on the operator’s --allow-endpoint list; Slack’s https://hooks.slack.com always is.');
  mkSecret('secret', 'Signing secret', 'Key of the X-Joey-Signature header (HMAC-SHA256 of the body): share it with the receiver.');
  mkText('host', 'SMTP server', 'e.g. smtp.example.com; through the UI, smtp://HOST:PORT must be on the operator’s --allow-endpoint list.');
  mkText('port', 'Port', '587 (STARTTLS) by default; 465 for TLS from the start.', { type: 'number', min: '1', max: '65535', placeholder: '587' });
  mkText('user', 'User name', 'For AUTH; left empty: no authentication.');
  mkSecret('password', 'Password', 'Sent only after the connection is encrypted.');
  mkText('from', 'From', 'One address, e.g. joey@example.com.');
  mkText('to', 'To', 'Addresses separated by commas.');
  opt.starttls = h('input', { type: 'checkbox', id: 'alert-starttls', checked: o.starttls !== false });
  optField.starttls = h('div.field', { dataset: { field: 'options.starttls' } }, h('label.check', { for: 'alert-starttls' }, opt.starttls, ' Require STARTTLS'),
    h('span.help', 'Unchecked only for a relay on 127.0.0.1 or localhost.'));
  mkText('caFile', 'CA file', 'A PEM file of certificate authorities for the server’s certificate (default: the system’s).');
  return { opt, optField };
}
function showChannel(f) {
  const want = CHANNELS[f.type.value].options;
  for (const [k, fld] of Object.entries(f.optField)) fld.hidden = !want.includes(k);
}

// The form around the fields, with its buttons; sets f.form, f.diagBox, f.saveBtn.
function alertForm(f) {
  const { isNew, admin, alertId } = f;
  f.diagBox = h('div', { id: 'form-diagnostics' });
  const testBox = h('div', { id: 'alert-test-result', 'aria-live': 'polite' });
  f.saveBtn = allow(h('button.primary', { type: 'submit' }, isNew ? 'Save alert' : 'Save changes'), 'admin');
  f.form = h('form.form', { novalidate: true, on: { submit: (e) => { e.preventDefault(); if (admin) saveAlert(f); } } },
    roleNotice('admin', 'Changing an alert (it holds webhook URLs and passwords)'),
    f.diagBox,
    field('Name', f.name, 'Shown in the messages, e.g. “Ops on call”.', { field: 'name' }),
    field('ID', f.id, isNew ? 'Used in the config files; letters, digits, _ and -.' : 'The ID cannot change.', { field: 'id' }),
    field('Channel', f.type, isNew ? 'How the message travels.' : 'To use another channel, make a new alert.', { field: 'type' }),
    h('h2', 'Watch'), field('Which destinations', f.scope, null), f.modelField, f.destField,
    h('h2', 'When'), h('p.help', 'One message when a problem starts and one when it clears, however many runs see it.'),
    f.trigRows.map((r) => r.row),
    h('h2', 'Channel settings'), Object.values(f.optField),
    h('div.actions', f.saveBtn,
      !isNew ? allow(h('button', { type: 'button', id: 'alert-test', on: { click: (e) => testAlert(alertId, testBox, e.currentTarget) } }, 'Send test message'), 'admin') : null,
      link('#/alerts', admin ? 'Cancel' : 'Back'),
      !isNew ? allow(h('button.danger', { type: 'button', on: { click: () => removeObject('alerts', alertId, '#/alerts') } }, 'Delete alert'), 'admin') : null),
    testBox);
  return f.form;
}

// An existing alert's open incidents (from the /alerts listing) and its messages, refreshed.
async function alertActivity(root, alertId, listed, ctx) {
  const me = itemsOf(listed).find((a) => a.id === alertId);
  root.appendChild(h('h2', 'Open incidents'));
  root.appendChild(table(['Destination', 'Trigger', 'What happened', 'Since', 'Seen'],
    ((me && me.open_incidents) || []).map((i) => [i.destination, i.trigger, h('span.break', i.summary), fmtTime(i.opened_at), plural(i.hits, 'time')]),
    { empty: 'None: nothing this alert watches is wrong right now.' }));
  root.appendChild(h('h2', 'Messages'));
  const box = h('div', deliveriesTable(itemsOf(await get(`/alerts/deliveries?alert=${enc(alertId)}&limit=50`))));
  root.appendChild(box);
  every(5000, async () => {
    const fresh = await get(`/alerts/deliveries?alert=${enc(alertId)}&limit=50`);
    if (ctx.alive()) clear(box).appendChild(deliveriesTable(itemsOf(fresh)));
  });
}

// The checked triggers with their values; a missing value goes to errs.
function formTriggers(trigRows, errs) {
  const triggers = {};
  for (const { t, on, val } of trigRows) {
    if (!on.checked) continue;
    if (t.kind === 'bool') { triggers[t.key] = true; continue; }
    const s = val.value.trim();
    if (!s) { errs.push({ field: `triggers.${t.key}`, message: `Give a value for “${t.label}”.` }); continue; }
    triggers[t.key] = t.kind === 'duration' ? (/^\d+$/.test(s) ? Number(s) : s) : Number(s);
  }
  return triggers;
}

// The chosen channel's settings that are filled in.
function formOptions(chan, opt) {
  const options = {};
  for (const k of CHANNELS[chan].options) {
    if (k === 'starttls') { if (!opt.starttls.checked) options.starttls = false; continue; }
    const s = opt[k].value.trim();
    if (!s) continue;
    options[k] = k === 'port' ? Number(s) : s;
  }
  return options;
}

// Check the form, then write the alert through the config API.
async function saveAlert(f) {
  const { isNew, existing, alertId, name, id, type, form, diagBox, saveBtn } = f;
  const errs = [];
  const chan = type.value;
  if (!name.value.trim()) errs.push({ field: 'name', message: 'Give the alert a name.' });
  if (!ID_RE.test(id.value)) errs.push({ field: 'id', message: 'The ID may hold only letters, digits, _ and - (1 to 191 characters).' });
  const triggers = formTriggers(f.trigRows, errs);
  if (!Object.keys(triggers).length) errs.push({ field: 'triggers.runFailed', message: 'Choose at least one trigger.' });
  const options = formOptions(chan, f.opt);
  if (!isNew && options.url && options.url !== '****') {
    for (const k of ['secret', 'password']) {
      if (options[k] === '****') errs.push({ field: `options.${k}`, message: 'The URL changed: type the secret again. joey sends a stored secret only where it was saved for.' });
    }
  }
  if (errs.length) { showDiagnostics(form, diagBox, errs); return; }
  const obj = existing ? { ...existing } : { id: id.value, class: 'Alert' };
  obj.class = 'Alert';
  obj.name = name.value.trim();
  obj.type = chan;
  delete obj.destinationIds;
  delete obj.modelId;
  if (f.scope.value === 'model' && f.model.value) obj.modelId = f.model.value;
  if (f.scope.value === 'dests') obj.destinationIds = f.destBoxes.filter((b) => b.checked).map((b) => b.value);
  obj.triggers = triggers;
  obj.options = options;
  saveBtn.disabled = true;
  try {
    if (isNew) await post('/config/alerts', obj); else await put(`/config/alerts/${enc(alertId)}`, obj);
    go(route('alerts', obj.id), isNew ? `Saved the alert “${obj.name}”. Send a test message to check the channel.` : `Saved “${obj.name}”.`);
    if (!isNew) saveBtn.disabled = false;
  } catch (e) {
    saveBtn.disabled = false;
    showDiagnostics(form, diagBox, e.body && Array.isArray(e.body.diagnostics) ? e.body.diagnostics : null, e);
  }
}

let seq = 0;
function uid2(p) { seq += 1; return `${p}-${seq}`; }
