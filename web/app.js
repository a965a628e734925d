/* Castellan web panel: a small single-page app over the REST API (/api/v1/)
 * and the panel's own /web/api/ (sign-in, users, audit, status).
 * No framework, no build step, no network access beyond this head-end.
 * DOM is built with el() (never innerHTML with data), so names and info
 * typed by anyone are shown as text. Times are shown in the operator's
 * time zone (the browser's, or the one picked in the header). */
'use strict';

const S = { me: null, csrf: null, packages: [], tz: localStorage.getItem('castellan.tz') || '' };

/* ---- helpers ------------------------------------------------------------ */
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids.flat()) if (k !== null && k !== undefined && k !== false) e.append(k instanceof Node ? k : String(k));
  return e;
}
const $ = (id) => document.getElementById(id);
function svg(tag, attrs) {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}
function toast(msg, bad) {
  const d = el('div', { class: bad ? 'bad' : '' }, msg);
  $('toast').append(d);
  setTimeout(() => d.remove(), bad ? 7000 : 3500);
}
function fmtTime(unix_s) {
  if (!unix_s) return '—';
  const o = { dateStyle: 'medium', timeStyle: 'short' };
  if (S.tz) o.timeZone = S.tz;
  return new Intl.DateTimeFormat(undefined, o).format(new Date(unix_s * 1000));
}
function fmtMs(ms) { return fmtTime(ms / 1000); }
/* datetime-local value <-> unix seconds, in the browser's zone */
function toLocalInput(s) {
  if (!s) return '';
  const d = new Date(s * 1000);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}
function fromLocalInput(v) { return v ? Math.floor(new Date(v).getTime() / 1000) : 0; }
function confirmAction(text) {
  return new Promise((resolve) => {
    const d = $('confirm');
    $('confirm-text').textContent = text;
    d.returnValue = '';
    d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true });
    d.showModal();
    $('confirm-cancel').focus();
  });
}
class ApiError extends Error {
  constructor(status, body) { super((body && body.error && body.error.message) || ('HTTP ' + status)); this.status = status; this.body = body; }
}
async function api(method, path, body, opts) {
  const h = {};
  if (S.csrf) h['X-CSRF-Token'] = S.csrf;
  let b;
  if (body !== undefined) {
    if (opts && opts.raw) { b = body; h['Content-Type'] = opts.type; } else { b = JSON.stringify(body); h['Content-Type'] = 'application/json'; }
  }
  const r = await fetch(path, { method, headers: h, body: b, credentials: 'same-origin' });
  if (r.status === 401 && !path.endsWith('/login')) { showSignin(); throw new ApiError(401, null); }
  if (r.status === 204) return null;
  const ct = r.headers.get('Content-Type') || '';
  const data = ct.includes('json') ? await r.json() : await r.text();
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}
const rest = (m, p, b, o) => api(m, '/api/v1/' + p, b, o);
const panel = (m, p, b) => api(m, '/web/api/' + p, b);
function fail(e) { if (e.status !== 401) toast(e.message, true); }
function maskOf(ids) { let m = 0; for (const i of ids) if (i < 32) m = (m | (1 << i)) >>> 0; return m; }
const hex8 = (m) => m.toString(16).toUpperCase().padStart(8, '0');
function pkgName(id) { const p = S.packages.find((x) => x.id === id); return p ? p.name : ('#' + id); }
async function loadPackages() {
  const all = []; let cur = null;
  do {
    const r = await rest('GET', 'packages?limit=1000' + (cur !== null ? '&cursor=' + cur : ''));
    all.push(...r.items); cur = r.next_cursor;
  } while (cur !== null && all.length < 70000);
  S.packages = all;
}

/* ---- sign-in ------------------------------------------------------------ */
function showSignin() {
  S.me = null; S.csrf = null;
  $('app').hidden = true; $('signin').hidden = false;
  $('signin-user').focus();
}
async function signin(ev) {
  ev.preventDefault();
  const err = $('signin-error'); err.hidden = true;
  try {
    const me = await api('POST', '/web/api/login', { user: $('signin-user').value, password: $('signin-password').value });
    $('signin-password').value = '';
    started(me);
  } catch (e) {
    err.textContent = e.status === 423 ? 'Too many wrong passwords: this account is locked until ' + fmtMs(e.body.error.until_ms) + '.'
      : e.status === 401 ? 'Wrong user name or password.' : e.message;
    err.hidden = false;
  }
}
async function signout() {
  try { await panel('POST', 'logout'); } catch (e) { /* signed out anyway */ }
  showSignin();
}
function started(me) {
  S.me = me; S.csrf = me.csrf;
  $('signin').hidden = true; $('app').hidden = false;
  $('who').textContent = me.user + ' (' + me.role + ')';
  buildNav();
  loadPackages().catch(fail).finally(route);
}

/* ---- navigation --------------------------------------------------------- */
const VIEWS = [
  ['dashboard', 'Dashboard', 'read', viewDashboard],
  ['cards', 'Cards', 'read', viewCards],
  ['subscribers', 'Subscribers', 'read', viewSubscribers],
  ['import', 'Import / export', 'write', viewImport],
  ['packages', 'Packages', 'read', viewPackages],
  ['channels', 'Channels', 'read', viewChannels],
  ['users', 'Users & keys', 'admin', viewUsers],
  ['audit', 'Audit log', 'admin', viewAudit],
  ['compliance', 'Blacklist & reports', 'read', viewCompliance],
  ['osd', 'Fingerprints & messages', 'read', viewOsd],
  ['system', 'System', 'admin', viewSystem],
  ['kms', 'KMS', 'admin', viewKms],
];
function buildNav() {
  const n = $('nav'); n.replaceChildren();
  for (const [id, label, need] of VIEWS) if (S.me.can[need]) n.append(el('a', { href: '#/' + id, 'data-view': id }, label));
}
let timer = null;
function route() {
  if (!S.me) return;
  if (timer) { clearInterval(timer); timer = null; }
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  const v = VIEWS.find((x) => x[0] === parts[0] && S.me.can[x[2]]) || VIEWS[0];
  for (const a of document.querySelectorAll('nav a')) a.toggleAttribute('aria-current', a.dataset.view === v[0]);
  document.querySelector('nav a[aria-current]')?.setAttribute('aria-current', 'page');
  const m = $('main'); m.replaceChildren();
  if (v[0] === 'cards' && parts[1]) viewCard(m, parts[1]); else v[3](m, parts.slice(1));
}

