// pages/destination_form.js: the form of a destination of a model
// (#/models/<id>/destinations/new, #/models/<id>/destinations/<dest>), built from one
// function per part: the name and ID, the sync mode, who is sent, the Braze profile
// fields, custom attributes, group mappings, the guard; collectDestination turns the
// controls back into the Grouparoo JSON that is saved. Routed by app.js.
import { ID_RE, UUID_RE, append, clear, enc, field, fmtValue, h, idFollowsName, link, pageHeader, plural, route, slug, toast, uid } from '../lib/dom.js';
import { allow, api, can, catalog, get, itemsOf, primaryKeyProp, propLabel, roleNotice } from '../lib/api.js';
import { configObjectBody, removeObject, showDiagnostics } from '../lib/forms.js';
import { go } from '../app.js';
import { saveConfig } from '../safety.js';

// ---------------------------------------------------------------- destination form

// Name and ID: the ID follows the name until it is typed in (new destinations only).
function identityControls(existing, isNew) {
  const name = h('input', { type: 'text', id: 'dest-name', required: true, value: existing ? existing.name || '' : '', autocomplete: 'off' });
  const id = h('input', { type: 'text', id: 'dest-id', required: true, readOnly: !isNew, value: existing ? existing.id : '', spellcheck: 'false' });
  idFollowsName(name, id, isNew);
  return { name, id };
}

// The sync mode: no mode is preselected for a new destination: Sync deletes users, so it is a choice.
function syncModeSet(cat, existing) {
  const mode = (existing && existing.syncMode) || '';
  return h('fieldset', { dataset: { field: 'syncMode' } }, h('legend', 'Sync mode (choose one)'),
    cat.sync_modes.map((sm) => {
      const rid = `sync-${slug(sm.id)}`;
      const helpId = `${rid}-help`;
      return h('div.choice',
        h('input', { type: 'radio', name: 'syncMode', id: rid, value: sm.id, checked: sm.id === mode, 'aria-describedby': helpId }),
        h('label', { for: rid }, h('span.choice-label', sm.label || sm.id), h('span.choice-help', { id: helpId }, sm.help || '')));
    }));
}

// Who is sent: everyone, one group's members, nobody. syncGroupEnabled: the group select follows the choice.
function collectionSet(m, groups, existing) {
  const coll = (existing && existing.collection) || 'model';
  const groupSel = h('select', { id: 'dest-group', 'aria-label': 'Group to send' },
    h('option', { value: '' }, '— choose a group —'),
    groups.map((g) => h('option', { value: g.id, selected: existing && existing.groupId === g.id }, g.name || g.id)));
  const collChoice = (value, label, help, extra) => {
    const rid = `coll-${value}`;
    return h('div.choice', h('input', { type: 'radio', name: 'collection', id: rid, value, checked: coll === value, 'aria-describedby': `${rid}-help` }),
      h('div', h('label', { for: rid }, h('span.choice-label', label)), h('span.choice-help', { id: `${rid}-help` }, help), extra || null));
  };
  const el = h('fieldset', { dataset: { field: 'collection' } }, h('legend', 'Who is sent'),
    collChoice('model', `Everyone in ${m.name || m.id}`, 'Every record of the model becomes a Braze user.'),
    collChoice('group', 'Members of one group', 'Only records in the group are sent; records that leave it are handled by the sync mode.', h('div.field', { dataset: { field: 'groupId' } }, groupSel)),
    collChoice('none', 'Nobody (pause)', 'Send nothing. Under Sync, users joey created are removed from Braze at the next run.'));
  const syncGroupEnabled = () => { groupSel.disabled = el.querySelector('input[name="collection"]:checked').value !== 'group'; };
  el.addEventListener('change', syncGroupEnabled);
  return { el, groupSel, syncGroupEnabled };
}

// The property choices of a select: "not sent", then the properties filter lets through.
function propOptions(props, selected, filter) {
  return [h('option', { value: '' }, '— not sent —'),
    props.filter((p) => !filter || filter(p)).map((p) => h('option', { value: p.id, selected: p.id === selected }, propLabel(p)))];
}

// what joey validate accepts: a text field takes any property, an email or phone field
// also a text one, other fields their own type only
const fits = (f, p) => !f.type || f.type === 'string' || p.type === f.type || ((f.type === 'email' || f.type === 'phone') && p.type === 'string');

