// pages/apps.js: the apps (#/apps) and the form of one app (#/apps/new, #/apps/<id>):
// Braze apps and database or warehouse apps (one field per option of the type).
// Routed by app.js.
import { ID_RE, append, clear, enc, field, fmtValue, h, idFollowsName, link, pageHeader, route, table } from '../lib/dom.js';
import { allow, api, can, catalog, errorNotice, get, itemsOf, post, roleNotice } from '../lib/api.js';
import { configObjectBody, removeObject, showDiagnostics } from '../lib/forms.js';
import { go } from '../app.js';
import { saveConfig } from '../safety.js';

// ---------------------------------------------------------------- apps

export async function viewApps(root) {
  const apps = itemsOf(await get('/apps'));
  const admin = can('admin');
  append(root, pageHeader('Apps', 'A Braze app is an API key and the REST endpoint of your Braze instance: destinations send through one. A database or warehouse app is where sources read from.',
    admin ? [link('#/apps/new', 'Connect a Braze app'), ' ', link('#/apps/new?type=data', 'Connect a database or warehouse')]
      : h('span.muted', { dataset: { needsRole: 'admin' } }, 'Only admins connect and change apps: they hold the API keys and passwords.')));
  root.appendChild(table(['Name', 'Type', 'Endpoint / host / file', 'Used by', ''],
    apps.map((a) => [link(route('apps', a.id), a.name || a.id), APP_TYPE_NAMES[a.type] || a.type,
      h('span.break', String((a.options || {}).restEndpoint || (a.options || {}).host || (a.options || {}).account || (a.options || {}).project_id || (a.options || {}).file || '—')),
      (a.used_by || []).join(', ') || h('span.muted', 'nothing'),
      link(route('apps', a.id), admin ? 'Edit' : 'View', h('span.visually-hidden', ` ${a.name || a.id}`))]),
    { empty: 'No apps yet.' }));
}

export const APP_TYPE_NAMES = { braze: 'Braze', sqlite: 'SQLite', postgres: 'PostgreSQL', mysql: 'MySQL / MariaDB', csv: 'CSV files',
  redshift: 'Amazon Redshift', clickhouse: 'ClickHouse', snowflake: 'Snowflake (access token)', 'snowflake-keypair': 'Snowflake (key pair)',
  bigquery: 'Google BigQuery' };
// The name and ID inputs of an app form: a new app's ID follows its name (as a slug) until
// the ID is typed in; a saved app's ID cannot change.
function nameAndId(existing, isNew) {
  const name = h('input', { type: 'text', id: 'app-name', value: existing ? existing.name || '' : '', required: true, autocomplete: 'off' });
  const id = h('input', { type: 'text', id: 'app-id', value: existing ? existing.id : '', readOnly: !isNew, required: true, pattern: '[A-Za-z0-9_-]{1,191}', spellcheck: 'false' });
  idFollowsName(name, id, isNew);
  return { name, id };
}

// The "Test connection" button of an app form: POST /apps/{id}/test, the answer into box
// (busy while it runs; okText(answer): the words after "Connection OK.").
async function testConnection(aid, btn, box, ctx, busy, okText) {
  btn.disabled = true;
  clear(box).appendChild(h('p.muted', busy));
  try {
    const r = await post(`/apps/${enc(aid)}/test`);
    if (!ctx.alive()) return;
    clear(box);
    if (r && r.ok) box.appendChild(h('div.notice.ok', h('strong', 'Connection OK. '), okText(r)));
    else box.appendChild(h('div.notice.error', h('strong', 'Connection failed: '), fmtValue((r && r.error) || 'unknown error'),
      r && r.hint ? h('p', h('em', 'What to do: '), String(r.hint)) : null,
      r && r.detail ? h('details.small', h('summary', 'Technical detail'), h('p.break', String(r.detail))) : null));
  } catch (e) {
    clear(box).appendChild(errorNotice(e, 'Connection test failed'));
  } finally { btn.disabled = false; }
}

