// pages/audit.js: the audit log for admins (#/audit): who changed what, when.
// Routed by app.js.
import { append, badge, fmtAgo, fmtTime, h, link, pageHeader, uid } from '../lib/dom.js';
import { get } from '../lib/api.js';
import { go } from '../app.js';

// ---------------------------------------------------------------- audit log (admin)

export function changedKeys(a, b) {
  if (!a || !b || typeof a !== 'object' || typeof b !== 'object') return [];
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
}

export async function viewAudit(root, _p, query) {
  const sizes = [10, 25, 50, 100];
  const limit = sizes.includes(Number(query.get('limit'))) ? Number(query.get('limit')) : 50;
  const before = /^\d+$/.test(query.get('before') || '') ? query.get('before') : '';
  const qs = new URLSearchParams({ limit: String(limit) });
  if (before) qs.set('before', before);
  const r = await get(`/audit?${qs}`);
  const entries = (r && r.entries) || [];
  append(root, pageHeader('Audit log', 'Every change to the configuration, the team, the tokens and the runs: who, when, from where, and what it was before and after. Secrets are masked. Newest first.'));
  const size = h('select', { id: 'audit-limit' }, sizes.map((n) => h('option', { value: String(n), selected: n === limit }, String(n))));
  size.addEventListener('change', () => go(`#/audit?limit=${size.value}`));
  root.appendChild(h('div.actions', h('label', { for: 'audit-limit' }, 'Entries per page'), size));
  const mkq = (b) => { const q = new URLSearchParams(); if (limit !== 50) q.set('limit', String(limit)); if (b) q.set('before', String(b)); const t = q.toString(); return t ? `#/audit?${t}` : '#/audit'; };
  const pre = (v) => (v === null || v === undefined ? h('p.empty', 'nothing') : h('pre.json', JSON.stringify(v, null, 2)));
  const body = h('tbody');
  for (const e of entries) {
    const keys = changedKeys(e.before, e.after);
    const has = (e.before !== null && e.before !== undefined) || (e.after !== null && e.after !== undefined);
    let toggle = h('span.muted', '—');
    let detail = null;
    if (has) {
      const did = uid('audit');
      detail = h('tr.audit-detail', { id: did, hidden: true, dataset: { detailOf: String(e.id) } },
        h('td', { colspan: '7' }, h('div.audit-diff', h('div', h('h4', 'Before'), pre(e.before)), h('div', h('h4', 'After'), pre(e.after)))));
      toggle = h('button.small', { type: 'button', 'aria-expanded': 'false', 'aria-controls': did }, keys.length ? `Show (changed: ${keys.join(', ')})` : 'Show');
      toggle.addEventListener('click', () => {
        const open = detail.hidden;
        detail.hidden = !open;
        toggle.setAttribute('aria-expanded', String(open));
      });
    }
    body.appendChild(h('tr', { dataset: { id: String(e.id), action: e.action || '', object: e.object || '' } },
      h('td.nowrap', { title: fmtAgo(e.at) }, fmtTime(e.at)), h('td', e.actor || '—'), h('td', e.via ? badge(e.via, 'neutral') : '—'),
      h('td', e.addr ? h('code', e.addr) : '—'), h('td', h('code', e.action || '')),
      h('td', e.class || e.object ? [e.class ? h('span.muted', `${e.class} `) : null, e.object ? `“${e.object}”` : ''] : '—'),
      h('td', toggle)));
    if (detail) body.appendChild(detail);
  }
  root.appendChild(entries.length ? h('table.data.audit',
    h('thead', h('tr', ['When', 'Who', 'Via', 'Address', 'Action', 'Object', 'Before / after'].map((x) => h('th', { scope: 'col' }, x)))), body)
    : h('p.empty', before ? 'No older entries.' : 'Nothing recorded yet.'));
  const pager = h('div.pager');
  if (before) pager.appendChild(link(mkq(''), 'Newest entries'));
  if (r && r.next_before !== null && r.next_before !== undefined) pager.appendChild(link(mkq(r.next_before), 'Older entries'));
  root.appendChild(pager);
}