/* ---- dashboard (plain SVG plots) ---------------------------------------- */
const hist = [];
function plot(series, label, key2) {
  const W = 600, H = 140, P = 24;
  const s = svg('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label });
  const vals = series.map((x) => x.v).concat(key2 ? series.map((x) => x.v2) : []);
  const max = Math.max(1, ...vals);
  s.append(svg('line', { class: 'axis', x1: P, y1: H - P, x2: W, y2: H - P }), svg('line', { class: 'axis', x1: P, y1: 4, x2: P, y2: H - P }));
  const t = svg('text', { x: 2, y: 12 }); t.textContent = max.toFixed(max < 10 ? 1 : 0); s.append(t);
  const t0 = svg('text', { x: 2, y: H - P }); t0.textContent = '0'; s.append(t0);
  const pts = (k) => series.map((x, i) => `${P + (i * (W - P)) / Math.max(1, series.length - 1)},${H - P - ((x[k] || 0) / max) * (H - P - 8)}`).join(' ');
  if (series.length > 1) {
    s.append(svg('polyline', { class: 'line', points: pts('v') }));
    if (key2) s.append(svg('polyline', { class: 'line2', points: pts('v2') }));
  }
  return s;
}
function viewDashboard(m) {
  const stats = el('div', { class: 'grid' });
  const charts = el('div');
  m.append(el('h1', {}, 'Dashboard'), stats, charts);
  const draw = async () => {
    let st;
    try { st = await panel('GET', 'status'); } catch (e) { return fail(e); }
    hist.push(st); if (hist.length > 120) hist.shift();
    const rate = (f) => hist.slice(1).map((x, i) => ({ v: Math.max(0, (f(x) - f(hist[i])) / Math.max(0.001, (x.now_ms - hist[i].now_ms) / 1000)) }));
    const tile = (label, value) => el('div', { class: 'panel' }, el('div', { class: 'muted' }, label), el('div', { class: 'stat' }, String(value)));
    const h = st.headend || {};
    stats.replaceChildren(
      tile('HTTP requests', st.http.requests), tile('REST errors', st.http.rest_errors),
      tile('Packages', st.packages), tile('Signed-in sessions', st.web.sessions),
      tile('Failed sign-ins', st.web.logins_failed),
      ...(st.headend ? [tile('ECMs sent', h.ecms), tile('EMMs sent', h.emms), tile('EMMG', h.emmg_connected ? 'connected' : 'down')] : []));
    const series = [[ 'Requests per second (red: REST errors)', rate((x) => x.http.requests), rate((x) => x.http.rest_errors) ]];
    if (st.headend) {
      series.push(['ECMs per second', rate((x) => x.headend.ecms)], ['EMMs per second', rate((x) => x.headend.emms)]);
    }
    charts.replaceChildren(...series.map(([label, a, b]) => {
      const pts = a.map((x, i) => ({ v: x.v, v2: b ? b[i].v : 0 }));
      return el('div', { class: 'panel' }, el('h2', {}, label), pts.length > 1 ? plot(pts, label, !!b) : el('p', { class: 'empty' }, 'Collecting samples…'));
    }));
  };
  draw(); timer = setInterval(draw, 3000);
}

/* ---- cards -------------------------------------------------------------- */
function stateBadge(s) { return el('span', { class: 'badge ' + s }, s); }
function viewCards(m) {
  const q = el('input', { id: 'card-search', type: 'search', placeholder: 'serial prefix, or name / address / phone (3+ letters; fewer: the whole name)', 'aria-label': 'Search cards' });
  const info = el('input', { id: 'card-info', type: 'search', placeholder: 'text in subscriber info', 'aria-label': 'Info contains' });
  const state = el('select', { 'aria-label': 'State' }, el('option', { value: '' }, 'any state'), ...['active', 'blocked', 'retired'].map((s) => el('option', { value: s }, s)));
  const body = el('tbody');
  const more = el('button', { type: 'button', hidden: true }, 'Next page');
  const sel = new Set();
  const bulk = el('div', { class: 'row', hidden: true });
  let cursor = null;
  const load = async (reset) => {
    if (reset) { body.replaceChildren(); cursor = null; sel.clear(); bulk.hidden = true; }
    const v = q.value.trim();
    let p = 'cards?limit=50';
    if (/^\d+$/.test(v)) p += '&serial_prefix=' + v; else if (v) p += '&q=' + encodeURIComponent(v);
    if (state.value) p += '&state=' + state.value;
    if (info.value.trim() && !(v && !/^\d+$/.test(v))) p += '&info=' + encodeURIComponent(info.value.trim());
    if (cursor !== null) p += '&cursor=' + cursor;
    let r; try { r = await rest('GET', p); } catch (e) { return fail(e); }
    for (const c of r.items) {
      const cb = el('input', { type: 'checkbox', 'aria-label': 'select ' + c.serial_no, onchange: () => { cb.checked ? sel.add(c.serial_no) : sel.delete(c.serial_no); bulk.hidden = sel.size === 0; } });
      body.append(el('tr', {}, el('td', {}, cb), el('td', { class: 'mono' }, el('a', { href: '#/cards/' + c.serial_no }, c.serial_no)),
        el('td', {}, c.name || el('span', { class: 'muted' }, '—')), el('td', {}, stateBadge(c.state)),
        el('td', { class: 'mono opt' }, c.access_criteria), el('td', { class: 'opt' }, fmtTime(c.finish))));
    }
    if (!body.children.length) body.append(el('tr', {}, el('td', { colspan: 6, class: 'empty' }, v || state.value || info.value ? 'No card matches this search.' : 'No cards yet. Create the first one above, or import a CSV file.')));
    cursor = r.next_cursor; more.hidden = cursor === null;
  };
  const doBulk = async (st) => {
    if (!(await confirmAction(`${st === 'blocked' ? 'Block' : 'Unblock'} ${sel.size} card(s)?`))) return;
    let n = 0;
    for (const s of sel) { try { await rest('PATCH', 'cards/' + s, { state: st }); n++; } catch (e) { fail(e); } }
    toast(`${n} card(s) ${st === 'blocked' ? 'blocked' : 'unblocked'}`); load(true);
  };
  bulk.append(el('span', { class: 'muted' }, 'Selected:'), el('button', { type: 'button', onclick: () => doBulk('blocked') }, 'Block'),
    el('button', { type: 'button', onclick: () => doBulk('active') }, 'Unblock'));
  let deb; q.addEventListener('input', () => { clearTimeout(deb); deb = setTimeout(() => load(true), 250); });
  info.addEventListener('input', () => { clearTimeout(deb); deb = setTimeout(() => load(true), 250); });
  state.addEventListener('change', () => load(true));
  more.addEventListener('click', () => load(false));
  m.append(el('h1', {}, 'Cards'));
  if (S.me.can.write) m.append(newCardForm());
  m.append(el('div', { class: 'row' }, el('label', {}, 'Search', q), el('label', {}, 'Info contains', info), el('label', {}, 'State', state)), bulk,
    el('div', { class: 'tablewrap' }, el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, ''), el('th', {}, 'Serial'), el('th', {}, 'Subscriber'), el('th', {}, 'State'), el('th', { class: 'opt' }, 'Access criteria'), el('th', { class: 'opt' }, 'Finish'))), body)), more);
  load(true); q.focus();
}
function newCardForm() {
  const serial = el('input', { id: 'new-serial', inputmode: 'numeric', pattern: '[0-9]{1,19}', required: true });
  const name = el('input', { id: 'new-name' });
  const f = el('form', { class: 'panel row' }, el('label', {}, 'New card serial', serial), el('label', {}, 'Subscriber name', name),
    el('button', { class: 'primary', type: 'submit' }, 'Create card'));
  f.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const b = { serial_no: serial.value.trim() }; if (name.value.trim()) b.name = name.value.trim();
    try { await rest('POST', 'cards', b); toast('Card ' + b.serial_no + ' created'); location.hash = '#/cards/' + b.serial_no; } catch (e) { fail(e); }
  });
  return f;
}
async function viewCard(m, serial) {
  let c; try { c = await rest('GET', 'cards/' + encodeURIComponent(serial)); } catch (e) { m.append(el('p', { class: 'empty' }, 'Card not found.')); return fail(e); }
  const w = S.me.can.write;
  const subs = new Map(c.subscriptions.map((s) => [s.package, s]));
  const head = el('div', { class: 'row' }, el('h1', {}, 'Card ', el('span', { class: 'mono' }, c.serial_no)), stateBadge(c.state));
  const name = el('input', { id: 'card-name', value: c.name, disabled: !w });
  const info = el('input', { id: 'card-info', value: c.info, disabled: !w });
  const chip = el('input', { id: 'card-chip', value: c.chip_id, disabled: !w });
  const pair = el('input', { id: 'card-pair', type: 'checkbox', checked: c.pair, disabled: !w });
  const start = el('input', { id: 'card-start', type: 'datetime-local', value: toLocalInput(c.start), disabled: !w });
  const finish = el('input', { id: 'card-finish', type: 'datetime-local', value: toLocalInput(c.finish), disabled: !w });
  const fields = el('form', { class: 'panel' }, el('div', { class: 'grid' }, el('label', {}, 'Subscriber name', name), el('label', {}, 'Info', info),
    el('label', {}, 'Chip id', chip), el('label', {}, 'Start', start), el('label', {}, 'Finish', finish),
    el('label', {}, el('span', {}, 'Pairing required'), pair)),
  el('p', { class: 'muted' }, 'Period shown in ' + (S.tz || Intl.DateTimeFormat().resolvedOptions().timeZone) + ': ' + fmtTime(c.start) + ' → ' + fmtTime(c.finish)),
  w ? el('div', { class: 'row end' }, el('button', { class: 'primary', type: 'submit', id: 'card-save' }, 'Save card')) : null);
  fields.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await rest('PATCH', 'cards/' + c.serial_no, { name: name.value, info: info.value, chip_id: chip.value, pair: pair.checked, start: fromLocalInput(start.value), finish: fromLocalInput(finish.value) });
      toast('Saved'); route();
    } catch (e) { fail(e); }
  });
  /* packages as named checkboxes, with the 32-bit mask shown */
  const boxes = S.packages.map((p) => el('label', {}, el('input', { type: 'checkbox', 'data-pkg': p.id, checked: subs.has(p.id), disabled: !w }), `${p.name} (${p.id})`));
  const maskEl = el('span', { class: 'mono', id: 'card-mask' }, c.access_criteria);
  const pk = el('form', { class: 'panel' }, el('h2', {}, 'Packages'), el('p', { class: 'muted' }, 'Access criteria (packages 0–31 as a 32-bit mask): ', maskEl),
    S.packages.length ? el('div', { class: 'pkgs' }, boxes) : el('p', { class: 'empty' }, 'No packages defined yet (admin: Packages).'),
    w ? el('div', { class: 'row end' }, el('button', { class: 'primary', type: 'submit', id: 'pkg-save' }, 'Save packages')) : null);
  pk.addEventListener('change', () => {
    const ids = [...pk.querySelectorAll('input[data-pkg]:checked')].map((x) => +x.dataset.pkg);
    maskEl.textContent = hex8(maskOf(ids));
  });
  pk.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const want = new Set([...pk.querySelectorAll('input[data-pkg]:checked')].map((x) => +x.dataset.pkg));
    const sub = [...want].filter((i) => !subs.has(i)).map((i) => ({ serial_no: c.serial_no, package: i, start: c.start, finish: c.finish }));
    const uns = [...subs.keys()].filter((i) => !want.has(i)).map((i) => ({ serial_no: c.serial_no, package: i }));
    if (uns.length && !(await confirmAction(`Remove ${uns.map((x) => pkgName(x.package)).join(', ')} from card ${c.serial_no}?`))) return;
    try { await rest('POST', 'subscriptions/bulk', { subscribe: sub, unsubscribe: uns }); toast('Packages saved'); route(); } catch (e) { fail(e); }
  });
  const subsTable = el('div', { class: 'tablewrap' }, el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'Package'), el('th', {}, 'Start'), el('th', {}, 'Finish'))),
    el('tbody', {}, c.subscriptions.length ? c.subscriptions.map((s) => el('tr', {}, el('td', {}, pkgName(s.package)), el('td', {}, fmtTime(s.start)), el('td', {}, fmtTime(s.finish))))
      : el('tr', {}, el('td', { colspan: 3, class: 'empty' }, 'No subscriptions.')))));
  const actions = el('div', { class: 'row' });
  if (w) {
    const blocked = c.state === 'blocked';
    actions.append(el('button', { type: 'button', id: 'card-block', class: blocked ? '' : 'danger', onclick: async () => {
      if (!(await confirmAction(`${blocked ? 'Unblock' : 'Block'} card ${c.serial_no}?`))) return;
      try { await rest('PATCH', 'cards/' + c.serial_no, { state: blocked ? 'active' : 'blocked' }); toast(blocked ? 'Card unblocked' : 'Card blocked'); route(); } catch (e) { fail(e); }
    } }, blocked ? 'Unblock card' : 'Block card'));
  }
  if (S.me.can.admin) {
    actions.append(el('button', { type: 'button', class: 'danger', onclick: async () => {
      if (!(await confirmAction(`Delete card ${c.serial_no} and all its subscriptions? This cannot be undone.`))) return;
      try { await rest('DELETE', 'cards/' + c.serial_no); toast('Card deleted'); location.hash = '#/cards'; } catch (e) { fail(e); }
    } }, 'Delete card'));
  }
  m.append(el('p', {}, el('a', { href: '#/cards' }, '← Cards')), head, actions, fields, pk, el('h2', {}, 'Subscriptions'), subsTable);
}

