// panel.test.mjs - end-to-end test of the web panel in headless Chromium
// (Debian's /usr/bin/chromium driven by playwright-core) against a real
// `castellan headend` started on a temp dir with a fresh keystore (or
// `castellan web serve`, the HTTP APIs and the panel alone, when this
// build's head-end does not serve the panel).
//
//   node panel.test.mjs [ARTEFACT_DIR]
//
// Signs in as admin, creates a package and a card, gives the card the
// package, blocks it, checks the audit log names the user, signs out; then
// a wrong password is refused, and a cross-site style request without the
// CSRF token is refused while the card stays unchanged. Screenshots go to
// ARTEFACT_DIR/screenshots (docs/img/ has copies). Exit 77 (meson: skipped)
// without chromium or node_modules; 0 pass; 1 fail. Every wait is bounded.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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
const dir = mkdtempSync(join(tmpdir(), 'castellan-panel-'));
const PW = 'first-admin-pw-' + Math.random().toString(36).slice(2);
writeFileSync(join(dir, 'pw'), PW + '\n');

let server, browser, failed = false;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function check(cond, what) {
  if (!cond) throw new Error('check failed: ' + what);
  console.log('ok - ' + what);
}

function run(args, env) {
  return new Promise((resolve) => {
    const p = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ? { ...process.env, ...env } : process.env });
    let log = ''; p.stdout.on('data', (d) => { log += d; }); p.stderr.on('data', (d) => { log += d; });
    p.on('close', (code) => resolve({ code, log }));
  });
}

// A real head-end (HTTP APIs + panel, ECMG, EMM carousel) when this build's
// `castellan headend` serves the panel; else `castellan web serve`.
let mode = 'headend';
// A KMS made with the CLI (tests/kms flow): one order of 3 chips, vendor
// 0x4adc added then revoked, vendor 0x4add added; the panel shows it
// read-only through --kms-dir (never with the KMS passphrase).
const KMS = join(dir, 'kms');
async function makeKms() {
  const env = { CASTELLAN_PASSPHRASE: 'kms-passphrase-123' };
  writeFileSync(join(dir, 'chips.csv'), 'chip_id\n0x1000\n0x1001\n0x1002\n');
  const steps = [['kms', 'init', '--dir', KMS, '--scrypt-log2n', '10'], ['kms', 'order', 'import', '--dir', KMS, join(dir, 'chips.csv')],
    ['kms', 'keygen', '--type', 'x25519', '--out', join(dir, 'va.key'), '--pub', join(dir, 'va.pub')],
    ['kms', 'vendor', 'add', '--dir', KMS, '--id', '0x4adc', '--pub', join(dir, 'va.pub')], ['kms', 'revoke', '--dir', KMS, '--vendor', '0x4adc'],
    ['kms', 'keygen', '--type', 'x25519', '--out', join(dir, 'vb.key'), '--pub', join(dir, 'vb.pub')],
    ['kms', 'vendor', 'add', '--dir', KMS, '--id', '0x4add', '--pub', join(dir, 'vb.pub')]];
  for (const a of steps) {
    const r = await run(a, env);
    if (r.code !== 0) throw new Error(a.join(' ') + ': ' + r.log);
  }
}
async function startServer() {
  const ready = join(dir, 'ready');
  await makeKms();
  const webRoot = join(here, '..', '..', 'web');
  const help = await run(['headend', '--help']);
  let args;
  if (/--web-root/.test(help.log)) {
    writeFileSync(join(dir, 'pass'), 'keystore-passphrase-1\n', { mode: 0o600 });
    const k = await run(['keys', 'init', '--out', join(dir, 'ks'), '--ca-system-id', '0x4ADC', '--passphrase-file', join(dir, 'pass')]);
    if (k.code !== 0) throw new Error('keys init: ' + k.log);
    args = ['headend', '--data-dir', join(dir, 'data'), '--keystore', join(dir, 'ks'), '--passphrase-file', join(dir, 'pass'),
      '--http', '127.0.0.1:0', '--ecmg', '127.0.0.1:0', '--admin-key-file', join(dir, 'admin-key'),
      '--web-root', webRoot, '--web-admin-password-file', join(dir, 'pw'), '--ready-file', ready, '--status-every', '0', '--kms-dir', KMS];
  } else {
    mode = 'web serve';
    args = ['web', '--data', join(dir, 'data'), 'serve', '--http', '127.0.0.1:0', '--root', webRoot,
      '--admin-password-file', join(dir, 'pw'), '--ready-file', ready, '--kms-dir', KMS];
  }
  console.log('# server: castellan ' + mode);
  server = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  server.log = '';
  server.stdout.on('data', (d) => { server.log += d; });
  server.stderr.on('data', (d) => { server.log += d; });
  const log = { toString: () => server.log };
  for (let i = 0; i < 300; i++) {
    if (existsSync(ready)) {
      const m = /http=(\d+)/.exec(readFileSync(ready, 'utf8'));
      if (m) return Number(m[1]);
    }
    if (server.exitCode !== null) break;
    await sleep(100);
  }
  throw new Error('server did not start:\n' + log);
}