const FIELD_GROUPS = [
  ['Identity', ['email', 'phone']],
  ['Subscriptions and email settings', ['email_subscribe', 'push_subscribe', 'email_open_tracking_disabled', 'email_click_tracking_disabled', 'marked_email_as_spam_at']],
];
const groupOf = (name) => (FIELD_GROUPS.find(([, ns]) => ns.includes(name)) || ['Profile'])[0];

// One row per Braze field: each select offers the properties whose type fits (and the
// one chosen), with sample values of the chosen property beside it.
function profileFieldRows(d, onlyFitting) {
  const { fields, props, propById, samples, mapping } = d;
  const sampleOf = (pid) => {
    const p = propById[pid];
    const vs = p ? ((samples.properties || {})[p.key] || []) : [];
    return vs.length ? `e.g. ${vs.slice(0, 3).map((v) => fmtValue(v)).join(', ')}` : p ? 'no sample value' : '';
  };
  return fields.map((f) => {
    const sel = h('select', { id: `map-${slug(f.name)}`, dataset: { brazeField: f.name } });
    const fill = () => {
      // the saved mapping at first; then what was chosen, "not sent" included
      const cur = sel.options.length ? sel.value : mapping[f.name];
      clear(sel);
      append(sel, propOptions(props, cur, (p) => !onlyFitting.checked || fits(f, p) || p.id === cur));
    };
    fill();
    sel.fill = fill;
    const ex = h('span.small.muted.break', sampleOf(sel.value));
    sel.addEventListener('change', () => { ex.textContent = sampleOf(sel.value); });
    return h('tr', { dataset: { field: `mapping.${f.name}`, brazeField: f.name } },
      h('th', { scope: 'row' }, h('label', { for: sel.id }, h('code', f.name))),
      h('td', f.type || ''), h('td', sel, h('div', ex)),
      h('td.small.muted', f.billable === false ? 'free (no data point)' : ''));
  });
}

// "Fill in properties with the same names": unmapped fields get the property of their name.
function fillSameNamesButton(knownRows, props) {
  return h('button.small', {
    type: 'button',
    on: {
      click: () => {
        let n = 0;
        for (const tr of knownRows) {
          const sel = tr.querySelector('select');
          if (sel.value) continue;
          const p = props.find((x) => x.key === sel.dataset.brazeField || x.id === sel.dataset.brazeField);
          if (p) { sel.value = p.id; n += 1; }
        }
        toast(n ? `Filled in ${plural(n, 'field')} whose property has the same name.` : 'No unmapped field has a property of the same name.');
      },
    },
  }, 'Fill in properties with the same names');
}

// The Braze profile fields: external_id pinned, the fields grouped by what they are, a search.
function profileFieldsSet(d) {
  const { pk, props } = d;
  const pinned = h('tr.pinned', { dataset: { field: 'mapping.external_id' } },
    h('th', { scope: 'row' }, h('code', 'external_id')),
    h('td', 'identifier'),
    h('td', pk ? h('span', h('strong', pk.key), ` (${pk.type}) — the model’s primary key`) : h('span.muted', 'no primary key')),
    h('td', h('span.small.muted', 'always sent; cannot be removed')));
  const onlyFitting = h('input', { type: 'checkbox', id: 'map-fit', checked: true });
  const knownRows = profileFieldRows(d, onlyFitting);
  onlyFitting.addEventListener('change', () => knownRows.forEach((tr) => tr.querySelector('select').fill()));
  const fieldSearch = h('input', { type: 'search', id: 'map-search', placeholder: 'e.g. name, city', autocomplete: 'off' });
  const fillBtn = fillSameNamesButton(knownRows, props);
  const sections = ['Identity', 'Profile', 'Subscriptions and email settings'].map((g) => {
    const rows = knownRows.filter((tr) => groupOf(tr.dataset.brazeField) === g);
    return h('tbody', { dataset: { fieldGroup: g } }, h('tr.group-head', h('th', { scope: 'colgroup', colspan: '4' }, g)), g === 'Identity' ? pinned : null, rows);
  });
  const profileTable = h('table.data.mapping',
    h('caption', 'Braze profile fields: pick the property whose value goes into each field. Braze bills a data point for each change of a field, except the fields marked free.'),
    h('thead', h('tr', h('th', { scope: 'col' }, 'Braze field'), h('th', { scope: 'col' }, 'Type'), h('th', { scope: 'col' }, 'Property'), h('th', { scope: 'col' }, 'Cost'))),
    sections);
  fieldSearch.addEventListener('input', () => {
    const q = fieldSearch.value.trim().toLowerCase().replace(/\s+/g, '_');
    for (const tr of knownRows) tr.hidden = !!q && !tr.dataset.brazeField.includes(q);
    pinned.hidden = !!q && !'external_id'.includes(q);
    for (const tb of sections) tb.querySelector('tr.group-head').hidden = [...tb.querySelectorAll('tr[data-braze-field]')].every((tr) => tr.hidden) && pinned.closest('tbody') !== tb;
  });
  const el = h('fieldset', { dataset: { field: 'mapping' } }, h('legend', 'Braze profile fields'),
    h('div.actions', h('span.inline', h('label', { for: 'map-search' }, 'Find a field'), fieldSearch),
      h('span.inline', onlyFitting, h('label', { for: 'map-fit' }, 'Offer only properties whose type fits')), fillBtn),
    profileTable);
  return { el, knownRows };
}