/* ---- subscribers -------------------------------------------------------- */
function viewSubscribers(m) {
  const q = el('input', { type: 'search', placeholder: 'exact name', 'aria-label': 'Subscriber name' });
  const body = el('tbody'); const more = el('button', { type: 'button', hidden: true }, 'Next page');
  let cursor = null;
  const load = async (reset) => {
    if (reset) { body.replaceChildren(); cursor = null; }
    let p = 'subscribers?limit=50' + (q.value.trim() ? '&name=' + encodeURIComponent(q.value.trim()) : '') + (cursor !== null ? '&cursor=' + cursor : '');
    let r; try { r = await rest('GET', p); } catch (e) { return fail(e); }
    for (const u of r.items) body.append(el('tr', {}, el('td', { class: 'mono' }, u.id), el('td', {}, el('a', { href: '#/cards', onclick: () => setTimeout(() => { const s = $('card-search'); if (s) { s.value = u.name; s.dispatchEvent(new Event('input')); } }, 50) }, u.name)), el('td', {}, u.info)));
    if (!body.children.length) body.append(el('tr', {}, el('td', { colspan: 3, class: 'empty' }, 'No subscribers found.')));
    cursor = r.next_cursor; more.hidden = cursor === null;
  };
  q.addEventListener('change', () => load(true)); more.addEventListener('click', () => load(false));
  m.append(el('h1', {}, 'Subscribers'), el('div', { class: 'row' }, el('label', {}, 'Name', q)),
    el('div', { class: 'tablewrap' }, el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'Id'), el('th', {}, 'Name'), el('th', {}, 'Info'))), body)), more);
  load(true);
}

