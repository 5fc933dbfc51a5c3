// audiences.js: the Audiences pages of joey's web UI (docs/api.md "Audiences"): every
// group of every model with its rules in words and its member count, and the rule
// builder an editor creates and changes a group with. While the rules change, the page
// asks the server how many records match and shows the first few (POST
// /models/{model}/groups/preview: the unsaved group, validated as `joey validate` would,
// evaluated against the sources); Save writes the group back as Grouparoo JSON through
// the config API. app.js hands in its helpers; like app.js, every text from the API is
// inserted as text, never parsed as HTML.

// Operators joey evaluates (src/config/names.c rule_op_allowed), in words, by type.
const TEXT_TYPES = ['string', 'email', 'phoneNumber', 'url'];
const OPS = [
  { op: 'eq', words: 'is', types: 'all' },
  { op: 'ne', words: 'is not', types: 'all' },
  { op: 'gt', words: 'is more than', date: 'is after', types: ['integer', 'float', 'date'] },
  { op: 'gte', words: 'is at least', date: 'is on or after', types: ['integer', 'float', 'date'] },
  { op: 'lt', words: 'is less than', date: 'is before', types: ['integer', 'float', 'date'] },
  { op: 'lte', words: 'is at most', date: 'is on or before', types: ['integer', 'float', 'date'] },
  { op: 'relative_gt', words: 'is within the last', types: ['date'], relative: true },
  { op: 'relative_lt', words: 'is within the next', types: ['date'], relative: true },
  { op: 'substring', words: 'contains', types: TEXT_TYPES },
  { op: 'notSubstring', words: 'does not contain', types: TEXT_TYPES },
  { op: 'startsWith', words: 'starts with', types: TEXT_TYPES },
  { op: 'endsWith', words: 'ends with', types: TEXT_TYPES },
  { op: 'like', words: 'matches the pattern', types: TEXT_TYPES, help: '% stands for any text, _ for one character; upper and lower case differ' },
  { op: 'notLike', words: 'does not match the pattern', types: TEXT_TYPES, help: '% stands for any text, _ for one character' },
  { op: 'iLike', words: 'matches the pattern, any case,', types: TEXT_TYPES, help: '% stands for any text, _ for one character; case is ignored' },
  { op: 'notILike', words: 'does not match the pattern, any case,', types: TEXT_TYPES, help: '% stands for any text, _ for one character; case is ignored' },
  { op: 'exists', words: 'has a value', types: 'all', noValue: true },
  { op: 'notExists', words: 'has no value', types: 'all', noValue: true },
];
const OP = Object.fromEntries(OPS.map((o) => [o.op, o]));
const UNITS = ['days', 'weeks', 'months', 'quarters', 'years'];
const KEY_PSEUDO = 'grouparooId';
const MAX_RULES = 10; // as the loader

export function opsFor(type) { return OPS.filter((o) => o.types === 'all' || o.types.includes(type)); }

// "last_purchase_at" -> "Last purchase at"; a property has no other display name.
export function humanize(key) {
  const s = String(key || '').replace(/[_-]+/g, ' ').replace(/([a-z])([A-Z])/g, '$1 $2').trim().toLowerCase();
  return s ? s[0].toUpperCase() + s.slice(1) : '';
}

// One rule in words: "Ltv is at least 100", "Last login at is within the last 30 days".
export function ruleWords(rule, props) {
  const p = props.find((x) => x.id === rule.propertyId || x.key === rule.propertyId);
  const who = rule.propertyId === KEY_PSEUDO ? 'Record key' : humanize(p ? p.key : rule.propertyId);
  const o = OP[rule.op];
  if (!o) return `${who} ${rule.op || '?'} ${rule.match ?? ''}`.trim();
  const type = p ? p.type : 'string';
  const verb = type === 'date' && o.date ? o.date : o.words;
  if (o.noValue) return `${who} ${verb}`;
  if (o.relative) {
    const n = Number(rule.relativeMatchNumber);
    const unit = rule.relativeMatchUnit || 'days';
    return `${who} ${verb} ${n} ${n === 1 ? unit.replace(/s$/, '') : unit}`;
  }
  let m = rule.match;
  if (type === 'boolean') m = String(m) === 'true' || m === true ? 'yes' : 'no';
  else if (m === null || m === undefined || m === '') m = '…';
  else if (TEXT_TYPES.includes(type)) m = `“${m}”`;
  return `${who} ${verb} ${m}`;
}

