// safety.js: what keeps a marketer from hurting Braze users by accident, and says what
// happened in plain words (issue #16): the status language of runs (colour + words),
// the confirmation of a destructive config change (the API refuses it with 409 and its
// impact until the impact's token is sent back), "save anyway" for a Braze key Braze
// refused (422, needs: "unverified"), the live run panel (%, ETA, requests, slow-downs),
// the explanation of a failed row. Like app.js, it never parses API text as HTML.
import { h as el } from './lib/dom.js';

export const num = (n) => (typeof n === 'number' ? n.toLocaleString('en-US') : String(n ?? 0));
const plural = (n, one, many) => `${num(n)} ${n === 1 ? one : many || `${one}s`}`;

// ---------------------------------------------------------------- status language

// One status language everywhere: [words, kind]; kind is the badge colour
// (ok green, warn amber, bad red, info blue, neutral grey).
export function runStatus(r) {
  const s = r && r.status;
  const failedRows = (r && (r.failed_rows ?? (r.counts || {}).failed)) || 0;
  if (s === 'success') return ['succeeded', 'ok'];
  if (s === 'completed_with_failures') return [`completed with ${plural(failedRows, 'failed row')}`, 'warn'];
  if (s === 'failed' && r.held) return ['held: waiting for approval', 'warn'];
  if (s === 'failed') return ['failed', 'bad'];
  if (s === 'running') return ['running', 'info'];
  if (s === 'queued') return ['queued', 'neutral'];
  if (s === 'interrupted') return ['interrupted', 'warn'];
  return [s || 'unknown', 'neutral'];
}
export function runBadge(r) {
  const [text, kind] = runStatus(r);
  return el('span.badge', { class: kind, dataset: { status: (r && r.status) || '' } }, text);
}
export const TRIGGERS = { schedule: 'on schedule', api: 'started by hand', retry: 'retry of failed rows', cli: 'from the command line' };
export const triggerText = (t) => (t ? TRIGGERS[t] || t : '—');

// ---------------------------------------------------------------- dialogs

// A modal dialog; resolves true when the confirming button is pressed, false otherwise
// (Cancel, Escape). The confirming button is not the one focused first.
export function confirmDialog({ title, body, confirmLabel, danger = true, cancelLabel = 'Cancel' }) {
  return new Promise((resolve) => {
    const titleId = `dlg-${Math.random().toString(36).slice(2)}`;
    const cancel = el('button', { type: 'button' }, cancelLabel);
    const ok = el(danger ? 'button.danger' : 'button.primary', { type: 'button', dataset: { confirm: '1' } }, confirmLabel);
    const d = el('dialog.confirm', { 'aria-labelledby': titleId },
      el('h2', { id: titleId }, title), el('div.dialog-body', body), el('div.actions', cancel, ok));
    let done = false;
    const finish = (v) => { if (done) return; done = true; d.close(); d.remove(); resolve(v); };
    cancel.addEventListener('click', () => finish(false));
    ok.addEventListener('click', () => finish(true));
    d.addEventListener('cancel', (e) => { e.preventDefault(); finish(false); });
    document.body.appendChild(d);
    d.showModal();
    cancel.focus();
  });
}

// The impact of a destructive change (the 409 answer's impact) in words and numbers.
export function impactView(impact) {
  const rows = [];
  for (const d of impact.destinations || []) {
    if (!d.destructive) continue;
    rows.push(el('li', el('strong', d.name || d.id), el('ul', (d.reasons || []).map((r) => el('li', r[0].toUpperCase() + r.slice(1) + '.')))));
  }
  return [
    impact.unknown ? el('p', 'joey could not work out what the next run would do, so it cannot tell whether this change deletes or unsubscribes Braze users.')
      : el('p', 'Saving this change means Braze users will be removed:'),
    rows.length ? el('ul.impact', rows) : null,
    impact.unknown && impact.error ? el('details', el('summary', 'Technical detail'), el('p.break', impact.error)) : null,
    el('p', 'Deleted Braze users lose their history in Braze; this cannot be undone.'),
  ];
}