/* ---- import / export (progress, per-line errors) ------------------------- */
function viewImport(m) {
  const file = el('input', { type: 'file', accept: '.csv,text/csv', id: 'csv-file' });
  const prog = el('progress', { max: 100, value: 0, hidden: true });
  const out = el('div', { role: 'status' });
  const go = el('button', { class: 'primary', type: 'button' }, 'Import');
  go.addEventListener('click', () => {
    const f = file.files[0]; if (!f) return toast('Pick a CSV file first', true);
    const x = new XMLHttpRequest();
    x.open('POST', '/api/v1/import'); x.setRequestHeader('Content-Type', 'text/csv'); x.setRequestHeader('X-CSRF-Token', S.csrf);
    prog.hidden = false; prog.value = 0; out.replaceChildren('Uploading…');
    x.upload.onprogress = (e) => { if (e.lengthComputable) prog.value = (100 * e.loaded) / e.total; };
    x.onload = () => {
      prog.value = 100;
      let b = {}; try { b = JSON.parse(x.responseText); } catch (e) { /* not JSON */ }
      if (x.status === 200) out.replaceChildren(el('p', {}, `Imported ${b.rows} rows: ${b.added} new cards, ${b.updated} updated.`));
      else out.replaceChildren(el('p', { class: 'error' }, 'Nothing was imported. ' + (b.error ? (b.error.line ? `Line ${b.error.line}: ` : '') + b.error.message : 'HTTP ' + x.status)));
    };
    x.onerror = () => out.replaceChildren(el('p', { class: 'error' }, 'Upload failed.'));
    x.send(f);
  });
  m.append(el('h1', {}, 'Import / export'),
    el('div', { class: 'panel' }, el('h2', {}, 'Import cards from CSV'), el('p', { class: 'muted' }, 'The whole file is checked first; one bad line and nothing is imported (the line is shown). Columns: docs/csv.md.'),
      el('div', { class: 'row' }, file, go), prog, out),
    el('div', { class: 'panel' }, el('h2', {}, 'Export'), el('p', {}, el('a', { href: '/api/v1/export', download: 'cards.csv' }, 'Download every card as CSV'))));
}

/* ---- packages & channels ------------------------------------------------ */
function viewPackages(m) {
  const rename = async (p) => {
    const n = prompt('New name of package ' + p.id + ' (' + p.name + ')', p.name); if (!n || n === p.name) return;
    try { await rest('PATCH', 'packages/' + p.id, { name: n }); await loadPackages(); toast('Package renamed'); route(); } catch (e) { fail(e); }
  };
  const body = el('tbody', {}, S.packages.map((p) => el('tr', {}, el('td', { class: 'mono' }, p.id), el('td', {}, p.name), el('td', { class: 'mono opt' }, p.id < 32 ? 'bit ' + p.id : '—'),
    el('td', {}, S.me.can.admin ? el('button', { type: 'button', 'data-rename': p.id, onclick: () => rename(p) }, 'Rename') : ''))));
  m.append(el('h1', {}, 'Packages'));
  if (S.me.can.admin) {
    const id = el('input', { inputmode: 'numeric', required: true, id: 'pkg-id' }), name = el('input', { required: true, id: 'pkg-name' });
    const f = el('form', { class: 'panel row' }, el('label', {}, 'Id (0–65535)', id), el('label', {}, 'Name', name), el('button', { class: 'primary' }, 'Add package'));
    f.addEventListener('submit', async (ev) => { ev.preventDefault(); try { await rest('POST', 'packages', { id: +id.value, name: name.value }); await loadPackages(); toast('Package added'); route(); } catch (e) { fail(e); } });
    m.append(f);
  }
  m.append(el('div', { class: 'tablewrap' }, el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'Id'), el('th', {}, 'Name'), el('th', { class: 'opt' }, 'Mask bit'), el('th', {}, ''))), body)));
}
async function viewChannels(m) {
  m.append(el('h1', {}, 'Channels'));
  const body = el('tbody');
  if (S.me.can.admin) {
    const sid = el('input', { inputmode: 'numeric', required: true }), name = el('input', { required: true }), ac = el('input', { class: 'mono', placeholder: '00000001', pattern: '[0-9A-Fa-f]{8}', required: true });
    const f = el('form', { class: 'panel row' }, el('label', {}, 'Service id', sid), el('label', {}, 'Name', name), el('label', {}, 'Access criteria (8 hex)', ac), el('button', { class: 'primary' }, 'Save channel'));
    f.addEventListener('submit', async (ev) => { ev.preventDefault(); try { await rest('PUT', 'channels/' + (+sid.value), { name: name.value, access_criteria: ac.value.toUpperCase() }); toast('Channel saved'); route(); } catch (e) { fail(e); } });
    m.append(f);
  }
  m.append(el('div', { class: 'tablewrap' }, el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'Service id'), el('th', {}, 'Name'), el('th', {}, 'Access criteria'), el('th', {}, 'Packages'), el('th', {}, ''))), body)));
  let r; try { r = await rest('GET', 'channels?limit=1000'); } catch (e) { return fail(e); }
  for (const c of r.items) {
    const mask = parseInt(c.access_criteria, 16); const names = [];
    for (let i = 0; i < 32; i++) if (mask & (1 << i)) names.push(pkgName(i));
    body.append(el('tr', {}, el('td', { class: 'mono' }, c.service_id), el('td', {}, c.name), el('td', { class: 'mono' }, c.access_criteria), el('td', {}, names.join(', ')),
      el('td', {}, S.me.can.admin ? el('button', { type: 'button', onclick: async () => { if (await confirmAction(`Delete channel ${c.name} (${c.service_id})?`)) { try { await rest('DELETE', 'channels/' + c.service_id); route(); } catch (e) { fail(e); } } } }, 'Delete') : '')));
  }
  if (!r.items.length) body.append(el('tr', {}, el('td', { colspan: 5, class: 'empty' }, 'No channels yet.')));
}