export function groupWords(g, props) {
  const rules = g.rules || [];
  if (!rules.length) return 'No rules yet: the group has no members.';
  const any = (g.matchType || g.match_type) === 'any';
  if (rules.length === 1) return `${ruleWords(rules[0], props)}.`;
  return `${any ? 'Any' : 'All'} of: ${rules.map((r) => ruleWords(r, props)).join(any ? '; or ' : '; and ')}.`;
}

// app.js's helpers, set once by audienceViews (the views below run only after it).
let h, append, clear, route, link, field, fmtAgo, plural, idFollowsName, ID_RE, badge, can, allow, roleNotice, get, post, put,
  errorNotice, pageHeader, table, showDiagnostics, removeObject, go, enc, configObjectBody, fmtValue, uid;

export function audienceViews(ui) {
  ({ h, append, clear, route, link, field, fmtAgo, plural, idFollowsName, ID_RE, badge, can, allow, roleNotice, get, post, put,
    errorNotice, pageHeader, table, showDiagnostics, removeObject, go, enc, configObjectBody, fmtValue, uid } = ui);
  return { viewAudiences, viewGroupForm };
}

// The API's group listing uses {key, operator, match, relative_*}; config JSON uses
// {propertyId, op, match, relativeMatch*}: one form for the words.
function listedRule(r, props) {
  const p = props.find((x) => x.key === r.key);
  return { propertyId: p ? p.id : r.key, op: r.operator, match: r.match, relativeMatchNumber: r.relative_match_number, relativeMatchUnit: r.relative_match_unit };
}

// A group as the API lists it (GET /models/{id}), in words: the Audiences page's and the
// model page's, the same.
export function listedGroupWords(g, props) {
  return groupWords({ matchType: g.match_type, rules: (g.rules || []).map((r) => listedRule(r, props)) }, props);
}

async function viewAudiences(root) {
  const models = await get('/models');
  const edit = can('editor');
  append(root, pageHeader('Audiences', 'Groups of records defined by rules on their properties. A Braze destination can send one group, and map groups to subscription groups.'));
  if (!edit) root.appendChild(roleNotice('editor', 'Creating and changing audiences'));
  for (const mm of models) {
    const m = await get(`/models/${enc(mm.id)}`);
    const props = m.properties || [];
    root.appendChild(h('h2', { id: `aud-${mm.id}` }, m.name || m.id));
    if (edit) root.appendChild(h('p', link(route('audiences', m.id, 'new'), h('strong', `New audience of ${m.name || m.id}`))));
    root.appendChild(table(['Audience', 'Who is in it', '#Members', 'Counted'],
      (m.groups || []).map((g) => [link(route('audiences', m.id, g.id), g.name || g.id),
        h('span.small', listedGroupWords(g, props)),
        g.member_count === null || g.member_count === undefined ? h('span.muted', 'not counted yet') : String(g.member_count),
        g.counted_at ? fmtAgo(g.counted_at) : '—']),
      { empty: edit ? 'No audience yet. Create one: pick a property, a condition and a value, and see who matches before you save.' : 'No audience yet.' }));
  }
  if (!models.length) root.appendChild(h('p.empty', 'No models in the config.'));
}

// One rule's controls; onChange(rule) on every edit.
function ruleRow(rule, props, idx, onChange, onRemove) {
  const choices = [...props.map((p) => ({ id: p.id, label: `${humanize(p.key)} (${p.type})`, type: p.type })),
    { id: KEY_PSEUDO, label: 'Record key', type: null }];
  const typeOf = (pid) => { const c = choices.find((x) => x.id === pid); return c && c.type ? c.type : 'string'; };
  const prop = h('select', { 'aria-label': `Rule ${idx + 1}: property`, dataset: { role: 'property' } },
    choices.map((c) => h('option', { value: c.id, selected: c.id === rule.propertyId }, c.label)));
  const op = h('select', { 'aria-label': `Rule ${idx + 1}: condition`, dataset: { role: 'op' } });
  const valueBox = h('span.rule-value');
  const words = h('p.rule-words.small', { 'aria-live': 'off' });
  const row = h('li.rule-row.card', { dataset: { rule: String(idx) } },
    h('div.inline', prop, op, valueBox,
      h('button.small', { type: 'button', on: { click: onRemove } }, 'Remove', h('span.visually-hidden', ` rule ${idx + 1}`))),
    words);

  const ctl = { rule, idx, onChange, op, valueBox };
  const fillOps = () => ruleOps(ctl, typeOf(prop.value));
  const fillValue = () => ruleValue(ctl, typeOf(prop.value));
  function show() { words.textContent = ruleWords(rule, props); }
  prop.addEventListener('change', () => { rule.propertyId = prop.value; fillOps(); fillValue(); onChange(); });
  op.addEventListener('change', () => { rule.op = op.value; fillValue(); onChange(); });
  if (rule.relativeMatchNumber !== undefined) rule._n = rule.relativeMatchNumber;
  if (rule.relativeMatchUnit) rule._u = rule.relativeMatchUnit;
  if (!rule.propertyId) rule.propertyId = choices[0].id;
  prop.value = rule.propertyId;
  fillOps();
  fillValue();
  row.showWords = show;
  return row;
}