// PUT/POST a config object through api(method, path, body) with the confirmations the
// API asks for. Returns the stored object, or null when the person cancelled; throws the
// API's error otherwise.
export async function saveConfig(api, method, path, obj) {
  let query = '';
  for (let round = 0; round < 3; round += 1) {
    try {
      // null means "cancelled" to the callers: a change answered with no body (a delete) is {}
      const r = await api(method, path + query, obj);
      return r === null || r === undefined ? {} : r;
    } catch (e) {
      const b = (e && e.body) || {};
      if (e.status === 409 && b.impact && b.impact.token) {
        const yes = await confirmDialog({
          title: 'This change removes Braze users',
          body: impactView(b.impact),
          confirmLabel: 'Save and remove these users',
        });
        if (!yes) return null;
        query = `${query ? `${query}&` : '?'}confirm=${encodeURIComponent(b.impact.token)}`;
        continue;
      }
      if (e.status === 422 && b.needs === 'unverified') {
        const yes = await confirmDialog({
          title: 'Braze did not accept this key',
          body: [el('p', el('strong', b.detail || 'The key could not be checked.')), b.hint ? el('p', b.hint) : null,
            b.check ? el('details', el('summary', 'Technical detail'), el('p.break', [b.check.error, b.check.detail].filter(Boolean).join(': '))) : null,
            el('p', 'Runs fail until the key works. Save anyway only if you know Braze will accept it later.')],
          confirmLabel: 'Save anyway',
          cancelLabel: 'Fix the key',
        });
        if (!yes) return null;
        query = `${query ? `${query}&` : '?'}unverified=true`;
        continue;
      }
      throw e;
    }
  }
  throw new Error('the change kept needing another confirmation; reload the page and try again');
}

// ---------------------------------------------------------------- live runs

const fmtSecs = (s) => (s < 60 ? `${Math.max(1, Math.round(s))} s` : s < 3600 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`);

// Done so far of a run, from its counts: records settled (sent, unchanged, failed).
export function runDone(r) {
  const c = r.counts || {};
  return (c.created || 0) + (c.updated || 0) + (c.deleted || 0) + (c.unsubscribed || 0) + (c.unchanged || 0) + (c.failed || 0) + (c.skipped || 0);
}

// The panel of one run going (or just finished: it stays, as a summary). expected: the
// records the last finished run of the destination read (for % and ETA), or 0.
export function liveRunPanel(r, name, expected) {
  const c = r.counts || {};
  const going = r.status === 'running' || r.status === 'queued';
  const done = runDone(r);
  const read = r.records_read || 0;
  const total = expected || 0;
  const frac = total ? Math.min(1, Math.max(done, read) / total) : null;
  const elapsed = r.started_at ? ((r.finished_at || Date.now()) - r.started_at) / 1000 : 0;
  let eta = null;
  if (going && frac && frac > 0.02 && frac < 1) eta = (elapsed * (1 - frac)) / frac;
  const pct = frac === null ? null : Math.round(frac * 100);
  const stat = (n, label, key) => el('div.stat', { dataset: { count: key } }, el('span.num', num(n)), el('span.label', label));
  const headline = going
    ? (r.status === 'queued' ? 'Waiting for the destination to be free.'
      : `${pct === null ? '' : `${pct}% · `}${num(read)} records read, ${num(done)} settled${eta !== null ? ` · about ${fmtSecs(eta)} left` : ''}.`)
    : `Finished in ${fmtSecs(elapsed)}: ${num(c.created || 0)} created, ${num(c.updated || 0)} updated, ${num(c.deleted || 0)} deleted, ${num(c.failed || 0)} failed.`;
  return el('div.live-run', { dataset: { destination: r.destination || '', status: r.status || '' } },
    el('h3', name, ' ', runBadge(r)),
    going ? el('progress', { max: '100', value: pct === null ? undefined : String(pct), 'aria-label': `Run of ${name}: ${pct === null ? 'in progress' : `${pct}% done`}` }) : null,
    el('p.headline', headline),
    el('div.stats.small-stats',
      stat(read, 'records read', 'read'), stat(c.created || 0, 'created', 'created'), stat(c.updated || 0, 'updated', 'updated'),
      stat(c.deleted || 0, 'deleted', 'deleted'), stat(c.unchanged || 0, 'unchanged', 'unchanged'), stat(c.failed || 0, 'failed', 'failed'),
      stat(c.requests || 0, 'requests to Braze', 'requests'),
      stat(c.throttled || 0, c.throttled === 1 ? 'time Braze asked to slow down' : 'times Braze asked to slow down', 'throttled')));
}

// What a screen reader hears about runs: one sentence, only when it changes.
export function runAnnouncement(r, name) {
  const [text] = runStatus(r);
  const c = r.counts || {};
  if (r.status === 'running') return `Run of ${name}: ${num(r.records_read || 0)} records read, ${num(c.requests || 0)} requests, ${num(c.throttled || 0)} slow-downs.`;
  return `Run of ${name} ${text}.`;
}

// ---------------------------------------------------------------- failed rows

// A failed row's explanation (GET /errors item .explanation), with the raw error behind a toggle.
export function explanationView(e) {
  const x = e.explanation;
  if (!x) return el('span.break', String(e.error || ''));
  return el('div.explain',
    el('strong', x.title), ' ',
    el('span.small', x.retry ? 'Retrying can help.' : 'Retrying alone will not help.'),
    el('p.small', el('em', 'What to do: '), x.action),
    el('details.small', el('summary', 'Technical detail'), el('code.break', String(e.error || ''))));
}