/* ---- users & API keys (admin) ------------------------------------------- */
async function viewUsers(m) {
  const body = el('tbody');
  const name = el('input', { required: true, id: 'user-name' }), pw = el('input', { type: 'password', required: true, minlength: 10, autocomplete: 'new-password', id: 'user-password' });
  const role = el('select', { id: 'user-role' }, ['operator', 'read-only', 'admin'].map((r) => el('option', { value: r }, r)));
  const f = el('form', { class: 'panel row' }, el('label', {}, 'User', name), el('label', {}, 'Password (10+)', pw), el('label', {}, 'Role', role), el('button', { class: 'primary' }, 'Add user'));
  f.addEventListener('submit', async (ev) => { ev.preventDefault(); try { await panel('POST', 'users', { name: name.value, password: pw.value, role: role.value }); toast('User added'); route(); } catch (e) { fail(e); } });
  const kuser = el('input', { required: true, id: 'key-user' }); const scopes = ['read', 'write', 'admin', 'metrics'].map((s) => el('label', {}, el('input', { type: 'checkbox', value: s, checked: s === 'read' || s === 'write' }), s));
  const keyOut = el('div');
  const kf = el('form', { class: 'panel' }, el('h2', {}, 'New API key (for billing systems and scripts)'), el('div', { class: 'row' }, el('label', {}, 'API user', kuser), ...scopes, el('button', { class: 'primary' }, 'Create key')), keyOut);
  kf.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const r = await panel('POST', 'apikeys', { user: kuser.value, scopes: scopes.map((l) => l.firstChild).filter((c) => c.checked).map((c) => c.value) });
      keyOut.replaceChildren(el('p', {}, 'Key for ' + r.user + ' — copy it now, it is not shown again:'), el('div', { class: 'keyshow mono' }, r.key));
    } catch (e) { fail(e); }
  });
  const keys = el('tbody', { id: 'apikeys' });
  m.append(el('h1', {}, 'Users & API keys'), f, el('div', { class: 'tablewrap' }, el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'User'), el('th', {}, 'Role'), el('th', {}, 'Status'), el('th', {}, ''))), body)), kf,
    el('h2', {}, 'API keys'), el('div', { class: 'tablewrap' }, el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'Id'), el('th', {}, 'API user'), el('th', {}, 'Key (hash prefix)'), el('th', {}, 'Scopes'), el('th', {}, 'Created'), el('th', {}, ''))), keys)));
  rest('GET', 'apikeys?limit=1000').then((kr) => {
    for (const k of kr.items) {
      keys.append(el('tr', {}, el('td', { class: 'mono' }, k.id), el('td', {}, k.user), el('td', { class: 'mono' }, k.key_prefix), el('td', {}, k.scopes.join(', ')), el('td', {}, fmtMs(k.created_ms)),
        el('td', {}, k.revoked ? el('span', { class: 'badge blocked' }, 'revoked') : el('button', { type: 'button', class: 'danger', 'data-revoke': k.id, onclick: async () => {
          if (!(await confirmAction(`Revoke API key ${k.key_prefix} of ${k.user}? Programs using it are refused at once.`))) return;
          try { await rest('DELETE', 'apikeys/' + k.id); toast('Key revoked'); route(); } catch (e) { fail(e); }
        } }, 'Revoke'))));
    }
    if (!kr.items.length) keys.append(el('tr', {}, el('td', { colspan: 6, class: 'empty' }, 'No API keys yet.')));
  }).catch(fail);
  let r; try { r = await panel('GET', 'users'); } catch (e) { return fail(e); }
  for (const u of r.items) {
    const locked = u.locked_until_ms > Date.now();
    const acts = el('td', { class: 'row' });
    if (locked) acts.append(el('button', { type: 'button', onclick: async () => { try { await panel('PATCH', 'users/' + u.name, { unlock: true }); route(); } catch (e) { fail(e); } } }, 'Unlock'));
    acts.append(el('button', { type: 'button', onclick: async () => {
      const body = {};
      if (u.name === S.me.user) { body.current_password = prompt('Your current password'); if (!body.current_password) return; }
      body.password = prompt('New password for ' + u.name + ' (10 characters or more)'); if (!body.password) return;
      try { await panel('PATCH', 'users/' + u.name, body); toast('Password changed'); } catch (e) { fail(e); }
    } }, 'Set password'));
    if (u.name !== S.me.user) acts.append(el('button', { type: 'button', class: 'danger', onclick: async () => { if (await confirmAction('Delete user ' + u.name + '?')) { try { await panel('DELETE', 'users/' + u.name); route(); } catch (e) { fail(e); } } } }, 'Delete'));
    body.append(el('tr', {}, el('td', {}, u.name), el('td', {}, u.role), el('td', {}, locked ? 'locked until ' + fmtMs(u.locked_until_ms) : u.fails ? u.fails + ' failed sign-in(s)' : 'ok'), acts));
  }
}

/* ---- audit log (admin) -------------------------------------------------- */
function viewAudit(m) {
  const who = el('input', { placeholder: 'e.g. web:alice, rest:', 'aria-label': 'Who' }), q = el('input', { placeholder: 'text in the entry', 'aria-label': 'Text' });
  const since = el('input', { type: 'datetime-local', 'aria-label': 'Since' });
  const body = el('tbody');
  const load = async () => {
    const p = new URLSearchParams({ limit: '200' }); if (who.value) p.set('who', who.value); if (q.value) p.set('q', q.value); if (since.value) p.set('since_ms', String(fromLocalInput(since.value) * 1000));
    let r; try { r = await panel('GET', 'audit?' + p); } catch (e) { return fail(e); }
    body.replaceChildren(...r.items.map((a) => el('tr', {}, el('td', {}, fmtMs(a.at_ms)), el('td', { class: 'mono' }, a.who), el('td', {}, a.what))));
    if (!r.items.length) body.append(el('tr', {}, el('td', { colspan: 3, class: 'empty' }, 'No entries match.')));
  };
  const f = el('form', { class: 'row' }, el('label', {}, 'Who', who), el('label', {}, 'Contains', q), el('label', {}, 'Since', since), el('button', { class: 'primary' }, 'Filter'));
  f.addEventListener('submit', (ev) => { ev.preventDefault(); load(); });
  m.append(el('h1', {}, 'Audit log'), f, el('div', { class: 'tablewrap' }, el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'When'), el('th', {}, 'Who'), el('th', {}, 'What'))), body)));
  load();
}

/* ---- fingerprints and messages (docs/sms.md, issue 13) --------------------- */
/* A form's error line: what the panel or the REST API said was wrong, shown
 * until the next try (a toast alone goes away before it is read). */
