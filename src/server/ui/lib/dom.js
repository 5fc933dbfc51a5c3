// lib/dom.js: the DOM helpers every page of the web UI builds with (h, append, clear,
// field, table, pageHeader, badge, toast; selfCheckedForm, passwordInput, userNameInput
// for the account forms), the links to routes (route, link), and the
// formatting of times, durations and values as people read them. Holds no state but the
// id counter of uid(). Text is always inserted as text nodes, never parsed as HTML.
// Imported by app.js, every module under pages/, and (el) safety.js, schedule.js, repair.js.

// ---------------------------------------------------------------- DOM helpers

// h('tag.class', {attrs, on: {click}}, ...children): strings become text nodes.
export function h(spec, props, ...kids) {
  const [tag, ...classes] = spec.split('.');
  const e = document.createElement(tag || 'div');
  if (classes.length) e.className = classes.join(' ');
  if (props && (typeof props !== 'object' || props instanceof Node || Array.isArray(props))) {
    kids.unshift(props);
    props = null;
  }
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'on') for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn);
    else if (k === 'class') e.className += (e.className ? ' ' : '') + v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k === 'value') e.value = v;
    else if (k === 'checked' || k === 'selected' || k === 'disabled' || k === 'hidden' || k === 'required' || k === 'readOnly' || k === 'multiple') e[k] = !!v;
    else if (k.startsWith('on')) throw new Error('use on: {} for event handlers');
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  append(e, kids);
  return e;
}
export function append(e, kids) {
  for (const k of kids.flat(Infinity)) {
    if (k === null || k === undefined || k === false) continue;
    e.appendChild(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}
export function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); return e; }
// A form's own check failed: msg shown as an alert in out, the focus on the control at fault.
export function formError(out, msg, control) {
  out.appendChild(h('div.notice.error', { role: 'alert' }, msg));
  control.focus();
}
// A form that checks its own fields (the browser's checks are off, so the messages are
// ours): on submit, out is emptied and send() runs; it reports into out. props: the
// form's other attributes.
export function selfCheckedForm(spec, props, out, send, ...kids) {
  return h(spec, {
    ...props,
    novalidate: true,
    on: {
      submit: async (e) => {
        e.preventDefault();
        clear(out);
        await send();
      },
    },
  }, ...kids);
}
// The boxes of the sign-in, setup, account and team forms: a password
// (autocomplete: 'current-password' or 'new-password'), a user name (no spelling help).
export function passwordInput(id, autocomplete) {
  return h('input', { type: 'password', id, autocomplete, required: true });
}
export function userNameInput(id, autocomplete, value) {
  return h('input', { type: 'text', id, autocomplete, spellcheck: 'false', autocapitalize: 'none', required: true, value });
}
export const enc = encodeURIComponent;
// A link to a route: segments are encoded here, so data never shapes the URL.
export function route(...segs) { return '#/' + segs.map((s) => enc(String(s))).join('/'); }
export function link(href, ...kids) { return h('a', { href }, ...kids); }

export let idSeq = 0;
export function uid(prefix) { idSeq += 1; return `${prefix}-${idSeq}`; }

// A labelled field: label, control, help text (linked with aria-describedby).
export function field(labelText, control, help, opts = {}) {
  if (!control.id) control.id = uid('f');
  const kids = [h('label', { for: control.id }, labelText), control];
  if (help) {
    const hid = uid('help');
    control.setAttribute('aria-describedby', hid);
    kids.push(h('span.help', { id: hid }, help));
  }
  return h('div.field', { dataset: opts.field ? { field: opts.field } : undefined }, kids);
}

export function fmtTime(ms) {
  if (!ms) return '—';
  return new Date(ms).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}
export function fmtAgo(ms) {
  if (!ms) return '—';
  const s = Math.round((Date.now() - ms) / 1000);
  const fut = s < 0;
  const a = Math.abs(s);
  const t = a < 60 ? `${a} s` : a < 3600 ? `${Math.round(a / 60)} min` : a < 86400 ? `${Math.round(a / 3600)} h` : `${Math.round(a / 86400)} d`;
  return fut ? `in ${t}` : `${t} ago`;
}
export function fmtDuration(ms) {
  if (ms === null || ms === undefined || ms < 0) return '—';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(ms / 60000);
  return `${m} min ${Math.round((ms % 60000) / 1000)} s`;
}
export function fmtEvery(ms) {
  if (!ms) return '';
  const m = ms / 60000;
  if (m % 1440 === 0) return m === 1440 ? 'every day' : `every ${m / 1440} days`;
  if (m % 60 === 0) return m === 60 ? 'every hour' : `every ${m / 60} hours`;
  return m === 1 ? 'every minute' : `every ${m} minutes`;
}
export function fmtValue(v) {
  if (v === null || v === undefined) return '∅';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}
export function plural(n, one, many) { return `${n} ${n === 1 ? one : many || one + 's'}`; }
export function slug(s) {
  return String(s || '').toLowerCase().replace(/[^a-z0-9_-]+/g, '_').replace(/_+/g, '_').replace(/^[_-]+|[_-]+$/g, '').slice(0, 100);
}
// A form's ID input follows its name input (as a slug) until the ID is typed in; a saved
// object's ID (follow false) never does.
export function idFollowsName(name, id, follow) {
  let touched = !follow;
  id.addEventListener('input', () => { touched = true; });
  name.addEventListener('input', () => { if (!touched) id.value = slug(name.value); });
}
export const ID_RE = /^[A-Za-z0-9_-]{1,191}$/;
export const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
// A group membership of a destination as people say it: the subscription group's name.
export function remoteName(dest, remote) {
  const m = ((dest && dest.memberships) || []).find((x) => x.remote === remote);
  if ((m && m.kind === 'subscription_group') || UUID_RE.test(remote)) return m && m.name ? `subscription group “${m.name}”` : `subscription group ${remote}`;
  return `“${remote}” in the groups attribute`;
}

export function badge(text, kind) { return h('span.badge', { class: kind || 'neutral' }, text); }

export function toast(text, ms = 5000) {
  const t = document.getElementById('toast');
  const d = h('div', text);
  t.appendChild(d);
  while (t.children.length > 2) t.firstChild.remove();
  setTimeout(() => d.remove(), ms);
}

export function pageHeader(title, subtitle, ...actions) {
  return [h('h1', { tabindex: '-1' }, title), subtitle ? h('p.subtitle', subtitle) : null, actions.length ? h('div.actions', actions) : null];
}
export function table(headers, rows, opts = {}) {
  if (!rows.length) return h('p.empty', opts.empty || 'Nothing yet.');
  return h('table.data', { class: opts.class },
    opts.caption ? h('caption', opts.caption) : null,
    h('thead', h('tr', headers.map((x) => {
      const num = typeof x === 'string' && x.startsWith('#');
      return h('th', { scope: 'col', class: num ? 'num' : undefined }, num ? x.slice(1) : x);
    }))),
    h('tbody', rows.map((r) => h('tr', { dataset: r.dataset }, (r.cells || r).map((c, i) => {
      const hd = headers[i];
      const num = typeof hd === 'string' && hd.startsWith('#');
      return h(i === 0 && opts.rowHeader ? 'th' : 'td', { class: num ? 'num' : undefined, scope: i === 0 && opts.rowHeader ? 'row' : undefined }, c);
    })))));
}