// The conditions a property of type t allows; the rule keeps its own if it is one.
function ruleOps({ rule, op }, t) {
  const list = opsFor(t);
  clear(op);
  for (const o of list) op.appendChild(h('option', { value: o.op, selected: o.op === rule.op }, t === 'date' && o.date ? o.date : o.words));
  if (!list.some((o) => o.op === rule.op)) rule.op = list[0].op;
  op.value = rule.op;
}

// The value controls the rule's condition wants (none, a relative span, yes/no, a value
// of type t), bound to the rule.
function ruleValue(c, t) {
  const { rule, op, valueBox } = c;
  const o = OP[op.value];
  clear(valueBox);
  delete rule.relativeMatchNumber; delete rule.relativeMatchUnit; delete rule.relativeMatchDirection;
  if (o.noValue) { delete rule.match; return; }
  if (o.relative) {
    delete rule.match;
    append(valueBox, relativeValue(c));
    return;
  }
  const input = t === 'boolean' ? booleanValue(c) : typedValue(c, t, o);
  valueBox.prepend(input);
}

// "within the last N units": how many and the unit.
function relativeValue({ rule, idx, onChange }) {
  const n = h('input', { type: 'number', min: '1', step: '1', value: String(rule._n ?? 30), 'aria-label': `Rule ${idx + 1}: how many`, dataset: { role: 'number' } });
  const u = h('select', { 'aria-label': `Rule ${idx + 1}: unit`, dataset: { role: 'unit' } }, UNITS.map((x) => h('option', { value: x, selected: x === (rule._u || 'days') }, x)));
  const sync = () => { rule._n = n.value; rule._u = u.value; rule.relativeMatchNumber = Number(n.value); rule.relativeMatchUnit = u.value; onChange(); };
  n.addEventListener('input', sync); u.addEventListener('change', sync);
  rule.relativeMatchNumber = Number(n.value); rule.relativeMatchUnit = u.value;
  return [n, u];
}

function booleanValue({ rule, idx, onChange }) {
  const input = h('select', { 'aria-label': `Rule ${idx + 1}: value`, dataset: { role: 'value' } },
    h('option', { value: 'true', selected: String(rule.match) !== 'false' }, 'yes'), h('option', { value: 'false', selected: String(rule.match) === 'false' }, 'no'));
  rule.match = input.value === 'true';
  input.addEventListener('change', () => { rule.match = input.value === 'true'; onChange(); });
  return input;
}

// A number, a date or a text; a pattern's help goes after the input.
function typedValue({ rule, idx, onChange, valueBox }, t, o) {
  const numeric = t === 'integer' || t === 'float';
  const input = h('input', { type: numeric ? 'number' : 'text', step: numeric ? 'any' : undefined, 'aria-label': `Rule ${idx + 1}: value`, dataset: { role: 'value' },
    value: rule.match === undefined || rule.match === null ? '' : String(rule.match), placeholder: t === 'date' ? '2026-01-31 or 2026-01-31T12:00:00Z' : o.help ? 'e.g. %@example.com' : '',
    spellcheck: 'false', autocomplete: 'off' });
  const sync = () => {
    const v = input.value;
    rule.match = numeric && v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : v;
    onChange();
  };
  input.addEventListener('input', sync);
  if (rule.match === undefined) rule.match = '';
  if (o.help) valueBox.appendChild(h('span.help', o.help));
  return input;
}

