// panel_osd.test.mjs - browser test of the web panel's "Fingerprints &
// messages" and "Blacklist & reports" views (issue 13, docs/compliance.md
// A.9, A.11, B.7, C.4) in headless Debian chromium (playwright-core),
// against a real `castellan headend` on SQLite and, when the PostgreSQL
// server binaries are installed, on a throwaway PostgreSQL cluster (unix
// socket only, as tests/pgtest.h).
//
//   node panel_osd.test.mjs [ARTEFACT_DIR]
//
// Per backend: admin schedules a card fingerprint (overt, both ids,
// position, colours, font, repetition) and a 150-character UTF-8 forced
// pop-up message from the panel; the REST API returns exactly those values
// and the audit log has fingerprint.add / message.add; one of each deleted
// from the panel (gone from REST, fingerprint.delete / message.delete
// logged); a too long message, a malformed colour and x > 100 each show a
// clear error in the form and change nothing; a card and a box are
// blacklisted from the panel, then activating the card (panel and REST),
// re-deploying the box to another card and re-adding are refused; the
// summary and blacklist reports run in the panel show REST's figures
// (and the figures the cards made). A read-only user sees both views
// without their forms and is refused (403) if it posts anyway; an operator
// schedules and blacklists. Exit 77 without chromium or node_modules.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const here = dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const BIN = process.env.CASTELLAN_BIN;
if (!existsSync(CHROMIUM) || !existsSync(join(here, 'node_modules', 'playwright-core'))) {
  console.log('SKIP: needs ' + CHROMIUM + ' (apt-get install chromium) and tests/web/node_modules (npm ci in tests/web)');
  process.exit(77);
}
if (!BIN || !existsSync(BIN)) { console.log('SKIP: CASTELLAN_BIN not set'); process.exit(77); }
const { chromium } = createRequire(import.meta.url)('playwright-core');

const out = join(process.argv[2] || join(here, 'artefacts'), 'screenshots');
mkdirSync(out, { recursive: true });
const top = mkdtempSync(join(tmpdir(), 'castellan-panel-osd-'));
chmodSync(top, 0o755); // the PostgreSQL server (user postgres when we are root) reaches its folder
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let npass = 0;
function check(cond, what) {
  if (!cond) throw new Error('check failed: ' + what);
  npass++;
  console.log('ok - ' + what);
}
function run(args, env) {
  return new Promise((resolve) => {
    const p = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ? { ...process.env, ...env } : process.env });
    let log = ''; p.stdout.on('data', (d) => { log += d; }); p.stderr.on('data', (d) => { log += d; });
    p.on('close', (code) => resolve({ code, log }));
  });
}

/* ---- a throwaway PostgreSQL cluster (tests/pgtest.h in JavaScript) ------- */
function freePort() {
  return new Promise((resolve) => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); }); });
}
async function startPg() {
  let bin = process.env.CASTELLAN_PG_BINDIR;
  if (!bin && existsSync('/usr/lib/postgresql')) {
    const v = readdirSync('/usr/lib/postgresql').filter((d) => /^\d+$/.test(d) && existsSync(`/usr/lib/postgresql/${d}/bin/initdb`)).map(Number).sort((a, b) => b - a);
    if (v.length) bin = `/usr/lib/postgresql/${v[0]}/bin`;
  }
  if (!bin) return null;
  const root = userInfo().uid === 0;
  const as = (cmd, args) => (root ? spawnSync('runuser', ['-u', 'postgres', '--', cmd, ...args], { encoding: 'utf8' }) : spawnSync(cmd, args, { encoding: 'utf8' }));
  const dir = join(top, 'pg');
  mkdirSync(dir);
  if (root) {
    const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
    if (id.status !== 0) return null;
    chownSync(dir, Number(id.stdout), Number(gid.stdout));
  }
  const port = await freePort();
  let r = as(bin + '/initdb', ['-D', dir + '/data', '-A', 'trust', '-U', 'castellan', '-E', 'UTF8', '--no-sync']);
  if (r.status !== 0) throw new Error('initdb: ' + r.stderr);
  r = as(bin + '/pg_ctl', ['-D', dir + '/data', '-l', dir + '/server.log', '-w', '-t', '60', '-o', `-p ${port} -k ${dir} -c listen_addresses='' -c fsync=off`, 'start']);
  if (r.status !== 0) throw new Error('pg_ctl start: ' + r.stderr + (existsSync(dir + '/server.log') ? readFileSync(dir + '/server.log', 'utf8') : ''));
  const pg = { bin, dir, port, n: 0, as };
  pg.newDb = () => {
    const name = 'panel' + (++pg.n);
    const c = spawnSync('psql', ['-X', '-q', '-h', dir, '-p', String(port), '-U', 'castellan', '-d', 'postgres', '-c', 'CREATE DATABASE ' + name], { encoding: 'utf8' });
    if (c.status !== 0) throw new Error('createdb: ' + c.stderr);
    return `postgres:host=${dir} port=${port} dbname=${name} user=castellan`;
  };
  pg.stop = () => as(bin + '/pg_ctl', ['-D', dir + '/data', '-m', 'immediate', '-w', 'stop']);
  return pg;
}