function formError(id) {
  const p = el('p', { id, class: 'error', role: 'alert', hidden: true });
  return { p, show: (msg) => { p.textContent = msg; p.hidden = false; }, clear: () => { p.textContent = ''; p.hidden = true; } };
}
const utf8Bytes = (s) => new TextEncoder().encode(s).length;
const MSG_MAX_BYTES = 720; /* OSD_MAX_TEXT (cas/osd.h) */
function viewOsd(m) {
  const fpBody = el('tbody', { id: 'fp-body' }), msgBody = el('tbody', { id: 'msg-body' });
  const del = (kind, id) => async () => {
    if (!(await confirmAction(`Delete ${kind} ${id}?`))) return;
    try { await rest('DELETE', kind + 's/' + id); toast('Deleted'); load(); } catch (e) { fail(e); }
  };
  const load = async () => {
    let f, g;
    try { f = await rest('GET', 'fingerprints'); g = await rest('GET', 'messages'); } catch (e) { return fail(e); }
    fpBody.replaceChildren(...f.items.map((x) => el('tr', { 'data-id': x.id }, el('td', { class: 'mono' }, x.id), el('td', {}, x.target + ' ' + x.value),
      el('td', {}, (x.covert ? (x.encoded ? 'covert (code)' : 'covert') : 'overt') + ', ' + x.show), el('td', {}, x.random ? 'random' : x.x_pct + '%, ' + x.y_pct + '%'),
      el('td', { class: 'mono' }, x.fg + ' on ' + x.bg + ', ' + x.font_px + ' px'),
      el('td', {}, x.duration_ms + ' ms × ' + x.repeat + (x.repeat > 1 ? ' every ' + x.interval_s + ' s' : '')), el('td', {}, fmtMs(x.start * 1000) + ' – ' + fmtMs(x.end * 1000)),
      el('td', {}, S.me.can.write ? el('button', { type: 'button', 'data-del-fp': x.id, onclick: del('fingerprint', x.id) }, 'Delete') : ''))));
    if (!f.items.length) fpBody.append(el('tr', {}, el('td', { colspan: 8, class: 'empty' }, 'No fingerprints scheduled.')));
    msgBody.replaceChildren(...g.items.map((x) => el('tr', { 'data-id': x.id }, el('td', { class: 'mono' }, x.id),
      el('td', {}, x.scope === 'group' ? 'package ' + x.group : x.scope === 'individual' ? 'card ' + x.card : 'everybody'),
      el('td', {}, (x.popup ? 'pop-up' : 'scroll') + (x.forced ? ', forced' : '') + ', ' + x.duration_s + ' s'), el('td', { class: 'msgtext' }, x.text), el('td', {}, fmtMs(x.expiry * 1000)),
      el('td', {}, S.me.can.write ? el('button', { type: 'button', 'data-del-msg': x.id, onclick: del('message', x.id) }, 'Delete') : ''))));
    if (!g.items.length) msgBody.append(el('tr', {}, el('td', { colspan: 6, class: 'empty' }, 'No messages.')));
  };
  m.append(el('h1', {}, 'Fingerprints'));
  if (S.me.can.write) {
    const target = el('select', { id: 'fp-target' }, ['service', 'package', 'card'].map((t) => el('option', { value: t }, t)));
    const value = el('input', { id: 'fp-value', inputmode: 'numeric', required: true });
    const show = el('select', { id: 'fp-show' }, ['serial', 'box', 'both'].map((t) => el('option', { value: t }, t)));
    const covert = el('input', { id: 'fp-covert', type: 'checkbox' }), encoded = el('input', { id: 'fp-encoded', type: 'checkbox' });
    const random = el('input', { id: 'fp-random', type: 'checkbox' });
    const x = el('input', { id: 'fp-x', inputmode: 'numeric', value: '5' }), y = el('input', { id: 'fp-y', inputmode: 'numeric', value: '5' });
    const fg = el('input', { id: 'fp-fg', type: 'color', value: '#ffffff' });
    const bg = el('input', { id: 'fp-bg', value: '00000080', size: 9, placeholder: 'RRGGBBAA', title: 'background colour and opacity: 8 hex digits' });
    const font = el('input', { id: 'fp-font', inputmode: 'numeric', value: '24', size: 3 });
    const dur = el('input', { id: 'fp-dur', inputmode: 'numeric', value: '5000' }), rep = el('input', { id: 'fp-rep', inputmode: 'numeric', value: '1' });
    const ivl = el('input', { id: 'fp-ivl', inputmode: 'numeric', value: '0' });
    const start = el('input', { id: 'fp-start', type: 'datetime-local' }), end = el('input', { id: 'fp-end', type: 'datetime-local' });
    const err = formError('fp-error');
    const f = el('form', { class: 'panel row', id: 'fp-form' }, el('label', {}, 'Target', target), el('label', {}, 'Service / package / card', value), el('label', {}, 'Show', show),
      el('label', {}, 'Covert', covert), el('label', {}, 'Encoded', encoded), el('label', {}, 'Random position', random), el('label', {}, 'x %', x), el('label', {}, 'y %', y),
      el('label', {}, 'Colour', fg), el('label', {}, 'Background (RRGGBBAA)', bg), el('label', {}, 'Font (px)', font), el('label', {}, 'Duration (ms)', dur),
      el('label', {}, 'Showings', rep), el('label', {}, 'Every (s)', ivl), el('label', {}, 'From (default now)', start), el('label', {}, 'Until (default a day)', end),
      el('button', { class: 'primary' }, 'Schedule'));
    f.addEventListener('submit', async (ev) => {
      ev.preventDefault(); err.clear();
      /* numbers as typed: the API says which one is wrong (a non-number goes as null) */
      const num = (i) => (/^\s*\d+\s*$/.test(i.value) ? +i.value : i.value.trim() === '' ? null : i.value);
      const b = { target: target.value, value: num(value), show: show.value, covert: covert.checked, encoded: encoded.checked,
        random: random.checked, x_pct: num(x), y_pct: num(y), fg: fg.value, bg: bg.value.trim(), font_px: num(font), duration_ms: num(dur), repeat: num(rep), interval_s: num(ivl) };
      if (start.value) b.start = fromLocalInput(start.value);
      if (end.value) b.end = fromLocalInput(end.value);
      try { await rest('POST', 'fingerprints', b); toast('Fingerprint scheduled'); load(); } catch (e) { if (e.status !== 401) err.show('Not scheduled: ' + e.message); }
    });
    m.append(f, err.p);
  }
  m.append(el('div', { class: 'tablewrap' }, el('table', {}, el('thead', {}, el('tr', {}, ['Id', 'Target', 'What', 'Where', 'Colours', 'How long', 'When', ''].map((h) => el('th', {}, h)))), fpBody)));
  m.append(el('h1', {}, 'Messages'));
  if (S.me.can.write) {
    const scope = el('select', { id: 'msg-scope' }, ['global', 'group', 'individual'].map((t) => el('option', { value: t }, t)));
    const to = el('input', { id: 'msg-to', inputmode: 'numeric', placeholder: 'package or card' });
    const text = el('textarea', { id: 'msg-text', required: true, rows: 3, cols: 60 });
    const count = el('span', { id: 'msg-count', class: 'muted' }, '0 / ' + MSG_MAX_BYTES + ' bytes');
    text.addEventListener('input', () => { const n = utf8Bytes(text.value); count.textContent = n + ' / ' + MSG_MAX_BYTES + ' bytes'; count.className = n > MSG_MAX_BYTES ? 'error' : 'muted'; });
    const popup = el('input', { id: 'msg-popup', type: 'checkbox' }), forced = el('input', { id: 'msg-forced', type: 'checkbox' });
    const dur = el('input', { id: 'msg-dur', inputmode: 'numeric', value: '30' });
    const expiry = el('input', { id: 'msg-expiry', type: 'datetime-local' });
    const err = formError('msg-error');
    const f = el('form', { class: 'panel row', id: 'msg-form' }, el('label', {}, 'To', scope), el('label', {}, 'Package / card', to), el('label', {}, 'Text (UTF-8)', text, count),
      el('label', {}, 'Pop-up', popup), el('label', {}, 'Forced', forced), el('label', {}, 'On screen (s)', dur), el('label', {}, 'Expires (default a week)', expiry), el('button', { class: 'primary' }, 'Send'));
    f.addEventListener('submit', async (ev) => {
      ev.preventDefault(); err.clear();
      const n = utf8Bytes(text.value);
      if (n > MSG_MAX_BYTES) return err.show(`Not sent: the text is ${n} bytes of UTF-8, at most ${MSG_MAX_BYTES} fit (${[...text.value].length} characters).`);
      const b = { scope: scope.value, text: text.value, popup: popup.checked, forced: forced.checked, duration_s: /^\d+$/.test(dur.value) ? +dur.value : dur.value };
      if (scope.value === 'group') b.group = /^\d+$/.test(to.value) ? +to.value : to.value;
      if (scope.value === 'individual') b.card = to.value;
      if (expiry.value) b.expiry = fromLocalInput(expiry.value);
      try { await rest('POST', 'messages', b); toast('Message sent'); text.value = ''; count.textContent = '0 / ' + MSG_MAX_BYTES + ' bytes'; load(); } catch (e) { if (e.status !== 401) err.show('Not sent: ' + e.message); }
    });
    m.append(f, err.p);
  }
  m.append(el('div', { class: 'tablewrap' }, el('table', {}, el('thead', {}, el('tr', {}, ['Id', 'To', 'Style', 'Text', 'Expires', ''].map((h) => el('th', {}, h)))), msgBody)));
  load();
}