// The rule builder. Its state and controls travel in one object `f` between the steps
// below: the draft group, the form, the live count, the rules' rows, save.
async function viewGroupForm(root, { model: modelId, group: groupId }, _q, ctx) {
  const isNew = !groupId;
  const [m, raw] = await Promise.all([get(`/models/${enc(modelId)}`), isNew ? null : get(`/config/groups/${enc(groupId)}`)]);
  const existing = raw ? configObjectBody(raw) : null;
  const props = m.properties || [];
  const edit = can('editor');
  append(root, pageHeader(isNew ? `New audience of ${m.name || m.id}` : `Audience: ${existing.name || existing.id}`,
    'Pick a property, a condition and a value. The count below follows your rules before you save.'));
  if (!edit) root.appendChild(roleNotice('editor', 'Changing audiences'));
  const f = { modelId, groupId, isNew, props, edit, ctx, g: groupDraft(existing, isNew, props), seq: 0, timer: null };
  groupForm(f);
  root.appendChild(f.form);
  root.appendChild(h('section.card', { 'aria-labelledby': 'preview-h' }, h('h2', { id: 'preview-h' }, 'Who matches now'), f.count, f.sample));

  f.addBtn.addEventListener('click', () => {
    f.g.rules.push({ propertyId: props[0] ? props[0].id : KEY_PSEUDO, op: 'eq', match: '' });
    drawRules(f);
    groupChanged(f);
    const last = f.list.lastElementChild && f.list.lastElementChild.querySelector('select');
    if (last) last.focus();
  });
  f.match.addEventListener('change', () => groupChanged(f));
  drawRules(f);
  groupChanged(f);
  f.form.addEventListener('submit', (e) => saveGroup(f, e));
}

// A copy of the stored group to edit; a new one starts with a rule on a number if there is one.
function groupDraft(existing, isNew, props) {
  const g = existing ? JSON.parse(JSON.stringify(existing)) : { name: '', matchType: 'all', rules: [] };
  g.rules = (g.rules || []).map((r) => ({ ...r }));
  if (isNew && !g.rules.length) {
    const first = props.find((p) => p.type === 'float' || p.type === 'integer') || props[0];
    if (first) g.rules.push({ propertyId: first.id, op: first.type === 'float' || first.type === 'integer' ? 'gte' : 'eq', match: '' });
  }
  return g;
}

// The form's controls and the count's boxes, into f.
function groupForm(f) {
  const { g, isNew, edit, groupId } = f;
  const name = h('input', { type: 'text', id: 'group-name', value: g.name || '', required: true, autocomplete: 'off' });
  const id = h('input', { type: 'text', id: 'group-id', value: g.id || '', readOnly: !isNew, required: true, pattern: '[A-Za-z0-9_-]{1,191}', spellcheck: 'false' });
  idFollowsName(name, id, isNew);
  name.addEventListener('input', () => { g.name = name.value; });
  const match = h('select', { id: 'group-match' },
    h('option', { value: 'all', selected: g.matchType !== 'any' }, 'all of these rules'),
    h('option', { value: 'any', selected: g.matchType === 'any' }, 'any of these rules'));
  const list = h('ol.rules', { 'aria-label': 'Rules' });
  const summary = h('p.group-words', { id: 'group-words' });
  const addBtn = h('button', { type: 'button' }, 'Add a rule');
  const count = h('div.preview-count', { id: 'group-count', role: 'status', 'aria-live': 'polite' }, h('span.muted', 'Counting…'));
  const sample = h('div', { id: 'group-sample' });
  const diag = h('div');
  const form = h('form.form.card', { novalidate: true },
    h('div.inline', field('Name', name, null, { field: 'name' }), field('ID', id, isNew ? 'Letters, digits, _ and -; cannot be changed later.' : 'Cannot be changed.', { field: 'id' })),
    field('Members match', match, 'All: every rule must hold. Any: one is enough.', { field: 'matchType' }),
    h('div.field', { dataset: { field: 'rules' } }, h('span.label', 'Rules'), list, addBtn),
    summary,
    diag,
    h('div.actions',
      allow(h('button.primary', { type: 'submit' }, isNew ? 'Create audience' : 'Save audience'), 'editor'),
      link(route('audiences'), 'Cancel'),
      !isNew && edit ? h('button.danger', { type: 'button', on: { click: () => removeObject('groups', groupId, route('audiences')) } }, 'Delete audience') : null));
  Object.assign(f, { name, id, match, list, summary, addBtn, count, sample, diag, form });
}

