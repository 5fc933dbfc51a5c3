// schedule.js: schedules in words, and a picker that needs no cron: on demand, every N
// minutes or hours, every day at a time, on chosen weekdays at a time, or (advanced) a
// cron expression; the next three runs are shown as the choice changes (the server
// computes them: GET /api/v1/cron). Times are UTC, as joey's schedules are.
import { h as el } from './lib/dom.js';

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const pad = (n) => String(n).padStart(2, '0');

function listWords(xs) {
  if (xs.length <= 1) return xs.join('');
  return `${xs.slice(0, -1).join(', ')} and ${xs[xs.length - 1]}`;
}

// A cron expression as words ("every day at 03:00 UTC"); null when it is not a simple one.
export function cronWords(expr) {
  const f = String(expr || '').trim().split(/\s+/);
  if (f.length !== 5) return null;
  const [mi, hr, dom, mon, dow] = f;
  const num = (s, max) => /^\d+$/.test(s) && Number(s) <= max;
  if (/^\*\/\d+$/.test(mi) && hr === '*' && dom === '*' && mon === '*' && dow === '*') return `every ${mi.slice(2)} minutes`;
  if (num(mi, 59) && hr === '*' && dom === '*' && mon === '*' && dow === '*') return `every hour at ${pad(mi)} minutes past`;
  if (num(mi, 59) && /^\*\/\d+$/.test(hr) && dom === '*' && mon === '*' && dow === '*') return `every ${hr.slice(2)} hours at ${pad(mi)} minutes past`;
  if (!num(mi, 59) || !num(hr, 23)) return null;
  const at = `at ${pad(hr)}:${pad(mi)} UTC`;
  if (dom === '*' && mon === '*' && dow === '*') return `every day ${at}`;
  if (dom === '*' && mon === '*' && /^[0-7](,[0-7])*$/.test(dow)) {
    const ds = [...new Set(dow.split(',').map((d) => Number(d) % 7))].sort();
    if (ds.join() === '1,2,3,4,5') return `every weekday (Monday to Friday) ${at}`;
    return `every ${listWords(ds.map((d) => DAYS[d]))} ${at}`;
  }
  if (dom === '*' && mon === '*' && dow === '1-5') return `every weekday (Monday to Friday) ${at}`;
  if (num(dom, 31) && mon === '*' && dow === '*') return `on day ${dom} of every month ${at}`;
  return null;
}

export function everyWords(ms) {
  const m = Math.round(ms / 60000);
  if (m % 1440 === 0) return m === 1440 ? 'every day' : `every ${m / 1440} days`;
  if (m % 60 === 0) return m === 60 ? 'every hour' : `every ${m / 60} hours`;
  return m === 1 ? 'every minute' : `every ${m} minutes`;
}

// A schedule (GET /schedules item) in words.
export function scheduleWords(s) {
  if (!s || (!s.recurring && !s.cron)) return 'only when someone presses Run now';
  if (s.cron) return cronWords(s.cron) || `on the custom schedule “${s.cron}” (UTC)`;
  if (s.frequency_ms) return everyWords(s.frequency_ms);
  return 'only when someone presses Run now';
}