// "ssl_cert" -> "SSL cert", "statementTimeout" -> "Statement timeout"
export function optionLabel(n) {
  const w = n.replace(/_/g, ' ').replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase().replace(/\bssl\b/g, 'SSL').replace(/\bid\b/g, 'ID');
  return w.charAt(0).toUpperCase() + w.slice(1);
}

// A database or warehouse app: one field per option of its type (the catalog's list).
export async function viewDataAppForm(root, appId, existing, query, ctx) {
  const isNew = !appId;
  const cat = await catalog();
  const types = cat.app_types.filter((t) => t !== 'braze');
  let type = existing ? existing.type : (types.includes(query.get('type')) ? query.get('type') : types[0]);
  append(root, pageHeader(isNew ? 'Connect a database or warehouse' : `App: ${existing.name || existing.id}`,
    'Sources read users and their properties from it. Passwords and keys are kept out of the config files.'));
  const o = (existing && existing.options) || {};
  const { name, id } = nameAndId(existing, isNew);
  const typeSel = h('select', { id: 'app-type', disabled: !isNew },
    (isNew ? types : [type]).map((t) => h('option', { value: t, selected: t === type }, APP_TYPE_NAMES[t] || t)));
  const optBox = h('div', { id: 'app-options' });
  let inputs = [];
  function drawOptions() {
    clear(optBox);
    inputs = (cat.app_options[type] || []).map((op) => {
      const cur = o[op.name];
      const ctlId = `app-opt-${op.name}`;
      let ctl;
      if (op.kind === 'bool') {
        ctl = h('input', { type: 'checkbox', id: ctlId, checked: cur === true });
        optBox.appendChild(h('div.field', { dataset: { field: `options.${op.name}` } },
          h('label.check', ctl, optionLabel(op.name))));
      } else {
        ctl = h('input', {
          type: op.secret ? 'password' : op.kind === 'number' ? 'number' : 'text', id: ctlId,
          value: cur === undefined || cur === null ? '' : op.secret && cur !== '' ? '****' : String(cur),
          required: op.required, spellcheck: 'false', autocomplete: op.secret ? 'new-password' : 'off',
        });
        optBox.appendChild(field(optionLabel(op.name) + (op.required ? '' : ' (optional)'), ctl,
          op.secret ? (cur ? 'A value is stored. Leave **** to keep it, or type a new one.' : 'Kept in joey’s secrets file, never in the config files.') : null,
          { field: `options.${op.name}` }));
      }
      return { op, ctl };
    });
  }
  drawOptions();
  typeSel.addEventListener('change', () => { type = typeSel.value; drawOptions(); });
  const diagBox = h('div', { id: 'form-diagnostics' });
  const testBox = h('div', { id: 'test-result', 'aria-live': 'polite' });
  const saveBtn = allow(h('button.primary', { type: 'submit' }, isNew ? 'Save app' : 'Save changes'), 'admin');
  const form = h('form.form', { novalidate: true, on: { submit: (e) => { e.preventDefault(); if (can('admin')) save(); } } },
    roleNotice('admin', 'Changing an app (it holds a password or key)'),
    diagBox,
    field('Type', typeSel, isNew ? 'The kind of database or warehouse.' : 'The type cannot change.', { field: 'type' }),
    field('Name', name, 'Shown in joey, e.g. “Warehouse”.', { field: 'name' }),
    field('ID', id, isNew ? 'Used in the config files; letters, digits, _ and -. Filled in from the name.' : 'The ID cannot change.', { field: 'id' }),
    optBox,
    h('div.actions', saveBtn,
      !isNew ? allow(h('button', { type: 'button', id: 'test-connection', on: { click: (e) => testData(e.currentTarget) } }, 'Test connection'), 'admin') : null,
      link('#/apps', can('admin') ? 'Cancel' : 'Back'),
      !isNew ? allow(h('button.danger', { type: 'button', on: { click: () => removeObject('apps', appId, '#/apps') } }, 'Delete app'), 'admin') : null),
    testBox);
  root.appendChild(form);

  function testData(btn) {
    return testConnection(appId, btn, testBox, ctx, 'Connecting…', () => 'joey could connect and read.');
  }

  async function save() {
    const errs = [];
    if (!name.value.trim()) errs.push({ field: 'name', message: 'Give the app a name.' });
    if (!ID_RE.test(id.value)) errs.push({ field: 'id', message: 'The ID may hold only letters, digits, _ and - (1 to 191 characters).' });
    const options = {};
    for (const { op, ctl } of inputs) {
      if (op.kind === 'bool') { if (ctl.checked || o[op.name] !== undefined) options[op.name] = ctl.checked; continue; }
      const v = ctl.value.trim();
      if (!v) { if (op.required) errs.push({ field: `options.${op.name}`, message: `Enter the ${optionLabel(op.name).toLowerCase()}.` }); continue; }
      if (op.kind === 'number') {
        const n = Number(v);
        if (!Number.isFinite(n)) { errs.push({ field: `options.${op.name}`, message: `${optionLabel(op.name)} must be a number.` }); continue; }
        options[op.name] = n;
      } else options[op.name] = v;
    }
    if (errs.length) { showDiagnostics(form, diagBox, errs); return; }
    const obj = existing ? { ...existing } : { id: id.value, class: 'App', type };
    obj.class = 'App';
    obj.name = name.value.trim();
    obj.options = options;
    saveBtn.disabled = true;
    try {
      const saved = await saveConfig(api, isNew ? 'POST' : 'PUT', isNew ? '/config/apps' : `/config/apps/${enc(appId)}`, obj);
      if (!saved) { saveBtn.disabled = false; return; }
      go(route('apps', obj.id), isNew ? `Saved the app “${obj.name}”. Now test the connection.` : `Saved “${obj.name}”.`);
      if (!isNew) saveBtn.disabled = false;
    } catch (e) {
      saveBtn.disabled = false;
      showDiagnostics(form, diagBox, e.body && Array.isArray(e.body.diagnostics) ? e.body.diagnostics : null, e);
    }
  }
}