// Custom attributes: any property, under a name the editor chooses (the property's key by default).
function customAttributesSet(d) {
  const { props, propById, mapping, fieldNames } = d;
  const customBody = h('tbody', { id: 'custom-rows' });
  const addCustom = (remote, propId) => {
    const p = h('select', { 'aria-label': 'Property' }, propOptions(props, propId));
    const nm = h('input', { type: 'text', 'aria-label': 'Braze attribute name', value: remote || '', spellcheck: 'false', placeholder: 'attribute name', dataset: { diagTarget: '1' } });
    nm.dataset.touched = remote ? '1' : '';
    nm.addEventListener('input', () => { nm.dataset.touched = '1'; tr.dataset.field = `mapping.${nm.value}`; });
    p.addEventListener('change', () => {
      if (!nm.dataset.touched || !nm.value) { nm.value = propById[p.value] ? propById[p.value].key : ''; tr.dataset.field = `mapping.${nm.value}`; }
    });
    const rm = h('button.small', { type: 'button', on: { click: () => { tr.remove(); customEmpty(); } } }, 'Remove');
    const tr = h('tr.custom-row', { dataset: { field: `mapping.${remote || ''}` } }, h('td', p), h('td', nm), h('td', rm));
    p.id = uid('cp'); nm.id = uid('cn');
    rm.setAttribute('aria-label', 'Remove this custom attribute');
    customBody.appendChild(tr);
    customEmpty();
    return tr;
  };
  const customEmpty = () => { customTable.hidden = !customBody.children.length; };
  const customTable = h('table.data.mapping', h('caption', 'Custom attributes: any property, under a name you choose (it defaults to the property’s key).'),
    h('thead', h('tr', h('th', { scope: 'col' }, 'Property'), h('th', { scope: 'col' }, 'Braze attribute name'), h('th', { scope: 'col' }, h('span.visually-hidden', 'Actions')))), customBody);
  for (const [remote, pid] of Object.entries(mapping)) if (!fieldNames.has(remote)) addCustom(remote, pid);
  customEmpty();
  const addCustomBtn = h('button', {
    type: 'button', id: 'add-custom',
    on: { click: () => { const tr = addCustom('', ''); tr.querySelector('select').focus(); } },
  }, 'Add custom attribute');
  return { el: h('fieldset', h('legend', 'Custom attributes'), customTable, h('div.actions', addCustomBtn)), customBody };
}