/* ---- a head-end serving the panel on one backend ------------------------- */
async function startHeadend(dir, dbUri, pw) {
  writeFileSync(join(dir, 'pw'), pw + '\n');
  writeFileSync(join(dir, 'pass'), 'keystore-passphrase-1\n', { mode: 0o600 });
  const k = await run(['keys', 'init', '--out', join(dir, 'ks'), '--ca-system-id', '0x4ADC', '--passphrase-file', join(dir, 'pass')]);
  if (k.code !== 0) throw new Error('keys init: ' + k.log);
  const ready = join(dir, 'ready');
  const args = ['headend', '--data-dir', join(dir, 'data'), '--keystore', join(dir, 'ks'), '--passphrase-file', join(dir, 'pass'),
    '--http', '127.0.0.1:0', '--ecmg', '127.0.0.1:0', '--admin-key-file', join(dir, 'admin-key'),
    '--web-root', join(here, '..', '..', 'web'), '--web-admin-password-file', join(dir, 'pw'), '--ready-file', ready, '--status-every', '0'];
  if (dbUri) args.push('--db', dbUri);
  const server = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  server.log = '';
  server.stdout.on('data', (d) => { server.log += d; });
  server.stderr.on('data', (d) => { server.log += d; });
  for (let i = 0; i < 300; i++) {
    if (existsSync(ready)) {
      const m = /http=(\d+)/.exec(readFileSync(ready, 'utf8'));
      if (m) return { server, port: Number(m[1]) };
    }
    if (server.exitCode !== null) break;
    await sleep(100);
  }
  server.kill('SIGTERM');
  throw new Error('head-end did not start:\n' + server.log);
}
async function stopHeadend(server) {
  if (server.exitCode !== null) return server.exitCode;
  const done = new Promise((r) => server.on('exit', (code) => r(code)));
  server.kill('SIGTERM');
  return Promise.race([done, sleep(20000).then(() => 'timeout')]);
}

/* The REST API and the panel API from inside the page, with the session's
 * CSRF token (what the panel's own code sends). */
