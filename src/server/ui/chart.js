// chart.js: a small inline-SVG bar chart of runs over time, drawn by hand (no library).
// Every text goes through textContent; nothing here parses HTML.
const NS = 'http://www.w3.org/2000/svg';

export const STATUS_COLOURS = {
  success: '#1a7f37',
  completed_with_failures: '#bf8700',
  failed: '#cf222e',
  running: '#0b57d0',
  queued: '#6e7781',
  interrupted: '#9a6700',
};

function el(tag, attrs, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

// The words of each colour (as the badges say them).
const STATUS_WORDS = { success: 'succeeded', completed_with_failures: 'completed with failed rows', failed: 'failed', running: 'running', queued: 'queued', interrupted: 'interrupted' };

// The number of records a run changed (what the bar's height shows).
export function runChanges(r) {
  const c = r.counts || {};
  return (c.created || 0) + (c.updated || 0) + (c.deleted || 0) + (c.unsubscribed || 0) + (c.failed || 0);
}

/*
 * runsChart(runs, opts): an <svg> with one bar per run, oldest on the left; the bar's
 * height is the records it changed, its colour its status. opts: {width, height, max,
 * label(run) -> text for the tooltip, onSelect(run)}. Returns the element.
 */
export function runsChart(runs, opts = {}) {
  const width = opts.width || 720;
  const height = opts.height || 180;
  const pad = { l: 56, r: 12, t: 12, b: 34 };
  const list = runs.filter((r) => r.started_at).slice().sort((a, b) => a.started_at - b.started_at || (a.id || 0) - (b.id || 0)).slice(-(opts.max || 60));
  // a group, not an image, when its bars are links (an image's content is not interactive)
  const svg = el('svg', { viewBox: `0 0 ${width} ${height}`, width: '100%', preserveAspectRatio: 'xMinYMin meet', role: opts.onSelect ? 'group' : 'img', 'aria-labelledby': 'chart-title chart-desc', class: 'runs-chart' });
  svg.style.maxWidth = `${width}px`;
  const ok = list.filter((r) => r.status === 'success').length;
  const partial = list.filter((r) => r.status === 'completed_with_failures').length;
  const bad = list.filter((r) => r.status === 'failed').length;
  svg.appendChild(el('title', { id: 'chart-title' }, 'Runs over time'));
  svg.appendChild(el('desc', { id: 'chart-desc' },
    list.length ? `${list.length} runs from ${new Date(list[0].started_at).toLocaleString()} to ${new Date(list[list.length - 1].started_at).toLocaleString()}: ${ok} succeeded, ${partial} completed with failed rows, ${bad} failed. Bar height: records changed.`
      : 'No runs yet.'));
  const iw = width - pad.l - pad.r;
  const ih = height - pad.t - pad.b;
  const maxV = Math.max(1, ...list.map(runChanges));
  const nice = Math.max(4, niceMax(maxV)); // at least 0, 2, 4: no repeated axis labels
  // axes and grid
  for (const f of [0, 0.5, 1]) {
    const y = pad.t + ih - f * ih;
    svg.appendChild(el('line', { x1: pad.l, x2: width - pad.r, y1: y, y2: y, stroke: f === 0 ? '#57606a' : '#d0d7de', 'stroke-width': 1 }));
    svg.appendChild(el('text', { x: pad.l - 6, y: y + 4, 'text-anchor': 'end', 'font-size': 11, fill: '#57606a' }, String(Math.round(nice * f))));
  }
  // the y axis says what it counts
  svg.appendChild(el('text', { x: 12, y: pad.t + ih / 2, transform: `rotate(-90 12 ${pad.t + ih / 2})`, 'text-anchor': 'middle', 'font-size': 11, fill: '#57606a' }, 'records changed'));
  if (!list.length) {
    svg.appendChild(el('text', { x: pad.l + iw / 2, y: pad.t + ih / 2, 'text-anchor': 'middle', 'font-size': 13, fill: '#57606a' }, 'No runs yet'));
    return svg;
  }
  const slot = iw / Math.max(list.length, 8);
  const bw = Math.max(2, Math.min(28, slot * 0.7));
  list.forEach((r, i) => {
    const v = runChanges(r);
    const h = Math.max(2, (v / nice) * ih);
    const x = pad.l + i * slot + (slot - bw) / 2;
    const y = pad.t + ih - h;
    const g = el('g', { class: 'bar', 'data-status': r.status || '' });
    const rect = el('rect', { x: x.toFixed(1), y: y.toFixed(1), width: bw.toFixed(1), height: h.toFixed(1), rx: 2, fill: STATUS_COLOURS[r.status] || '#6e7781' });
    g.appendChild(rect);
    g.appendChild(el('title', {}, opts.label ? opts.label(r) : `${r.status}: ${v} changed`));
    if (opts.onSelect && r.id != null) {
      g.setAttribute('tabindex', '0');
      g.setAttribute('role', 'link');
      g.setAttribute('aria-label', opts.label ? opts.label(r) : `run ${r.id}`);
      g.style.cursor = 'pointer';
      g.addEventListener('click', () => opts.onSelect(r));
      g.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); opts.onSelect(r); } });
    }
    svg.appendChild(g);
  });
  const first = new Date(list[0].started_at);
  const last = new Date(list[list.length - 1].started_at);
  // the two ends of the x axis never read the same: seconds when the minutes agree
  let fmt = (d) => d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
  if (fmt(first) === fmt(last)) fmt = (d) => d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
  svg.appendChild(el('text', { x: pad.l, y: height - 10, 'font-size': 11, fill: '#57606a' }, fmt(first)));
  if (list.length > 1 && fmt(first) !== fmt(last)) svg.appendChild(el('text', { x: width - pad.r, y: height - 10, 'text-anchor': 'end', 'font-size': 11, fill: '#57606a' }, fmt(last)));
  return svg;
}

function niceMax(v) {
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

// A legend for the colours (text, so colour is never the only cue).
export function chartLegend() {
  const d = document.createElement('div');
  d.className = 'legend';
  for (const [s, c] of Object.entries(STATUS_COLOURS)) {
    const span = document.createElement('span');
    const i = document.createElement('i');
    i.style.background = c;
    i.setAttribute('aria-hidden', 'true');
    span.appendChild(i);
    span.appendChild(document.createTextNode(STATUS_WORDS[s] || s));
    d.appendChild(span);
  }
  return d;
}