// One group mapping row: the group, what its members get (a subscription group or a value of "groups").
function groupMapRow(groups, subNames, remote, gid, onRemove) {
  const g = h('select', { 'aria-label': 'Group' }, h('option', { value: '' }, '— choose a group —'), groups.map((x) => h('option', { value: x.id, selected: x.id === gid }, x.name || x.id)));
  const isSub = !remote || UUID_RE.test(remote);
  const kind = h('select', { 'aria-label': 'Send as', dataset: { kind: '1' } },
    h('option', { value: 'sub', selected: isSub }, 'Braze subscription group'),
    h('option', { value: 'attr', selected: !isSub }, 'A value of the “groups” attribute'));
  const r = h('input', { type: 'text', 'aria-label': 'Braze subscription group ID', value: remote || '', spellcheck: 'false', placeholder: '00000000-0000-0000-0000-000000000000', class: 'mono', dataset: { diagTarget: '1', remote: '1' } });
  const nm = h('input', { type: 'text', 'aria-label': 'Name of the subscription group', value: remote && subNames[remote] ? subNames[remote] : '', placeholder: 'e.g. Newsletter', dataset: { subName: '1' } });
  const sync = () => {
    const sub = kind.value === 'sub';
    r.setAttribute('aria-label', sub ? 'Braze subscription group ID' : 'Value of the groups attribute');
    r.placeholder = sub ? '00000000-0000-0000-0000-000000000000' : 'e.g. vip';
    r.classList.toggle('mono', sub);
    nm.hidden = !sub;
  };
  kind.addEventListener('change', sync);
  r.addEventListener('input', () => { tr.dataset.field = `destinationGroupMemberships.${r.value}`; });
  const rm = h('button.small', { type: 'button', 'aria-label': 'Remove this group mapping', on: { click: () => { tr.remove(); onRemove(); } } }, 'Remove');
  const tr = h('tr.group-row', { dataset: { field: `destinationGroupMemberships.${remote || ''}` } }, h('td', g), h('td', kind), h('td', r, nm), h('td', rm));
  sync();
  return tr;
}

// Groups → Braze subscription groups (or values of the groups attribute): an explicit choice per row.
function groupMappingsSet(groups, existing) {
  const gmBody = h('tbody', { id: 'group-rows' });
  const subNames = { ...((existing && existing.subscriptionGroupNames) || {}) };
  const addGroupMap = (remote, gid) => {
    const tr = groupMapRow(groups, subNames, remote, gid, () => gmEmpty());
    gmBody.appendChild(tr);
    gmEmpty();
    return tr;
  };
  const gmEmpty = () => { gmTable.hidden = !gmBody.children.length; };
  const gmTable = h('table.data.mapping', h('caption', 'Members of a group are subscribed to the Braze subscription group (members who leave are unsubscribed), or get the value in their “groups” attribute.'),
    h('thead', h('tr', h('th', { scope: 'col' }, 'Group'), h('th', { scope: 'col' }, 'Send as'), h('th', { scope: 'col' }, 'Subscription group (ID and name) or value'), h('th', { scope: 'col' }, h('span.visually-hidden', 'Actions')))), gmBody);
  for (const [remote, gid] of Object.entries((existing && existing.destinationGroupMemberships) || {})) addGroupMap(remote, gid);
  gmEmpty();
  const el = h('fieldset', { dataset: { field: 'destinationGroupMemberships' } }, h('legend', 'Groups → Braze subscription groups'),
    h('p.help', 'Pick a group, then what its members get: a Braze subscription group (paste its ID from Braze → Audience → Subscriptions and give it a name you will recognise), or a value in their “groups” attribute.'),
    gmTable, h('div.actions', h('button', { type: 'button', id: 'add-group-map', on: { click: () => addGroupMap('', '').querySelector('select').focus() } }, 'Add group mapping')));
  return { el, gmBody };
}

// The mapping as saved: external_id, the profile fields, the custom attributes; errs gets what is wrong.
function collectMapping(c, errs) {
  const map = {};
  if (c.pk) map.external_id = c.pk.id;
  for (const tr of c.knownRows) { const s = tr.querySelector('select'); if (s.value) map[s.dataset.brazeField] = s.value; }
  for (const tr of c.customBody.querySelectorAll('tr')) {
    const [ps, nm] = [tr.querySelector('select'), tr.querySelector('input')];
    const n = nm.value.trim();
    if (!ps.value && !n) continue;
    if (!ps.value) errs.push({ field: `mapping.${n}`, message: `Pick the property for the custom attribute “${n}”.` });
    else if (!n) errs.push({ field: 'mapping.', message: 'Give every custom attribute a name.' });
    else if (n === 'external_id' || map[n] !== undefined) errs.push({ field: `mapping.${n}`, message: `“${n}” is mapped twice.` });
    else map[n] = ps.value;
  }
  return map;
}