async function call(page, method, path, body) {
  return page.evaluate(async ([method, path, body]) => {
    const csrf = (await (await fetch('/web/api/session')).json()).csrf;
    const h = { 'X-CSRF-Token': csrf };
    if (body !== undefined) h['Content-Type'] = 'application/json';
    const r = await fetch(path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
    const t = await r.text();
    let j = null; try { j = JSON.parse(t); } catch (e) { /* not JSON */ }
    return { status: r.status, body: j, text: t };
  }, [method, path, body]);
}
async function signIn(page, base, user, pw) {
  await page.goto(base + '/');
  await page.waitForSelector('#signin-form');
  await page.fill('#signin-user', user);
  await page.fill('#signin-password', pw);
  await page.press('#signin-password', 'Enter');
  await page.waitForSelector('#app:not([hidden])');
}
async function signOut(page) {
  await page.click('#signout');
  await page.waitForSelector('#signin:not([hidden])');
}
async function confirmDialog(page) {
  await page.waitForSelector('dialog#confirm[open]');
  await page.click('#confirm-ok');
}
/* The audit chain's entries of one action, read as an auditor does
 * (`castellan audit export`, while the head-end runs). */
async function auditOf(dbUri, action) {
  const r = await run(['audit', '--db', dbUri, 'export', '--format', 'json']);
  if (r.code !== 0) throw new Error('audit export: ' + r.log);
  return JSON.parse(r.log).entries.filter((e) => e.action === action);
}
/* Reads the report table the panel drew: {columns, rows: [{col: text}]} */
async function panelReport(page) {
  return page.evaluate(() => {
    const t = document.querySelector('#rep-out table');
    const columns = [...t.querySelectorAll('thead th')].map((th) => th.textContent);
    const rows = [...t.querySelectorAll('tbody tr')].filter((tr) => !tr.querySelector('td.empty'))
      .map((tr) => Object.fromEntries([...tr.querySelectorAll('td')].map((td, i) => [columns[i], td.textContent])));
    return { columns, rows };
  });
}

const SER = { fp: '2100000101', bl: '2100000102', boxA: '2100000103', boxB: '2100000104', blocked: '2100000105', retired: '2100000106', spare: '2100000107' };
const CHIP = '0x0000ca57e11a0077', CHIP2 = '0x0000ca57e11a0078';
// 150 characters, 4 scripts and an emoji: 2-, 3- and 4-byte UTF-8 sequences
const MSG = [...('Räumung 02:00–03:00 · Обслуживание сети · 网络维护今晚进行 · صيانة الشبكة الليلة 📡 ' +
  'Service interruption tonight, please keep your box switched on. Merci beaucoup!')].slice(0, 150).join('');

async function scenario(browser, label, pgUri) {
  const dir = join(top, label);
  mkdirSync(dir);
  const dbUri = pgUri || 'sqlite:' + join(dir, 'sms.db');
  const PW = 'first-admin-pw-' + Math.random().toString(36).slice(2);
  const { server, port } = await startHeadend(dir, dbUri, PW);
  const base = `http://127.0.0.1:${port}`;
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, timezoneId: 'UTC' });
  ctx.setDefaultTimeout(15000);
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error' && !/40[0-9]|423/.test(m.text())) errors.push(m.text()); });
  const t = (s) => `[${label}] ${s}`;
  try {
    await signIn(page, base, 'admin', PW);
    // the cards the views work on (REST, as a billing system would)
    const now = Math.floor(Date.now() / 1000);
    const mk = async (serial, extra) => {
      const r = await call(page, 'POST', '/api/v1/cards', { serial_no: serial, start: now - 3600, finish: now + 30 * 86400, ...extra });
      if (r.status !== 201) throw new Error('card ' + serial + ': ' + r.text);
      const s = await call(page, 'POST', '/api/v1/subscriptions', { serial_no: serial, package: 3, start: now - 3600, finish: now + 30 * 86400 });
      if (s.status !== 200 && s.status !== 201) throw new Error('subscription ' + serial + ': ' + s.text);
    };
    await mk(SER.fp, { name: 'Ann Example' });
    await mk(SER.bl, {});
    await mk(SER.boxA, { chip_id: CHIP, pair: true });
    await mk(SER.boxB, { chip_id: CHIP, pair: true });
    await mk(SER.blocked, { state: 'blocked' });
    await mk(SER.retired, { state: 'retired' });
    await mk(SER.spare, { chip_id: CHIP2 });
    for (const s of [SER.blocked, SER.retired]) {
      const r = await call(page, 'PATCH', '/api/v1/cards/' + s, { state: s === SER.blocked ? 'blocked' : 'retired' });
      if (r.status !== 200) throw new Error('state ' + s + ': ' + r.text);
    }
    check(true, t('7 cards made through REST'));

    /* ---- fingerprints ---------------------------------------------------- */
    await page.goto(base + '/#/osd');
    await page.waitForSelector('#fp-form');
    await page.selectOption('#fp-target', 'card');
    await page.fill('#fp-value', SER.fp);
    await page.selectOption('#fp-show', 'both');
    await page.fill('#fp-x', '12');
    await page.fill('#fp-y', '80');
    await page.fill('#fp-fg', '#ffff00');
    await page.fill('#fp-bg', '000000C0');
    await page.fill('#fp-font', '32');
    await page.fill('#fp-dur', '4000');
    await page.fill('#fp-rep', '3');
    await page.fill('#fp-ivl', '600');
    await page.fill('#fp-start', '2030-01-02T03:04');
    await page.fill('#fp-end', '2030-01-03T03:04');
    await page.click('#fp-form button.primary');
    await page.waitForSelector('#fp-body tr[data-id]');
    let fps = (await call(page, 'GET', '/api/v1/fingerprints')).body.items;
    check(fps.length === 1, t('one fingerprint scheduled from the panel'));
    const fp = fps[0];
    const want = { target: 'card', value: Number(SER.fp), show: 'both', covert: false, encoded: false, random: false, x_pct: 12, y_pct: 80,
      fg: '#FFFF00', bg: '#000000C0', font_px: 32, duration_ms: 4000, repeat: 3, interval_s: 600, start: 1893553440, end: 1893639840 };
    const diff = Object.entries(want).filter(([k, v]) => fp[k] !== v).map(([k, v]) => `${k}: ${JSON.stringify(fp[k])} != ${JSON.stringify(v)}`);
    check(diff.length === 0, t('REST returns exactly what the form set (overt, both ids, 12%/80%, #FFFF00 on #000000C0, 32 px, 4000 ms x3 every 600 s, 2030-01-02 03:04 UTC for a day)' + (diff.length ? ': ' + diff.join('; ') : '')));
    const rowText = await page.textContent(`#fp-body tr[data-id="${fp.id}"]`);
    check(rowText.includes('card ' + SER.fp) && rowText.includes('12%, 80%') && rowText.includes('#FFFF00 on #000000C0'), t('the panel lists it with its position and colours'));
    // a second one (service, random, covert) to delete later
    await page.selectOption('#fp-target', 'service');
    await page.fill('#fp-value', '101');
    await page.check('#fp-covert');
    await page.check('#fp-random');
    await page.fill('#fp-dur', '200');
    await page.fill('#fp-start', '');
    await page.fill('#fp-end', '');
    await page.click('#fp-form button.primary');
    await page.waitForFunction(() => document.querySelectorAll('#fp-body tr[data-id]').length === 2);
    fps = (await call(page, 'GET', '/api/v1/fingerprints')).body.items;
    const fp2 = fps.find((x) => x.id !== fp.id);
    check(fp2 && fp2.target === 'service' && fp2.value === 101 && fp2.covert && fp2.random && fp2.duration_ms === 200, t('a covert random service fingerprint scheduled too'));
    await page.screenshot({ path: join(out, `osd-${label}.png`), fullPage: true });

    /* bad values: a clear error in the form, nothing changes */
    const before = JSON.stringify(fps);
    await page.uncheck('#fp-covert');
    await page.uncheck('#fp-random');
    await page.fill('#fp-dur', '4000');
    await page.fill('#fp-bg', '#12345');
    await page.click('#fp-form button.primary');
    await page.waitForSelector('#fp-error:not([hidden])');
    let msgTxt = await page.textContent('#fp-error');
    check(/bg/.test(msgTxt) && /#RRGGBBAA/.test(msgTxt) && /8 hex digits/.test(msgTxt), t('a malformed background colour: "' + msgTxt + '"'));
    await page.fill('#fp-bg', '000000C0');
    await page.fill('#fp-x', '150');
    await page.click('#fp-form button.primary');
    await page.waitForFunction(() => /x_pct/.test(document.getElementById('fp-error').textContent));
    msgTxt = await page.textContent('#fp-error');
    check(/0\.\.100/.test(msgTxt), t('x = 150 %: "' + msgTxt + '"'));
    await page.fill('#fp-x', '12');
    await page.fill('#fp-value', 'abc');
    await page.click('#fp-form button.primary');
    await page.waitForFunction(() => /value/.test(document.getElementById('fp-error').textContent));
    check(true, t('a non-numeric target: "' + (await page.textContent('#fp-error')) + '"'));
    await page.screenshot({ path: join(out, `osd-error-${label}.png`) });
    check(JSON.stringify((await call(page, 'GET', '/api/v1/fingerprints')).body.items) === before, t('the refused fingerprints changed nothing'));

    /* ---- messages ---------------------------------------------------------- */
    check([...MSG].length === 150 && new TextEncoder().encode(MSG).length > 200, t(`the message: ${[...MSG].length} characters, ${new TextEncoder().encode(MSG).length} bytes of UTF-8`));
    await page.selectOption('#msg-scope', 'individual');
    await page.fill('#msg-to', SER.fp);
    await page.fill('#msg-text', MSG);
    check((await page.textContent('#msg-count')).startsWith(new TextEncoder().encode(MSG).length + ' / 720'), t('the form counts the bytes'));
    await page.check('#msg-forced');
    await page.check('#msg-popup');
    await page.fill('#msg-dur', '45');
    await page.fill('#msg-expiry', '2030-02-01T00:00');
    await page.click('#msg-form button.primary');
    await page.waitForSelector('#msg-body tr[data-id]');
    let msgs = (await call(page, 'GET', '/api/v1/messages')).body.items;
    check(msgs.length === 1, t('one message sent from the panel'));
    const msg = msgs[0];
    check(msg.text === MSG, t('REST returns the text byte for byte'));
    check(msg.scope === 'individual' && msg.card === Number(SER.fp) && msg.forced === true && msg.popup === true && msg.duration_s === 45 && msg.expiry === 1896134400,
      t('individual to the card, forced pop-up, 45 s, expires 2030-02-01 00:00 UTC'));
    check((await page.textContent(`#msg-body tr[data-id="${msg.id}"] td.msgtext`)) === MSG, t('the panel shows the text as sent'));
    // a global scroll one, to delete
    await page.selectOption('#msg-scope', 'global');
    await page.fill('#msg-text', 'Maintenance tonight');
    await page.uncheck('#msg-forced');
    await page.uncheck('#msg-popup');
    await page.fill('#msg-expiry', '');
    await page.click('#msg-form button.primary');
    await page.waitForFunction(() => document.querySelectorAll('#msg-body tr[data-id]').length === 2);
    msgs = (await call(page, 'GET', '/api/v1/messages')).body.items;
    const msg2 = msgs.find((x) => x.id !== msg.id);
    check(msg2 && msg2.scope === 'global' && !msg2.forced && msg2.text === 'Maintenance tonight', t('a global message sent too'));

    /* too long (721+ bytes): a clear error, nothing sent */
    const long = 'Ж'.repeat(361); // 361 characters, 722 bytes
    const mbefore = JSON.stringify(msgs);
    await page.fill('#msg-text', long);
    check(await page.$eval('#msg-count', (e) => e.className === 'error'), t('the byte counter turns red over 720 bytes'));
    await page.click('#msg-form button.primary');
    await page.waitForSelector('#msg-error:not([hidden])');
    msgTxt = await page.textContent('#msg-error');
    check(/722 bytes/.test(msgTxt) && /at most 720/.test(msgTxt), t('a 722-byte message: "' + msgTxt + '"'));
    // and the API refuses it on its own (a client without the panel's check)
    const apiLong = await call(page, 'POST', '/api/v1/messages', { scope: 'global', text: long });
    check(apiLong.status === 400 && /720 bytes/.test(apiLong.body.error.message), t('REST refuses 722 bytes too (400: "' + apiLong.body.error.message + '")'));
    await page.fill('#msg-text', 'Bad group');
    await page.selectOption('#msg-scope', 'group');
    await page.fill('#msg-to', '99');
    await page.click('#msg-form button.primary');
    await page.waitForFunction(() => /group/.test(document.getElementById('msg-error').textContent));
    check(/0\.\.31/.test(await page.textContent('#msg-error')), t('group 99: "' + (await page.textContent('#msg-error')) + '"'));
    check(JSON.stringify((await call(page, 'GET', '/api/v1/messages')).body.items) === mbefore, t('the refused messages changed nothing'));

    /* delete one of each from the panel */
    await page.click(`button[data-del-fp="${fp2.id}"]`);
    await confirmDialog(page);
    await page.waitForFunction((id) => !document.querySelector(`#fp-body tr[data-id="${id}"]`), fp2.id);
    await page.click(`button[data-del-msg="${msg2.id}"]`);
    await confirmDialog(page);
    await page.waitForFunction((id) => !document.querySelector(`#msg-body tr[data-id="${id}"]`), msg2.id);
    fps = (await call(page, 'GET', '/api/v1/fingerprints')).body.items;
    msgs = (await call(page, 'GET', '/api/v1/messages')).body.items;
    check(fps.length === 1 && fps[0].id === fp.id && msgs.length === 1 && msgs[0].id === msg.id, t('deleted from the panel: REST has only the first fingerprint and message'));

    /* the audit log */
    const a1 = await auditOf(dbUri, 'fingerprint.add'), a2 = await auditOf(dbUri, 'message.add');
    const a3 = await auditOf(dbUri, 'fingerprint.delete'), a4 = await auditOf(dbUri, 'message.delete');
    check(a1.length === 2 && a1.every((a) => a.who === 'web:admin'), t('audit: 2 fingerprint.add by web:admin'));
    check(a2.length === 2 && a2.every((a) => a.who === 'web:admin'), t('audit: 2 message.add by web:admin'));
    check(a3.length === 1 && a3[0].object === 'fingerprint:' + fp2.id && a4.length === 1 && a4[0].object === 'message:' + msg2.id, t('audit: fingerprint.delete and message.delete of the deleted ones'));
    check(a1.some((a) => a.details.includes('card ' + SER.fp) && a.details.includes('pos 12,80')), t('the fingerprint.add entry names the card and the position'));
    // the panel's audit view shows them too (admin)
    await page.goto(base + '/#/audit');
    await page.waitForSelector(`td:text("fingerprint ${fp.id} card ${SER.fp}")`);
    check(true, t('the panel\'s audit log view lists the fingerprint by web:admin'));

    /* ---- blacklist ------------------------------------------------------- */
    await page.goto(base + '/#/compliance');
    await page.waitForSelector('#bl-form');
    await page.selectOption('#bl-kind', 'card');
    await page.fill('#bl-id', SER.bl);
    await page.fill('#bl-reason', 'card sharing server');
    await page.click('#bl-form button.danger');
    await confirmDialog(page);
    await page.waitForSelector(`#bl-body td:text-is("${SER.bl}")`);
    await page.selectOption('#bl-kind', 'box');
    await page.fill('#bl-id', CHIP);
    await page.fill('#bl-reason', 'cloned box');
    await page.click('#bl-form button.danger');
    await confirmDialog(page);
    await page.waitForSelector(`#bl-body td:text-is("${CHIP}")`);
    const bl = (await call(page, 'GET', '/api/v1/blacklist')).body.items;
    check(bl.length === 2 && bl.some((b) => b.kind === 'card' && b.id === SER.bl && b.reason === 'card sharing server' && b.who === 'web:admin')
      && bl.some((b) => b.kind === 'box' && b.id === CHIP && b.reason === 'cloned box'), t('REST lists the card and the box blacklisted by web:admin'));
    for (const s of [SER.bl, SER.boxA, SER.boxB])
      check((await call(page, 'GET', '/api/v1/cards/' + s)).body.state === 'blocked', t(`card ${s} blocked at once`));
    // listing it twice: the panel says so, the list is unchanged
    await page.selectOption('#bl-kind', 'card');
    await page.fill('#bl-id', SER.bl);
    await page.click('#bl-form button.danger');
    await confirmDialog(page);
    await page.waitForSelector('#bl-error:not([hidden])');
    check(/already/.test(await page.textContent('#bl-error')), t('blacklisting it again: "' + (await page.textContent('#bl-error')) + '"'));
    check((await call(page, 'GET', '/api/v1/blacklist')).body.items.length === 2, t('still 2 entries'));
    await page.screenshot({ path: join(out, `blacklist-${label}.png`), fullPage: true });

    // activation refused: from the card page (Unblock) and through REST
    for (const s of [SER.bl, SER.boxA]) {
      await page.goto(base + '/#/cards/' + s);
      await page.waitForSelector('#card-block');
      await page.click('#card-block');
      await confirmDialog(page);
      await page.waitForSelector('#toast div.bad');
      const toastTxt = await page.textContent('#toast div.bad');
      check(/blacklisted/.test(toastTxt), t(`unblocking ${s} from the panel refused: "${toastTxt}"`));
      await page.evaluate(() => document.getElementById('toast').replaceChildren());
      const p = await call(page, 'PATCH', '/api/v1/cards/' + s, { state: 'active' });
      check(p.status === 409 && p.body.error.code === 'blacklisted', t(`PATCH ${s} state=active: 409 blacklisted`));
      check((await call(page, 'GET', '/api/v1/cards/' + s)).body.state === 'blocked', t(`${s} still blocked`));
    }
    const redeploy = await call(page, 'PATCH', '/api/v1/cards/' + SER.spare, { chip_id: CHIP });
    check(redeploy.status === 409 && redeploy.body.error.code === 'blacklisted', t('re-deploying the blacklisted box with another card: 409'));
    const readd = await call(page, 'POST', '/api/v1/cards', { serial_no: '2100000199', chip_id: CHIP });
    check(readd.status === 409, t('a new card in the blacklisted box: 409'));
    const sub = await call(page, 'POST', '/api/v1/subscriptions', { serial_no: SER.bl, package: 4, start: now, finish: now + 86400 });
    check(sub.status === 409, t('a new subscription for the blacklisted card: 409'));

    /* ---- reports ------------------------------------------------------------ */
    await page.goto(base + '/#/compliance');
    await page.selectOption('#rep-name', 'summary');
    await page.click('#rep-form button.primary');
    await page.waitForSelector('#rep-out table[data-report="summary"]');
    const pSum = await panelReport(page);
    const rSum = (await call(page, 'GET', '/api/v1/reports/summary')).body;
    const restRows = rSum.rows.map((row) => Object.fromEntries(rSum.columns.map((c) => [c, String(row[c] ?? '')])));
    check(JSON.stringify(pSum.columns) === JSON.stringify(rSum.columns) && JSON.stringify(pSum.rows) === JSON.stringify(restRows),
      t('summary: the panel shows REST\'s table (' + JSON.stringify(pSum.rows) + ')'));
    // the figures the cards made: 7 registered; 1 active (the fingerprint's,
    // with the spare in another box: 2); 1 suspended; 1 deactivated; 3 blacklisted
    const fig = {};
    for (const row of rSum.rows) fig[row[rSum.columns[0]]] = Number(row[rSum.columns[1]]);
    check(fig.registered === 7 && fig.active === 2 && fig.suspended === 1 && fig.deactivated === 1 && fig.blacklisted === 3,
      t('summary figures: registered 7, active 2, suspended 1, deactivated 1, blacklisted 3 (' + JSON.stringify(fig) + ')'));
    await page.selectOption('#rep-name', 'blacklist');
    await page.click('#rep-form button.primary');
    await page.waitForSelector('#rep-out table[data-report="blacklist"]');
    const pBl = await panelReport(page);
    const rBl = (await call(page, 'GET', '/api/v1/reports/blacklist')).body;
    const rBlRows = rBl.rows.map((row) => Object.fromEntries(rBl.columns.map((c) => [c, String(row[c] ?? '')])));
    check(JSON.stringify(pBl.rows) === JSON.stringify(rBlRows) && pBl.rows.length === 2, t('blacklist report: the panel shows REST\'s 2 rows'));
    await page.screenshot({ path: join(out, `reports-${label}.png`), fullPage: true });
    // a report at a time before anything was blacklisted (params field)
    await page.fill('#rep-params', 'at=' + (now - 7200));
    await page.click('#rep-form button.primary');
    await page.waitForFunction(() => document.querySelector('#rep-out td.empty'));
    check(true, t('the blacklist report at an earlier time is empty'));
    await page.selectOption('#rep-name', 'summary');
    await page.fill('#rep-params', 'at=yesterday');
    await page.click('#rep-form button.primary');
    await page.waitForSelector('#rep-error:not([hidden])');
    check(/at/.test(await page.textContent('#rep-error')), t('a bad report parameter: "' + (await page.textContent('#rep-error')) + '"'));

    /* ---- roles -------------------------------------------------------------- */
    for (const [name, role] of [['rita', 'read-only'], ['olga', 'operator']]) {
      const r = await call(page, 'POST', '/web/api/users', { name, password: name + '-password-1', role });
      if (r.status < 200 || r.status > 299) throw new Error('user ' + name + ': ' + r.status + ' ' + r.text);
    }
    await signOut(page);
    await signIn(page, base, 'rita', 'rita-password-1');
    check(!!(await page.$('nav a[data-view="osd"]')) && !!(await page.$('nav a[data-view="compliance"]')), t('read-only: both views in the menu'));
    await page.goto(base + '/#/osd');
    await page.waitForSelector(`#fp-body tr[data-id="${fp.id}"]`);
    check(!(await page.$('#fp-form')) && !(await page.$('#msg-form')) && !(await page.$('button[data-del-fp]')), t('read-only: lists, no forms, no delete buttons'));
    await page.goto(base + '/#/compliance');
    await page.waitForSelector(`#bl-body td:text-is("${CHIP}")`);
    check(!(await page.$('#bl-form')) && !!(await page.$('#rep-form')), t('read-only: blacklist listed without its form; reports run'));
    const roPosts = [await call(page, 'POST', '/api/v1/fingerprints', { target: 'service', value: 101 }), await call(page, 'POST', '/api/v1/messages', { scope: 'global', text: 'x' }),
      await call(page, 'POST', '/api/v1/blacklist', { kind: 'card', id: SER.fp }), await call(page, 'DELETE', '/api/v1/messages/' + msg.id)];
    check(roPosts.every((r) => r.status === 403), t('read-only: POST fingerprint/message/blacklist and DELETE refused (403)'));
    await signOut(page);
    await signIn(page, base, 'olga', 'olga-password-1');
    await page.goto(base + '/#/osd');
    await page.waitForSelector('#msg-form');
    await page.selectOption('#msg-scope', 'group');
    await page.fill('#msg-to', '3');
    await page.fill('#msg-text', 'Sport+: new channel on 105');
    await page.click('#msg-form button.primary');
    await page.waitForFunction(() => document.querySelectorAll('#msg-body tr[data-id]').length === 2);
    await page.goto(base + '/#/compliance');
    await page.waitForSelector('#bl-form');
    await page.selectOption('#bl-kind', 'card');
    await page.fill('#bl-id', SER.spare);
    await page.click('#bl-form button.danger');
    await confirmDialog(page);
    await page.waitForSelector(`#bl-body td:text-is("${SER.spare}")`);
    const olgaAudit = (await call(page, 'GET', '/api/v1/blacklist')).body.items.find((b) => b.id === SER.spare);
    check(olgaAudit && olgaAudit.who === 'web:olga', t('operator: sends a group message and blacklists a card (who = web:olga)'));
    check(errors.length === 0, t('no script errors in the page' + (errors.length ? ': ' + errors.join('; ') : '')));
  } finally {
    await ctx.close().catch(() => {});
    const code = await stopHeadend(server);
    if (code !== 0) console.error(server.log.slice(-3000));
    check(code === 0 && !/AddressSanitizer|runtime error|LeakSanitizer/.test(server.log), t('head-end exits 0 on SIGTERM' + (code === 0 ? '' : ' (exit ' + code + ')')));
  }
}

let browser, pg, failed = false;
try {
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
  await scenario(browser, 'sqlite', null);
  if (process.env.CASTELLAN_PANEL_NO_PG) console.log('# PostgreSQL: skipped (CASTELLAN_PANEL_NO_PG)');
  else if (!(pg = await startPg())) console.log('# PostgreSQL: no server binaries (apt-get install postgresql), SQLite only');
  else await scenario(browser, 'postgresql', pg.newDb());
  console.log(`PASS (${npass} checks)`);
} catch (e) {
  failed = true;
  console.error('FAIL: ' + (e && e.stack || e));
} finally {
  if (browser) await browser.close().catch(() => {});
  if (pg) pg.stop();
  rmSync(top, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