export async function viewAppForm(root, { app: appId }, query, ctx) {
  const isNew = !appId;
  const raw = isNew ? null : await get(`/config/apps/${enc(appId)}`);
  const existing = raw ? configObjectBody(raw) : null;
  if ((existing && existing.type !== 'braze') || (isNew && query.get('type'))) return viewDataAppForm(root, appId, existing, query, ctx);
  append(root, pageHeader(isNew ? 'Connect a Braze app' : `Braze app: ${existing.name || existing.id}`,
    isNew ? 'joey sends user profiles through this app. The key is checked with Braze when you save.' : 'The key is checked with Braze when it changes.'));
  const o = (existing && existing.options) || {};
  const { name, id } = nameAndId(existing, isNew);
  const endpoint = h('input', { type: 'text', id: 'app-endpoint', inputmode: 'url', value: o.restEndpoint || '', required: true, placeholder: 'https://rest.iad-01.braze.com', spellcheck: 'false', autocomplete: 'off' });
  const storedKey = o.apiKey;
  const key = h('input', { type: 'password', id: 'app-key', autocomplete: 'new-password', spellcheck: 'false', required: isNew, value: storedKey ? '****' : '' });
  key.addEventListener('focus', () => { if (key.value === '****') key.select(); });
  const showKey = h('button.small', { type: 'button', 'aria-controls': 'app-key', 'aria-pressed': 'false', on: { click: () => { const s = key.type === 'password'; key.type = s ? 'text' : 'password'; showKey.setAttribute('aria-pressed', String(s)); showKey.textContent = s ? 'Hide' : 'Show'; } } }, 'Show');
  const diagBox = h('div', { id: 'form-diagnostics' });
  const testBox = h('div', { id: 'test-result', 'aria-live': 'polite' });
  const keyNote = storedKey && (/^GROUPAROO_OPTION__/.test(storedKey) || /^\$\{.+\}$/.test(storedKey)) ? 'A key is stored, outside the config files (set up by whoever installed joey, or saved here). Leave **** to keep it, or type a new key to replace it.'
    : storedKey ? 'A key is stored. Leave **** to keep it, or type a new one to replace it.'
      : 'Braze → Settings → APIs and Identifiers → REST API keys. It needs the users.track, users.export.ids, users.delete, subscription.status.set and campaigns.list permissions. joey keeps it out of the config files.';
  const keyNoteFull = storedKey ? `${keyNote} A stored key goes only to the endpoint it was saved for: a new endpoint needs the key typed again.` : keyNote;
  const saveBtn = allow(h('button.primary', { type: 'submit' }, isNew ? 'Save app' : 'Save changes'), 'admin');
  const form = h('form.form', { novalidate: true, on: { submit: (e) => { e.preventDefault(); if (can('admin')) save(); } } },
    roleNotice('admin', 'Changing a Braze app (it holds the API key)'),
    diagBox,
    field('Name', name, 'Shown in joey, e.g. “Braze production”.', { field: 'name' }),
    field('ID', id, isNew ? 'Used in the config files; letters, digits, _ and -. Filled in from the name.' : 'The ID cannot change.', { field: 'id' }),
    h('div.field', { dataset: { field: 'options.apiKey' } },
      h('label', { for: 'app-key' }, 'REST API key'),
      h('div.password-row', key, showKey),
      h('span.help', { id: 'app-key-help' }, keyNoteFull)),
    field('REST endpoint URL', endpoint, 'From Braze’s “API and SDK endpoints” page, e.g. https://rest.fra-01.braze.eu.', { field: 'options.restEndpoint' }),
    h('div.actions', saveBtn,
      !isNew ? allow(h('button', { type: 'button', id: 'test-connection', on: { click: (e) => testApp(appId, e.currentTarget) } }, 'Test connection'), 'admin') : null,
      link('#/apps', can('admin') ? 'Cancel' : 'Back'),
      !isNew ? allow(h('button.danger', { type: 'button', on: { click: () => removeObject('apps', appId, '#/apps') } }, 'Delete app'), 'admin') : null),
    testBox);
  key.setAttribute('aria-describedby', 'app-key-help');
  root.appendChild(form);

  function testApp(aid, btn) {
    return testConnection(aid, btn, testBox, ctx, 'Asking Braze…', (r) => (r.message ? String(r.message) : 'Braze accepted the key.'));
  }

  async function save() {
    const errs = [];
    if (!name.value.trim()) errs.push({ field: 'name', message: 'Give the app a name.' });
    if (!ID_RE.test(id.value)) errs.push({ field: 'id', message: 'The ID may hold only letters, digits, _ and - (1 to 191 characters).' });
    if (!endpoint.value.trim()) errs.push({ field: 'options.restEndpoint', message: 'Enter the REST endpoint URL.' });
    if (!key.value) errs.push({ field: 'options.apiKey', message: 'Enter the REST API key.' });
    else if (!isNew && key.value === '****' && endpoint.value.trim() !== (o.restEndpoint || '')) {
      errs.push({ field: 'options.apiKey', message: 'The endpoint changed: type the REST API key again. joey sends a stored key only to the endpoint it was saved for.' });
    }
    if (errs.length) { showDiagnostics(form, diagBox, errs); return; }
    const obj = existing ? { ...existing } : { id: id.value, class: 'App', type: 'braze' };
    obj.class = 'App';
    obj.name = name.value.trim();
    obj.options = { ...(obj.options || {}), apiKey: key.value === '****' ? '****' : key.value, restEndpoint: endpoint.value.trim() };
    saveBtn.disabled = true;
    try {
      const saved = await saveConfig(api, isNew ? 'POST' : 'PUT', isNew ? '/config/apps' : `/config/apps/${enc(appId)}`, obj);
      if (!saved) { saveBtn.disabled = false; return; }
      go(route('apps', obj.id), isNew ? `Saved the Braze app “${obj.name}”. Now test the connection.` : `Saved “${obj.name}”.`);
      if (!isNew) { saveBtn.disabled = false; }
    } catch (e) {
      saveBtn.disabled = false;
      showDiagnostics(form, diagBox, e.body && Array.isArray(e.body.diagnostics) ? e.body.diagnostics : null, e);
    }
  }
}