/* ---- blacklist and audit reports (docs/audit.md, docs/reports.md) ---------- */
const REPORTS = ['summary', 'subscribers', 'blacklist', 'monthly', 'package-channels', 'active', 'card', 'ageing', 'history'];
function viewCompliance(m) {
  const bl = el('tbody', { id: 'bl-body' });
  const loadBl = async () => {
    let r; try { r = await rest('GET', 'blacklist'); } catch (e) { return fail(e); }
    bl.replaceChildren(...r.items.map((b) => el('tr', {}, el('td', {}, b.kind), el('td', { class: 'mono' }, b.id), el('td', {}, b.reason), el('td', {}, fmtMs(b.at_ms)), el('td', { class: 'mono' }, b.who))));
    if (!r.items.length) bl.append(el('tr', {}, el('td', { colspan: 5, class: 'empty' }, 'Nothing blacklisted.')));
  };
  m.append(el('h1', {}, 'Blacklist'));
  if (S.me.can.write) {
    const kind = el('select', { id: 'bl-kind' }, el('option', { value: 'card' }, 'Card (serial)'), el('option', { value: 'box' }, 'Box (chip id)'));
    const id = el('input', { required: true, id: 'bl-id' }), reason = el('input', { id: 'bl-reason' });
    const err = formError('bl-error');
    const f = el('form', { class: 'panel row', id: 'bl-form' }, el('label', {}, 'Kind', kind), el('label', {}, 'Id', id), el('label', {}, 'Reason', reason), el('button', { class: 'danger' }, 'Blacklist'));
    f.addEventListener('submit', async (ev) => {
      ev.preventDefault(); err.clear();
      if (!(await confirmAction('Blacklist ' + kind.value + ' ' + id.value + '? It is blocked at once and can never be activated or re-deployed; there is no undo.'))) return;
      try { await rest('POST', 'blacklist', { kind: kind.value, id: id.value, reason: reason.value }); toast('Blacklisted'); id.value = ''; reason.value = ''; loadBl(); } catch (e) { if (e.status !== 401) err.show('Not blacklisted: ' + e.message); }
    });
    m.append(f, err.p);
  }
  m.append(el('div', { class: 'tablewrap' }, el('table', {}, el('thead', {}, el('tr', {}, ['Kind', 'Id', 'Reason', 'When', 'Who'].map((h) => el('th', {}, h)))), bl)));
  const name = el('select', { id: 'rep-name' }, REPORTS.map((n) => el('option', { value: n }, n)));
  const params = el('input', { id: 'rep-params', placeholder: 'e.g. package=40&at=1700000000', 'aria-label': 'Parameters' });
  const out = el('div', { class: 'tablewrap', id: 'rep-out' });
  const err = formError('rep-error');
  const run = async () => {
    const q = params.value.replace(/^[?&]+/, '');
    err.clear(); out.replaceChildren();
    let r; try { r = await rest('GET', 'reports/' + encodeURIComponent(name.value) + (q ? '?' + q : '')); } catch (e) { if (e.status !== 401) err.show('Report ' + name.value + ': ' + e.message); return; }
    out.replaceChildren(el('table', { 'data-report': name.value }, el('thead', {}, el('tr', {}, r.columns.map((c) => el('th', {}, c)))),
      el('tbody', {}, r.rows.length ? r.rows.map((row) => el('tr', {}, r.columns.map((c) => el('td', {}, String(row[c] ?? ''))))) : el('tr', {}, el('td', { colspan: r.columns.length, class: 'empty' }, 'No rows.')))));
  };
  const f2 = el('form', { class: 'panel row', id: 'rep-form' }, el('label', {}, 'Report', name), el('label', {}, 'Parameters', params), el('button', { class: 'primary' }, 'Run'));
  f2.addEventListener('submit', (ev) => { ev.preventDefault(); run(); });
  m.append(el('h1', {}, 'Reports'), el('p', { class: 'muted' }, 'Figures at a time come from the audit log (docs/reports.md); the CSV of any report: castellan sms report NAME, or format=csv.'), f2, err.p, out);
  loadBl();
}

/* ---- system (admin): head-end status, generators, key epochs,
 * personalization files, the system log --------------------------------- */
function kv(rows) { return el('table', { class: 'kv' }, el('tbody', {}, rows.map(([k, v]) => el('tr', {}, el('th', {}, k), el('td', { class: 'mono' }, String(v)))))); }
function fmtDur(s) { s = Math.max(0, Math.round(s)); const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), mi = Math.floor(s % 3600 / 60); return (d ? d + ' d ' : '') + h + ' h ' + mi + ' min'; }
async function persoDownload(serial, passphrase) {
  const r = await fetch('/web/api/perso', { method: 'POST', credentials: 'same-origin', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': S.csrf }, body: JSON.stringify({ serial, passphrase }) });
  if (!r.ok) { let b = null; try { b = await r.json(); } catch (e) { /* not JSON */ } throw new ApiError(r.status, b); }
  const blob = await r.blob();
  const a = el('a', { href: URL.createObjectURL(blob), download: 'card-' + serial + '.perso' });
  document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  return blob.size;
}
function viewSystem(m) {
  const status = el('div', { id: 'sys-status' }), gens = el('tbody', { id: 'sys-generators' }), epochs = el('div', { id: 'sys-epochs' }), log = el('pre', { id: 'sys-log', class: 'log', tabindex: '0' });
  const pserial = el('input', { id: 'perso-serial', inputmode: 'numeric', pattern: '[0-9]{1,19}', required: true });
  const ppass = el('input', { id: 'perso-pass', type: 'password', minlength: 10, required: true, autocomplete: 'new-password' });
  const pout = el('p', { id: 'perso-out', role: 'status' });
  const pf = el('form', { class: 'panel' }, el('h2', {}, 'Smartcard personalization'),
    el('p', { class: 'muted' }, 'The card\'s personalization file, sealed under a transport passphrase for the programming tool (docs/smartcard.md).'),
    el('div', { class: 'row' }, el('label', {}, 'Card serial', pserial), el('label', {}, 'Transport passphrase (10+)', ppass), el('button', { class: 'primary' }, 'Create file')), pout);
  pf.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try { const n = await persoDownload(+pserial.value, ppass.value); pout.textContent = `card-${pserial.value}.perso (${n} bytes) downloaded`; ppass.value = ''; } catch (e) { fail(e); }
  });
  let lastSeq = 0;
  const loadLog = async () => {
    let r; try { r = await panel('GET', 'log?after=' + lastSeq); } catch (e) { return fail(e); }
    for (const l of r.items) { log.append(l.line + '\n'); lastSeq = l.seq; }
    log.scrollTop = log.scrollHeight;
  };
  const loadStatus = async () => {
    let r; try { r = await panel('GET', 'status'); } catch (e) { return fail(e); }
    const rows = [['HTTP requests', r.http.requests], ['REST errors', r.http.rest_errors], ['panel sessions', r.web.sessions], ['packages', r.packages]];
    if (r.headend) rows.push(['ECMs sent', r.headend.ecms], ['EMMs sent', r.headend.emms], ['EMMG connected', r.headend.emmg_connected ? 'yes' : 'no'], ['EMMG bandwidth (kbit/s)', r.headend.emmg_kbps], ['carousel cycles', r.headend.cycles]);
    else rows.push(['head-end', 'not on this server (castellan web serve)']);
    status.replaceChildren(kv(rows));
  };
  m.append(el('h1', {}, 'System'),
    el('div', { class: 'panel' }, el('h2', {}, 'Live status'), status),
    el('div', { class: 'panel' }, el('h2', {}, 'ECM / EMM generators'), el('div', { class: 'tablewrap' }, el('table', {}, el('thead', {}, el('tr', {}, ['Kind', 'Name', 'Address', 'CA_system_id', 'client_id', 'kbit/s', 'Enabled'].map((h) => el('th', {}, h)))), gens))),
    el('div', { class: 'panel' }, el('h2', {}, 'Key epochs'), epochs), pf,
    el('div', { class: 'panel' }, el('h2', {}, 'System log (recent lines)'), log));
  loadStatus(); loadLog();
  panel('GET', 'generators').then((r) => {
    for (const g of r.items) gens.append(el('tr', {}, el('td', {}, g.kind.toUpperCase()), el('td', {}, g.name), el('td', { class: 'mono' }, g.address), el('td', { class: 'mono' }, '0x' + g.ca_system_id.toString(16).toUpperCase().padStart(4, '0')), el('td', { class: 'mono' }, g.client_id), el('td', {}, g.bandwidth_kbps || '—'), el('td', {}, g.enabled ? 'yes' : 'no')));
    if (!r.items.length) gens.append(el('tr', {}, el('td', { colspan: 7, class: 'empty' }, 'No generator defined in the store: the head-end uses its command-line addresses.')));
  }).catch(fail);
  panel('GET', 'epochs').then((e) => {
    epochs.replaceChildren(kv([['CA_system_id', '0x' + e.ca_system_id.toString(16).toUpperCase().padStart(4, '0')], ['epoch in force', e.epoch], ['epoch length', fmtDur(e.epoch_seconds)],
      ['began', fmtMs(e.epoch_start_ms)], ['next rotation', fmtMs(e.next_rotation_ms) + ' (in ' + fmtDur((e.next_rotation_ms - e.now_ms) / 1000) + ')'], ['root fingerprint', e.root_fingerprint]]));
  }).catch((e) => { epochs.replaceChildren(el('p', { class: 'muted' }, e.status === 404 ? 'No keystore on this server.' : e.message)); });
  timer = setInterval(() => { loadStatus(); loadLog(); }, 3000);
}