// The group as config JSON, from the draft and the form.
function groupBody(f) {
  const { g, name, id, match, modelId } = f;
  const out = { ...g, name: name.value, matchType: match.value, modelId };
  if (id.value && ID_RE.test(id.value)) out.id = id.value; else delete out.id;
  out.rules = g.rules.map((r) => {
    const c = { propertyId: r.propertyId, op: r.op };
    for (const k of ['match', 'relativeMatchNumber', 'relativeMatchUnit']) if (r[k] !== undefined) c[k] = r[k];
    return c;
  });
  return out;
}

// Ask the server who matches the unsaved group; only the latest answer is shown.
async function previewGroup(f) {
  const { count, sample, diag, form, modelId, ctx } = f;
  const mine = ++f.seq;
  clear(count).appendChild(h('span.muted', 'Counting…'));
  count.dataset.state = 'counting';
  const b = groupBody(f);
  if (f.isNew) delete b.id; // a new id is not in the config yet
  try {
    const r = await post(`/models/${enc(modelId)}/groups/preview`, { group: b, limit: 10 });
    if (mine !== f.seq || !ctx.alive()) return;
    clear(count);
    count.dataset.state = 'done';
    count.dataset.count = String(r.count);
    append(count, [h('strong.big', plural(r.count, 'member')), ` of ${plural(r.records_read, 'record')} read`,
      r.complete ? '' : h('span.help', 'Counting stopped after 10 seconds: the number is a lower bound.'), h('span.help', `Counted in ${r.took_ms} ms.`)]);
    const keys = r.sample.length ? Object.keys(r.sample[0].properties) : [];
    clear(sample).appendChild(table(['Key', ...keys.map(humanize)],
      r.sample.map((s) => [link(route('records', modelId, s.key), s.key), ...keys.map((k) => h('span.break', fmtValue(s.properties[k])))]),
      { empty: 'Nobody matches these rules.', caption: r.sample.length < r.count ? `The first ${r.sample.length}` : undefined }));
    clear(diag);
  } catch (e) {
    if (mine !== f.seq || !ctx.alive()) return;
    count.dataset.state = 'error';
    clear(count).appendChild(h('span.muted', 'Cannot count yet: fix the rules below.'));
    clear(sample);
    if (e.status === 422) showDiagnostics(form, diag, e.body.diagnostics || [], null);
    else clear(diag).appendChild(errorNotice(e, 'Could not count the members'));
  }
}

// After every edit: the words, the add button, and (for editors) a new count shortly.
function groupChanged(f) {
  for (const row of f.list.children) row.showWords();
  f.summary.textContent = groupWords({ matchType: f.match.value, rules: f.g.rules }, f.props);
  f.addBtn.disabled = f.g.rules.length >= MAX_RULES || !f.edit;
  if (!f.edit) return;
  clearTimeout(f.timer);
  f.timer = setTimeout(() => previewGroup(f), 350);
}

function drawRules(f) {
  const { g, list } = f;
  clear(list);
  g.rules.forEach((r, i) => list.appendChild(ruleRow(r, f.props, i, () => groupChanged(f), () => { g.rules.splice(i, 1); drawRules(f); groupChanged(f); })));
}

// Submit: name and ID checked here, the rest by the server; then back to the list.
async function saveGroup(f, e) {
  const { form, diag, name, id, isNew, groupId } = f;
  e.preventDefault();
  if (!name.value.trim() || !ID_RE.test(id.value)) {
    showDiagnostics(form, diag, [!name.value.trim() ? { field: 'name', message: 'Give the audience a name.' } : null,
      !ID_RE.test(id.value) ? { field: 'id', message: 'The ID may hold letters, digits, _ and - only.' } : null].filter(Boolean), null);
    return;
  }
  const b = groupBody(f);
  b.id = id.value;
  b.class = 'Group';
  try {
    if (isNew) await post('/config/groups', b);
    else await put(`/config/groups/${enc(groupId)}`, b);
    go(route('audiences'), `Audience “${b.name}” saved.`);
  } catch (err) {
    showDiagnostics(form, diag, err.body && err.body.diagnostics, err);
  }
}