// The group mappings as saved into obj (destinationGroupMemberships, subscriptionGroupNames).
function collectGroupMappings(c, obj, errs) {
  const gm = {};
  const names = {};
  for (const tr of c.gmBody.querySelectorAll('tr')) {
    const gs = tr.querySelector('select');
    const sub = tr.querySelector('select[data-kind]').value === 'sub';
    const r = tr.querySelector('input[data-remote]');
    const nm = tr.querySelector('input[data-sub-name]');
    const remote = r.value.trim();
    const f = `destinationGroupMemberships.${remote}`;
    if (!gs.value && !remote) continue;
    if (!gs.value || !remote) errs.push({ field: f, message: sub ? 'Each mapping needs a group and the ID of a Braze subscription group.' : 'Each mapping needs a group and the value for the “groups” attribute.' });
    else if (sub && !UUID_RE.test(remote)) errs.push({ field: f, message: `“${remote}” is not a subscription group ID: paste the 36-character ID from Braze (Audience → Subscriptions).` });
    else if (!sub && UUID_RE.test(remote)) errs.push({ field: f, message: `“${remote}” is a subscription group ID: choose “Braze subscription group”.` });
    else if (gm[remote]) errs.push({ field: f, message: `“${remote}” is used twice.` });
    else {
      gm[remote] = gs.value;
      if (sub && nm.value.trim()) names[remote] = nm.value.trim();
    }
  }
  if (Object.keys(gm).length || (c.existing && c.existing.destinationGroupMemberships)) obj.destinationGroupMemberships = gm;
  if (Object.keys(names).length) obj.subscriptionGroupNames = names; else delete obj.subscriptionGroupNames;
}

// The destination as it would be saved (Grouparoo JSON) from the form's controls c, and what is wrong with it.
function collectDestination(c) {
  const { existing, form, modelId } = c;
  const errs = [];
  const obj = existing ? { ...existing } : { id: c.id.value.trim() };
  obj.class = 'Destination';
  obj.name = c.name.value.trim();
  obj.type = obj.type || 'braze-export-users';
  obj.appId = c.app.value;
  obj.modelId = modelId;
  obj.syncMode = (form.querySelector('input[name="syncMode"]:checked') || {}).value || '';
  if (!obj.syncMode) errs.push({ field: 'syncMode', message: 'Choose a sync mode: Sync deletes Braze users that leave the model, Additive never deletes, Enrich only updates.' });
  obj.collection = form.querySelector('input[name="collection"]:checked').value;
  if (obj.collection === 'group') obj.groupId = c.groupSel.value; else delete obj.groupId;
  obj.mapping = collectMapping(c, errs);
  collectGroupMappings(c, obj, errs);
  const opts = { ...(obj.options || {}) };
  if (c.guard.value !== '') opts.maxDeletePercent = Number(c.guard.value); else delete opts.maxDeletePercent;
  if (Object.keys(opts).length || obj.options) obj.options = opts;
  if (!obj.name) errs.push({ field: 'name', message: 'Give the destination a name.' });
  if (!ID_RE.test(obj.id)) errs.push({ field: 'id', message: 'The ID may hold only letters, digits, _ and - (1 to 191 characters).' });
  if (!obj.appId) errs.push({ field: 'appId', message: 'Choose the Braze app to send through.' });
  if (obj.collection === 'group' && !obj.groupId) errs.push({ field: 'groupId', message: 'Choose the group whose members are sent.' });
  return { obj, errs };
}

// What the form is built from: the model, its Braze apps, the catalog, the saved destination, sample values.
async function loadDestinationData(modelId, destId, isNew) {
  const [m, apps, cat, existingRaw, samples] = await Promise.all([
    get(`/models/${enc(modelId)}`), get('/apps'), catalog(),
    isNew ? null : get(`/config/destinations/${enc(destId)}`),
    get(`/models/${enc(modelId)}/samples`).catch(() => ({ properties: {} })),
  ]);
  const existing = existingRaw ? configObjectBody(existingRaw) : null;
  const props = m.properties || [];
  const fields = cat.braze_fields.filter((f) => f.name !== 'external_id');
  const mapping = { ...((existing && existing.mapping) || {}) };
  delete mapping.external_id;
  return {
    m, cat, existing, samples, props, fields, mapping,
    propById: Object.fromEntries(props.map((p) => [p.id, p])),
    groups: m.groups || [],
    brazeApps: itemsOf(apps).filter((a) => a.type === 'braze'),
    pk: primaryKeyProp(m),
    fieldNames: new Set(fields.map((f) => f.name)),
  };
}