/* ---- KMS (admin, read-only): what lies outside the encrypted state of the
 * KMS directory given with --kms-dir (GET /web/api/kms) ------------------ */
async function viewKms(m) {
  m.append(el('h1', {}, 'KMS'));
  let k;
  try { k = await panel('GET', 'kms'); } catch (e) {
    m.append(el('p', { id: 'kms-none', class: 'empty' }, e.status === 404 ? 'No KMS directory on this server (start it with --kms-dir DIR).' : e.message));
    return fail(e);
  }
  const table = (id, heads, rows, empty) => el('div', { class: 'tablewrap' }, el('table', { id }, el('thead', {}, el('tr', {}, heads.map((h) => el('th', {}, h)))),
    el('tbody', {}, rows.length ? rows : el('tr', {}, el('td', { colspan: heads.length, class: 'empty' }, empty)))));
  const a = k.audit;
  const chain = a.present ? (a.chain_ok ? el('span', { id: 'kms-chain', class: 'badge active' }, 'chain verified')
    : el('span', { id: 'kms-chain', class: 'badge blocked' }, 'chain broken' + (a.bad_line ? ' at line ' + a.bad_line : '') + ': ' + a.chain)) : el('span', { id: 'kms-chain', class: 'badge' }, 'no audit log');
  m.append(el('p', { id: 'kms-sealed', class: 'panel muted' }, k.sealed),
    el('div', { class: 'panel' }, kv([['directory', k.dir], ['master key', k.master], ['chip orders', k.orders.length], ['chips', k.chips_total], ['audit entries', a.entries]])),
    el('div', { class: 'panel' }, el('h2', {}, 'Chip orders'), table('kms-orders', ['File', 'Order', 'Chips', 'First chip', 'Last chip', 'Written'],
      k.orders.map((o) => o.error ? el('tr', {}, el('td', { class: 'mono' }, o.file), el('td', { colspan: 5 }, el('span', { class: 'badge blocked' }, o.error)))
        : el('tr', {}, el('td', { class: 'mono' }, o.file), el('td', {}, o.order), el('td', {}, o.chips), el('td', { class: 'mono' }, o.first_chip), el('td', { class: 'mono' }, o.last_chip), el('td', {}, fmtTime(o.mtime_s)))), 'No chip order imported yet.'),
      k.orders_skipped.length ? el('p', { class: 'muted' }, 'Not order files, not shown: ' + k.orders_skipped.join(', ')) : null),
    el('div', { class: 'panel' }, el('h2', {}, 'Vendors (from the audit log)'), table('kms-vendors', ['Id', 'Public key fingerprint', 'Added', 'State'],
      k.vendors.map((v) => el('tr', {}, el('td', { class: 'mono' }, v.id), el('td', { class: 'mono' }, v.pub_fingerprint), el('td', {}, fmtTime(v.added_s)),
        el('td', {}, v.revoked ? el('span', { class: 'badge blocked' }, 'revoked ' + fmtTime(v.revoked_s)) : el('span', { class: 'badge active' }, 'active')))), 'No vendor registered.')),
    el('div', { class: 'panel' }, el('h2', {}, 'Operator certificates (from the audit log)'), table('kms-certs', ['Serial', 'Name', 'Days', 'Certified', 'Revoked'],
      k.certificates.map((c) => el('tr', {}, el('td', { class: 'mono' }, c.serial), el('td', {}, c.name || ''), el('td', {}, c.days || ''), el('td', {}, fmtTime(c.certified_s)), el('td', {}, c.revoked_s ? fmtTime(c.revoked_s) : '—'))), 'No operator certificate yet.'),
      el('h2', {}, 'CRL (crl.bin)'), el('div', { id: 'kms-crl' }, !k.crl ? el('p', { class: 'muted' }, 'No CRL.') : k.crl.error ? el('p', {}, el('span', { class: 'badge blocked' }, k.crl.error))
        : kv([['number', k.crl.number], ['created', fmtTime(k.crl.created_s)], ['revoked serials', k.crl.serials.join(', ') || '—'], ['issuer (SHA-256 of the TA key)', k.crl.issuer_hash], ['signature', 'not checked here (the TA key is in the sealed state)']]))),
    el('div', { class: 'panel' }, el('h2', {}, 'Signed modules (from the audit log)'), table('kms-modules', ['Signed', 'Vendor', 'Version', 'Rollback', 'Certificate', 'Bytes', 'SHA-256 (first 8 bytes)'],
      k.modules.map((x) => el('tr', {}, el('td', {}, fmtTime(x.signed_s)), el('td', { class: 'mono' }, x.vendor), el('td', {}, x.version), el('td', {}, x.rollback), el('td', { class: 'mono' }, x.cert), el('td', {}, x.bytes), el('td', { class: 'mono' }, x.sha256))), 'No module signed.')),
    el('div', { class: 'panel' }, el('div', { class: 'row' }, el('h2', {}, 'KMS audit log'), chain),
      el('p', { class: 'muted' }, 'Hash chain checked here; truncation (the anchor in the sealed state) only by castellan kms audit verify with the passphrase.' + (a.entries > a.lines.length ? ` Newest ${a.lines.length} of ${a.entries} entries.` : '')),
      table('kms-audit', ['#', 'When', 'Event'], a.lines.slice().reverse().map((l) => el('tr', {}, el('td', { class: 'mono' }, l.seq), el('td', {}, fmtTime(l.at_s)), el('td', { class: 'mono' }, l.event))), 'The audit log is empty.')));
}

/* ---- start -------------------------------------------------------------- */
function initTz() {
  const sel = $('tz'); const here = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const zones = (Intl.supportedValuesOf ? Intl.supportedValuesOf('timeZone') : [here]);
  sel.append(el('option', { value: '' }, 'Browser (' + here + ')'), ...zones.map((z) => el('option', { value: z, selected: z === S.tz }, z)));
  sel.addEventListener('change', () => { S.tz = sel.value; localStorage.setItem('castellan.tz', S.tz); route(); });
}
document.addEventListener('DOMContentLoaded', async () => {
  $('signin-form').addEventListener('submit', signin);
  $('signout').addEventListener('click', signout);
  window.addEventListener('hashchange', route);
  initTz();
  try { started(await panel('GET', 'session')); } catch (e) { showSignin(); }
});