export const fmtRun = (ms) => new Date(ms).toLocaleString('en-GB', { weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit', timeZone: 'UTC', timeZoneName: 'short' });

// The picker. existing: the Grouparoo schedule object (or null). api: (method, path) => Promise.
// Returns { element, read() } where read() gives { recurring, recurringFrequency?, cron?, errors[] }.
export function schedulePicker(existing, api) {
  const opts = (existing && existing.options) || {};
  const cron0 = opts.cron || '';
  const parts = cron0.trim().split(/\s+/);
  let kind = 'every';
  let hh = 3;
  let mm = 0;
  let days = [1];
  if (existing && !existing.recurring && !cron0) kind = 'manual';
  else if (cron0) {
    const w = cronWords(cron0);
    if (w && w.startsWith('every day at')) { kind = 'daily'; [mm, hh] = [Number(parts[0]), Number(parts[1])]; }
    else if (w && parts[4] !== '*' && parts[2] === '*' && /^\d+$/.test(parts[1])) {
      kind = 'weekly';
      [mm, hh] = [Number(parts[0]), Number(parts[1])];
      days = parts[4] === '1-5' ? [1, 2, 3, 4, 5] : parts[4].split(',').map((d) => Number(d) % 7);
    } else kind = 'cron';
  }
  const freq = existing && existing.recurringFrequency ? Math.round(existing.recurringFrequency / 60000) : 60;
  const everyN = el('input', { type: 'number', id: 'sched-every', min: '1', step: '1', value: String(freq % 60 === 0 ? freq / 60 : freq), 'aria-label': 'How often' });
  const everyUnit = el('select', { id: 'sched-every-unit', 'aria-label': 'Unit' }, el('option', { value: '1' }, 'minutes'), el('option', { value: '60' }, 'hours'));
  everyUnit.value = freq % 60 === 0 ? '60' : '1';
  const time = el('input', { type: 'time', id: 'sched-time', value: `${pad(hh)}:${pad(mm)}`, step: '60' });
  const timeField = el('div.field.sched-time', el('label', { for: 'sched-time' }, 'Time of day (UTC)'), time);
  const dayBoxes = DAYS.map((d, i) => {
    const id = `sched-day-${i}`;
    const box = el('input', { type: 'checkbox', id, value: String(i) });
    box.checked = days.includes(i);
    return el('span.day', box, el('label', { for: id }, d.slice(0, 3), el('span.visually-hidden', d.slice(3))));
  });
  const cron = el('input', { type: 'text', id: 'sched-cron', value: cron0, placeholder: '0 3 * * *', spellcheck: 'false', class: 'mono', 'aria-label': 'Custom schedule (cron, UTC)' });
  const preview = el('div.next-runs', { id: 'sched-preview', 'aria-live': 'polite' });
  const choice = (value, label, extra) => el('div.choice',
    el('input', { type: 'radio', name: 'when', id: `when-${value}`, value }),
    el('div', el('label', { for: `when-${value}` }, el('span.choice-label', label)), extra || null));
  const set = el('fieldset', { dataset: { field: 'recurringFrequency' } }, el('legend', 'When should joey run?'),
    choice('manual', 'Only when someone presses Run now'),
    choice('every', 'Every few minutes or hours', el('span.inline', el('span', 'Every'), everyN, everyUnit)),
    choice('daily', 'Every day'),
    choice('weekly', 'On some days of the week', el('div.days', { role: 'group', 'aria-label': 'Days of the week' }, dayBoxes)),
    timeField,
    el('details', { open: kind === 'cron' ? true : undefined }, el('summary', 'Advanced: a custom schedule'),
      choice('cron', 'A cron expression (UTC)', el('div', cron, el('span.help', 'Five fields: minute hour day-of-month month day-of-week, e.g. 0 3 * * 1-5.')))),
    preview);
  set.querySelector(`#when-${kind}`).checked = true;

  const read = () => {
    const w = set.querySelector('input[name="when"]:checked').value;
    const errors = [];
    const [h, m] = (time.value || '').split(':').map(Number);
    const timeOk = Number.isInteger(h) && Number.isInteger(m);
    if (w === 'manual') return { kind: w, recurring: false, errors };
    if (w === 'every') {
      const n = Number(everyN.value);
      if (!Number.isInteger(n) || n < 1) errors.push({ field: 'recurringFrequency', message: 'Enter a whole number, 1 or more.' });
      return { kind: w, recurring: true, recurringFrequency: n * Number(everyUnit.value) * 60000, errors };
    }
    if (w === 'daily' || w === 'weekly') {
      if (!timeOk) errors.push({ field: 'recurringFrequency', message: 'Pick a time of day.' });
      const ds = dayBoxes.map((b) => b.querySelector('input')).filter((b) => b.checked).map((b) => Number(b.value));
      if (w === 'weekly' && !ds.length) errors.push({ field: 'recurringFrequency', message: 'Pick at least one day.' });
      return { kind: w, recurring: true, cron: `${m || 0} ${h || 0} * * ${w === 'daily' ? '*' : ds.join(',')}`, errors };
    }
    const c = cron.value.trim();
    if (c.split(/\s+/).length !== 5 && !c.startsWith('@')) errors.push({ field: 'options.cron', message: 'A cron expression has five fields: minute hour day-of-month month day-of-week.' });
    return { kind: w, recurring: true, cron: c, errors };
  };

  let seq = 0;
  const refresh = async () => {
    const r = read();
    timeField.hidden = r.kind !== 'daily' && r.kind !== 'weekly';
    const mine = ++seq;
    preview.textContent = '';
    if (r.errors.length) { preview.appendChild(el('p.small', r.errors[0].message)); return; }
    if (!r.recurring) { preview.appendChild(el('p.small', 'No automatic runs.')); return; }
    const words = r.cron ? cronWords(r.cron) || `on the custom schedule “${r.cron}”` : everyWords(r.recurringFrequency);
    let next = [];
    if (r.cron) {
      try {
        const a = await api('GET', `/cron?expr=${encodeURIComponent(r.cron)}&count=3`);
        if (mine !== seq) return;
        if (!a.valid) { preview.appendChild(el('p.small', `This is not a schedule joey understands: ${a.error}.`)); return; }
        next = a.next;
      } catch { return; }
    } else {
      const now = Date.now();
      next = [1, 2, 3].map((i) => now + i * r.recurringFrequency);
    }
    preview.appendChild(el('p', el('strong', `Runs ${words}.`)));
    preview.appendChild(el('p.small', r.cron ? 'Next runs:' : 'Next runs, if the first one starts now:'));
    preview.appendChild(el('ul.small', next.map((t) => el('li', fmtRun(t)))));
  };
  set.addEventListener('change', refresh);
  set.addEventListener('input', refresh);
  refresh();
  return { element: set, read };
}