async function main() {
  const port = await startServer();
  const base = `http://127.0.0.1:${port}`;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, timezoneId: 'Europe/Paris' });
  ctx.setDefaultTimeout(15000);
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error' && !/401|403|423/.test(m.text())) errors.push(m.text()); });

  // 1. wrong password refused
  await page.goto(base + '/');
  await page.waitForSelector('#signin-form');
  await page.screenshot({ path: join(out, 'signin.png') });
  await page.fill('#signin-user', 'admin');
  await page.fill('#signin-password', 'not-the-password');
  await page.press('#signin-password', 'Enter');
  await page.waitForSelector('#signin-error:not([hidden])');
  check(/Wrong user name or password/.test(await page.textContent('#signin-error')), 'wrong password refused');

  // 2. sign in (keyboard only)
  await page.fill('#signin-password', PW);
  await page.press('#signin-password', 'Enter');
  await page.waitForSelector('#app:not([hidden])');
  check((await page.textContent('#who')).includes('admin (admin)'), 'signed in as admin');
  const cookies = await ctx.cookies();
  const sc = cookies.find((c) => c.name === 'castellan_session');
  check(sc && sc.httpOnly && sc.sameSite === 'Strict', 'session cookie is HttpOnly and SameSite=Strict');
  check(await page.evaluate(() => !document.cookie.includes('castellan_session')), 'the page script cannot read the session cookie');

  // 3. a package (admin); 0..31 exist from the start as "package N"
  await page.goto(base + '/#/packages');
  await page.fill('#pkg-id', '40');
  await page.fill('#pkg-name', 'Sports HD');
  await page.click('text=Add package');
  await page.waitForSelector('td:text("Sports HD")');
  check(true, 'package Sports HD (id 40) created');

  // 4. a card
  await page.goto(base + '/#/cards');
  await page.fill('#new-serial', '2100000042');
  await page.fill('#new-name', 'Ann Example');
  await page.click('text=Create card');
  await page.waitForSelector('h1 >> text=2100000042');
  check(true, 'card 2100000042 created');

  const emmsBefore = mode === 'headend' ? (await page.evaluate(async () => (await fetch('/web/api/status')).json())).headend.changed_emms : 0;
  // 5. give it packages: the mask updates as the boxes are ticked
  await page.check('input[data-pkg="3"]');
  await page.check('input[data-pkg="40"]');
  check((await page.textContent('#card-mask')) === '00000008', 'mask shows package 3 as 00000008 (40 is outside the mask)');
  await page.click('#pkg-save');
  await page.waitForSelector('td:text("Sports HD")');
  const api1 = await page.evaluate(async () => (await fetch('/api/v1/cards/2100000042')).json());
  check(api1.access_criteria === '00000008' && api1.subscriptions.some((s) => s.package === 40), 'REST shows the subscriptions to packages 3 and 40');
  await page.screenshot({ path: join(out, 'card.png'), fullPage: true });
  if (mode === 'headend') {
    // the head-end sees the change in the audit log and sends the card's
    // EMM first (bounded wait for the event, not a timing check)
    let emms = emmsBefore;
    for (let i = 0; i < 100 && emms <= emmsBefore; i++) {
      await sleep(100);
      emms = (await page.evaluate(async () => (await fetch('/web/api/status')).json())).headend.changed_emms;
    }
    check(emms > emmsBefore, `the card's EMM went out (EMMs for changed cards: ${emmsBefore} -> ${emms})`);
  }

  // 6. block it (with confirmation)
  await page.click('#card-block');
  await page.waitForSelector('dialog#confirm[open]');
  await page.screenshot({ path: join(out, 'confirm-block.png') });
  await page.click('#confirm-ok');
  await page.waitForSelector('.badge.blocked');
  const api2 = await page.evaluate(async () => (await fetch('/api/v1/cards/2100000042')).json());
  check(api2.state === 'blocked', 'card blocked');

  // 7. search finds it, paginated list
  await page.goto(base + '/#/cards');
  await page.fill('#card-search', '2100000');
  await page.waitForSelector('td a:text("2100000042")');
  await page.screenshot({ path: join(out, 'cards.png'), fullPage: true });
  check(true, 'search by serial prefix finds the card');

  // 8. CSRF: a state-changing request without the token is refused, and
  //    nothing changes
  const csrf = await page.evaluate(async () => {
    const r = await fetch('/api/v1/cards/2100000042', { method: 'PATCH', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ state: 'active' }) });
    const bad = await fetch('/api/v1/cards/2100000042', { method: 'PATCH', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': '0'.repeat(64) }, body: JSON.stringify({ state: 'active' }) });
    const c = await (await fetch('/api/v1/cards/2100000042')).json();
    return [r.status, bad.status, c.state];
  });
  check(csrf[0] === 403 && csrf[1] === 403 && csrf[2] === 'blocked', 'CSRF: PATCH without / with a wrong token refused (403), card unchanged');

  // 9. audit log names the panel user
  await page.goto(base + '/#/audit');
  await page.waitForSelector('td:text("web:admin")');
  await page.screenshot({ path: join(out, 'audit.png'), fullPage: true });
  check(true, 'audit log shows web:admin');

  // 10. users: add an operator
  await page.goto(base + '/#/users');
  await page.fill('#user-name', 'olga');
  await page.fill('#user-password', 'operator-password-1');
  await page.selectOption('#user-role', 'operator');
  await page.click('text=Add user');
  await page.waitForSelector('td:text("olga")');
  check(true, 'operator olga added');

  // 11. dashboard with plots
  await page.goto(base + '/#/dashboard');
  await page.waitForSelector('svg.chart polyline', { timeout: 20000 });
  if (mode === 'headend') {
    await page.waitForSelector('text=ECMs sent');
    check(true, 'dashboard shows the head-end counters (ECMs, EMMs, EMMG)');
  }
  await page.screenshot({ path: join(out, 'dashboard.png'), fullPage: true });
  check(true, 'dashboard plots drawn');

  // 11a. search by card info (the subscriber's info, case-insensitive)
  const setInfo = await page.evaluate(async () => {
    const csrf = (await (await fetch('/web/api/session')).json()).csrf;
    return (await fetch('/api/v1/cards/2100000042', { method: 'PATCH', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf }, body: JSON.stringify({ info: 'Dish on the balcony, Flat 7' }) })).status;
  });
  check(setInfo === 200, 'card info set through the REST API');
  await page.goto(base + '/#/cards');
  await page.fill('#card-info', 'FLAT 7');
  await page.waitForSelector('td a:text("2100000042")');
  await page.fill('#card-info', 'flat 8');
  await page.waitForSelector('td.empty');
  check(true, 'search by info finds the card ("FLAT 7") and not for "flat 8"');

  // 11b. rename a package
  await page.goto(base + '/#/packages');
  page.once('dialog', (d) => d.accept('Sports UHD'));
  await page.click('button[data-rename="40"]');
  await page.waitForSelector('td:text("Sports UHD")');
  const p40 = await page.evaluate(async () => (await fetch('/api/v1/packages/40')).json());
  check(p40.name === 'Sports UHD', 'package 40 renamed to Sports UHD');

  // 11c. an API key: created, works, listed, revoked, then refused
  await page.goto(base + '/#/users');
  await page.fill('#key-user', 'billing');
  await page.click('text=Create key');
  const key = (await page.textContent('.keyshow')).trim();
  check(/^[0-9a-f]{64}$/.test(key), 'API key created');
  const k1 = await ctx.request.get(base + '/api/v1/cards/2100000042', { headers: { 'X-API-Key': key, Cookie: '' } });
  check(k1.status() === 200, 'the new API key reads a card');
  await page.goto(base + '/#/dashboard');
  await page.goto(base + '/#/users');
  const billingRow = '#apikeys tr:has(td:text-is("billing"))';
  await page.waitForSelector(billingRow + ' button[data-revoke]');
  await page.screenshot({ path: join(out, 'apikeys.png'), fullPage: true });
  await page.click(billingRow + ' button[data-revoke]');
  await page.waitForSelector('dialog#confirm[open]');
  await page.click('#confirm-ok');
  await page.waitForSelector(billingRow + ' .badge.blocked');
  const k2 = await ctx.request.get(base + '/api/v1/cards/2100000042', { headers: { 'X-API-Key': key, Cookie: '' } });
  check(k2.status() === 401, 'the revoked API key is refused (401)');

  // 11d. system page: status, generators, epochs, log; a personalization file
  await page.goto(base + '/#/system');
  await page.waitForSelector('#sys-status table');
  await page.waitForSelector('#sys-log:not(:empty)');
  check((await page.textContent('#sys-log')).includes('signed in'), 'system log shows recent lines');
  if (mode === 'headend') {
    await page.waitForSelector('#sys-epochs >> text=next rotation');
    check((await page.textContent('#sys-status')).includes('ECMs sent'), 'status page renders the head-end counters and key epochs');
    await page.fill('#perso-serial', '2100000042');
    await page.fill('#perso-pass', 'transport-pass-1');
    const [dl] = await Promise.all([page.waitForEvent('download'), page.click('text=Create file')]);
    const f = await dl.path();
    const buf = readFileSync(f);
    check(dl.suggestedFilename() === 'card-2100000042.perso' && buf.length === 91 && buf.subarray(0, 8).toString() === 'CSTLPF01',
      'personalization file downloaded (91 bytes, magic CSTLPF01)');
    const csrfTok = await page.evaluate(async () => (await (await fetch('/web/api/session')).json()).csrf);
    const bad = await ctx.request.post(base + '/web/api/perso', { headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrfTok }, data: JSON.stringify({ serial: 2100000999, passphrase: 'transport-pass-1' }) });
    check(bad.status() === 404, 'no personalization file for an unknown card (404)');
  } else {
    check(true, 'status page renders (web serve: no keystore)');
  }
  await page.screenshot({ path: join(out, 'system.png'), fullPage: true });
  const aud = await page.evaluate(async () => (await (await fetch('/web/api/audit?q=panel%20user%20add')).json()).items);
  check(aud.some((a) => a.who === 'web:admin' && a.what === 'panel user add olga role=operator'), 'adding a panel user is in the store\'s audit table');

  // 11e. KMS page: orders, vendors (revoked flag), audit chain, and the
  //      sealed-state note; nothing needed the KMS passphrase
  await page.goto(base + '/#/kms');
  await page.waitForSelector('#kms-orders td:text("000001.ord")');
  check((await page.textContent('#kms-orders')).includes('0x0000000000001002'), 'KMS page lists order 1 (3 chips, last 0x…1002)');
  const v1 = await page.textContent('#kms-vendors tr:has(td:text-is("0x4adc"))');
  const v2 = await page.textContent('#kms-vendors tr:has(td:text-is("0x4add"))');
  check(/revoked/.test(v1) && /active/.test(v2), 'KMS page shows vendor 0x4adc revoked and 0x4add active');
  check((await page.textContent('#kms-chain')) === 'chain verified' && (await page.$$('#kms-audit tbody tr')).length === 6, 'KMS audit log: 6 entries (the order import logs its begin too), chain verified');
  check((await page.textContent('#kms-sealed')).includes('state.bin'), 'KMS page says what stays sealed in state.bin');
  await page.screenshot({ path: join(out, 'kms.png'), fullPage: true });
  // a cut-in-the-middle audit log (a line altered) shows as broken
  const alog = readFileSync(join(KMS, 'audit.log'), 'utf8');
  writeFileSync(join(KMS, 'audit.log'), alog.replace('chips=3', 'chips=4'));
  await page.goto(base + '/#/dashboard');
  await page.goto(base + '/#/kms');
  await page.waitForSelector('#kms-chain.blocked');
  check(/broken at line 2/.test(await page.textContent('#kms-chain')), 'an altered KMS audit line shows the chain broken at line 2');
  writeFileSync(join(KMS, 'audit.log'), alog);

  // 12. sign out: the REST API refuses the old cookie
  await page.click('#signout');
  await page.waitForSelector('#signin:not([hidden])');
  const after = await ctx.request.get(base + '/api/v1/cards', { headers: { Cookie: `castellan_session=${sc.value}` } });
  check(after.status() === 401, 'after sign-out the old session cookie is refused');

  // 13. operator: no admin pages, can block/unblock
  await page.fill('#signin-user', 'olga');
  await page.fill('#signin-password', 'operator-password-1');
  await page.press('#signin-password', 'Enter');
  await page.waitForSelector('#app:not([hidden])');
  const kmsOp = await page.evaluate(async () => (await fetch('/web/api/kms')).status);
  check(kmsOp === 403, 'operator: GET /web/api/kms refused (403)');
  check(!(await page.$('nav a[data-view="kms"]')) && !(await page.$('nav a[data-view="users"]')) && !!(await page.$('nav a[data-view="cards"]')), 'operator sees Cards, not Users');
  await page.goto(base + '/#/cards/2100000042');
  await page.click('#card-block');
  await page.click('#confirm-ok');
  await page.waitForSelector('.badge.active');
  check(true, 'operator unblocked the card');

  // 14. a tablet-sized screen
  await page.setViewportSize({ width: 800, height: 1100 });
  await page.screenshot({ path: join(out, 'card-tablet.png'), fullPage: true });

  check(errors.length === 0, 'no script errors in the page' + (errors.length ? ': ' + errors.join('; ') : ''));

  // 15. the server stops cleanly, and said nothing a sanitizer would
  const done = new Promise((r) => server.on('exit', (code) => r(code)));
  server.kill('SIGTERM');
  const code = await Promise.race([done, sleep(20000).then(() => 'timeout')]);
  check(code === 0 && !/AddressSanitizer|runtime error|LeakSanitizer/.test(server.log),
    'server exits 0 on SIGTERM with no sanitizer report' + (code === 0 ? '' : ' (exit ' + code + ')\n' + server.log.slice(-3000)));
  check(!server.log.includes(PW), 'the admin password is not in the server log');
}

try {
  await main();
  console.log('PASS');
} catch (e) {
  failed = true;
  console.error('FAIL: ' + (e && e.stack || e));
} finally {
  if (browser) await browser.close().catch(() => {});
  if (server && server.exitCode === null) server.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