export async function viewDestinationForm(root, { model: modelId, dest: destId }, _q, ctx) {
  const isNew = !destId || destId === 'new';
  const d = await loadDestinationData(modelId, destId, isNew);
  const { m, existing, brazeApps, pk } = d;

  append(root, pageHeader(isNew ? `New Braze destination for ${m.name || m.id}` : `Destination: ${existing.name || existing.id}`,
    'Which records go to Braze, how, and which of their properties become Braze profile fields.'));
  if (!brazeApps.length) {
    root.appendChild(h('div.notice.warn', 'There is no Braze app yet. ', link('#/apps/new', 'Connect a Braze app first'), '.'));
  }
  if (!pk) root.appendChild(h('div.notice.warn', 'This model has no primary key property: Braze’s external_id cannot be mapped.'));

  const diagBox = h('div', { id: 'form-diagnostics' });
  const { name, id } = identityControls(existing, isNew);
  const app = h('select', { id: 'dest-app', required: true },
    brazeApps.length !== 1 ? h('option', { value: '' }, '— choose a Braze app —') : null,
    brazeApps.map((a) => h('option', { value: a.id, selected: existing ? existing.appId === a.id : brazeApps.length === 1 }, a.name || a.id)));
  const modeSet = syncModeSet(d.cat, existing);
  const coll = collectionSet(m, d.groups, existing);
  const profile = profileFieldsSet(d);
  const custom = customAttributesSet(d);
  const groupMaps = groupMappingsSet(d.groups, existing);
  const exOpts = (existing && existing.options) || {};
  const guard = h('input', { type: 'number', id: 'dest-guard', min: '0', max: '100', step: '1', value: exOpts.maxDeletePercent !== undefined ? String(exOpts.maxDeletePercent) : '', placeholder: '10' });

  const saveBtn = allow(h('button.primary', { type: 'submit', id: 'save-destination' }, isNew ? 'Save destination' : 'Save changes'), 'editor');
  const form = h('form.form', { novalidate: true, on: { submit: (e) => { e.preventDefault(); if (can('editor')) save(); } } },
    roleNotice('editor', 'Changing a destination'),
    diagBox,
    field('Name', name, 'Shown in joey, e.g. “Braze: all users”.', { field: 'name' }),
    field('ID', id, isNew ? 'Used in the config files; filled in from the name.' : 'The ID cannot change.', { field: 'id' }),
    field('Braze app', app, null, { field: 'appId' }),
    modeSet,
    coll.el,
    profile.el,
    custom.el,
    groupMaps.el,
    h('details', h('summary', 'Safety'),
      field('Mass-delete guard (%)', guard, 'A run stops and waits for approval instead of deleting more than this share of the Braze users it manages. Empty: 10.', { field: 'options.maxDeletePercent' })),
    h('div.actions', saveBtn, link(route('models', modelId), can('editor') ? 'Cancel' : 'Back'),
      !isNew ? allow(h('button.danger', { type: 'button', on: { click: () => removeObject('destinations', destId, route('models', modelId)) } }, 'Delete destination'), 'editor') : null));
  root.appendChild(form);
  coll.syncGroupEnabled();

  async function save() {
    const { obj, errs } = collectDestination({
      existing, form, modelId, pk, id, name, app, guard, groupSel: coll.groupSel,
      knownRows: profile.knownRows, customBody: custom.customBody, gmBody: groupMaps.gmBody,
    });
    if (errs.length) { showDiagnostics(form, diagBox, errs); return; }
    saveBtn.disabled = true;
    try {
      const saved = await saveConfig(api, isNew ? 'POST' : 'PUT', isNew ? '/config/destinations' : `/config/destinations/${enc(destId)}`, obj);
      if (!saved) { saveBtn.disabled = false; return; }
      if (!ctx.alive()) return;
      go(route('models', modelId), `Saved the destination “${obj.name}”.${isNew ? ' Preview the plan before the first run.' : ''}`);
    } catch (e) {
      saveBtn.disabled = false;
      showDiagnostics(form, diagBox, e.body && Array.isArray(e.body.diagnostics) ? e.body.diagnostics : null, e);
    }
  }
}
