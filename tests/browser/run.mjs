#!/usr/bin/env node
// Real-browser checks of a running Palisade, in Debian's headless Chromium
// driven by playwright-core (no browser download: /usr/bin/chromium).
//
//   node tests/browser/run.mjs API_BASE ALLOWED_ORIGIN SCREENSHOT.png [REFUSED_PORT]
//
// API_BASE        the running server, e.g. http://127.0.0.1:18090
// ALLOWED_ORIGIN  an origin in the server's cors.allowed_origins, e.g.
//                 http://127.0.0.1:18091 (or just the port: 18091); this
//                 script serves its own pages there
// SCREENSHOT.png  where the screenshot of the authorised Swagger UI goes
// REFUSED_PORT    a port NOT in the allowlist for the same pages (default:
//                 any free port)
//
// Environment: CHROMIUM (default /usr/bin/chromium), PALISADE_BROWSER_NODE_MODULES
// (default target/browser/node_modules, made by tests/browser/setup.sh).
//
// Prints one line per check and a closing "N passed, N failed" line; exit
// code 0 only if every check passed. The server should be fresh (or its
// per-IP limits refilled): the run spends 6 of the 10/minute of
// GET /api/data and 1 of the 10/hour of POST /auth/register.

import http from 'node:http';
import path from 'node:path';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const started = performance.now();
const here = path.dirname(fileURLToPath(import.meta.url));
const nodeModules = process.env.PALISADE_BROWSER_NODE_MODULES
  || path.resolve(here, '../../target/browser/node_modules');
const require = createRequire(path.join(nodeModules, 'noop.js'));
let chromium;
try {
  ({ chromium } = require('playwright-core'));
} catch (e) {
  console.error(`playwright-core not found under ${nodeModules}: run tests/browser/setup.sh first (${e.message})`);
  process.exit(2);
}

// ---------------------------------------------------------------- arguments
const [apiArg, originArg, shotArg, refusedArg] = process.argv.slice(2);
if (!apiArg || !originArg || !shotArg) {
  console.error('usage: run.mjs API_BASE ALLOWED_ORIGIN|PORT SCREENSHOT.png [REFUSED_PORT]');
  process.exit(2);
}
const API = apiArg.replace(/\/+$/, '');
const allowedOrigin = /^\d+$/.test(originArg) ? `http://127.0.0.1:${originArg}` : originArg.replace(/\/+$/, '');
const allowedUrl = new URL(allowedOrigin);
const screenshotPath = path.resolve(shotArg);
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';

// ---------------------------------------------------------------- reporting
const results = [];
function check(name, ok, detail) {
  results.push({ name, ok });
  console.log(`${ok ? 'PASS' : 'FAIL'} ${name}: ${detail}`);
}
function note(text) { console.log(`     ${text}`); }

// ------------------------------------------------- the second-origin pages
const PROBE_PAGE = `<!doctype html><meta charset="utf-8"><title>palisade cors probe</title>
<script>
window.probe = async function (url, headers) {
  try {
    const r = await fetch(url, { credentials: 'include', headers: headers || {} });
    const body = await r.text();
    return { ok: true, status: r.status, at: performance.timeOrigin + performance.now(),
      requestId: r.headers.get('X-Request-Id'), rateLimit: r.headers.get('RateLimit'),
      rateLimitPolicy: r.headers.get('RateLimit-Policy'), body };
  } catch (e) {
    return { ok: false, at: performance.timeOrigin + performance.now(),
      isTypeError: e instanceof TypeError, error: e.name + ': ' + e.message };
  }
};
</script><p>probe page</p>`;

function framePage(api, controlUrl) {
  return `<!doctype html><meta charset="utf-8"><title>palisade frame probe</title>
<script>window.loads = {}; window.messages = [];
addEventListener('message', (e) => window.messages.push({ origin: e.origin, data: e.data }));</script>
<iframe id="docs" name="docs" width="600" height="300" onload="loads.docs=true" src="${api}/docs/"></iframe>
<iframe id="data" name="data" width="600" height="100" onload="loads.data=true" src="${api}/api/data"></iframe>
<iframe id="control" name="control" width="600" height="100" onload="loads.control=true" src="${controlUrl}"></iframe>`;
}

const FRAMED_CONTROL = `<!doctype html><meta charset="utf-8"><title>framed control</title>
<p>control frame rendered</p><script>parent.postMessage('control-rendered', '*');</script>`;

const CSP_CONTROL = `<!doctype html><meta charset="utf-8"><title>csp control</title>
<img src="/nothing.png" alt="">`;

function startServer(port, frameControlUrl) {
  const server = http.createServer((req, res) => {
    const u = new URL(req.url, 'http://x');
    const send = (type, body, extra = {}) => {
      res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store', ...extra });
      res.end(body);
    };
    if (u.pathname === '/probe.html') return send('text/html', PROBE_PAGE);
    if (u.pathname === '/frames.html') return send('text/html', framePage(API, frameControlUrl()));
    if (u.pathname === '/framed.html') return send('text/html', FRAMED_CONTROL);
    if (u.pathname === '/csp-control.html') return send('text/html', CSP_CONTROL, { 'content-security-policy': "img-src 'none'" });
    res.writeHead(404); res.end();
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

function parseRateLimit(v) {
  const m = /r=(\d+);t=(\d+)/.exec(v || '');
  return m ? { r: Number(m[1]), t: Number(m[2]) } : null;
}

// Network log of one page over CDP: sees preflights and CORS failures,
// which Playwright's request events leave out.
async function networkLog(context, page) {
  const cdp = await context.newCDPSession(page);
  const reqs = new Map();
  const get = (id) => { if (!reqs.has(id)) reqs.set(id, { id }); return reqs.get(id); };
  cdp.on('Network.requestWillBeSent', (e) => Object.assign(get(e.requestId), {
    url: e.request.url, method: e.request.method, type: e.type, initiator: e.initiator?.type,
    reqHeaders: e.request.headers }));
  cdp.on('Network.responseReceived', (e) => Object.assign(get(e.requestId), {
    status: e.response.status, headers: e.response.headers }));
  cdp.on('Network.responseReceivedExtraInfo', (e) => Object.assign(get(e.requestId), {
    rawStatus: e.statusCode, rawHeaders: e.headers }));
  cdp.on('Network.loadingFailed', (e) => Object.assign(get(e.requestId), {
    failed: e.errorText, corsError: e.corsErrorStatus?.corsError, blockedReason: e.blockedReason }));
  const issues = [];
  cdp.on('Audits.issueAdded', (e) => issues.push(e.issue));
  await cdp.send('Network.enable');
  await cdp.send('Audits.enable');
  return { all: () => [...reqs.values()], clear: () => reqs.clear(), issues: () => issues };
}

function consoleLog(page) {
  const lines = [];
  page.on('console', (m) => lines.push(`${m.type()}: ${m.text().trim()}`));
  page.on('pageerror', (e) => lines.push(`pageerror: ${e.message}`));
  return lines;
}

const CSP_COLLECTOR = () => {
  window.__csp = [];
  document.addEventListener('securitypolicyviolation', (e) => {
    window.__csp.push({ directive: e.violatedDirective, blocked: e.blockedURI, source: e.sourceFile, line: e.lineNumber, sample: e.sample });
  }, true);
};

// -------------------------------------------------------------------- main
let browser, allowedServer, refusedServer;
let exitCode = 1;
try {
  let refusedPort = 0;
  if (refusedArg) refusedPort = Number(refusedArg);
  refusedServer = await startServer(refusedPort, () => `${allowedOrigin}/framed.html`);
  const refusedOrigin = `http://127.0.0.1:${refusedServer.address().port}`;
  allowedServer = await startServer(Number(allowedUrl.port || 80), () => `${refusedOrigin}/framed.html`);
  console.log(`     api ${API}; allowed origin ${allowedOrigin}; refused origin ${refusedOrigin}; chromium ${executablePath}`);

  browser = await chromium.launch({ executablePath, headless: true });
  console.log(`     browser ${browser.version()}`);
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });

  // ======================= 1. CORS from a second origin ====================
  const okPage = await context.newPage();
  const okConsole = consoleLog(okPage);
  await okPage.goto(`${allowedOrigin}/probe.html`);
  const badPage = await context.newPage();
  const badConsole = consoleLog(badPage);
  const badNet = await networkLog(context, badPage);
  await badPage.goto(`${refusedOrigin}/probe.html`);
  const probe = (p, headers) => p.evaluate(([u, h]) => window.probe(u, h), [`${API}/api/data`, headers]);

  // 1a. allowed origin, credentials: include
  const a = await probe(okPage);
  const aRl = parseRateLimit(a.rateLimit);
  check('cors-allowed-origin-readable', a.ok && a.status === 200 && !!a.requestId && !!aRl && !!a.rateLimitPolicy,
    a.ok ? `status ${a.status}, X-Request-Id=${a.requestId}, RateLimit=${a.rateLimit}, RateLimit-Policy=${a.rateLimitPolicy}, body ${a.body}`
         : `fetch failed: ${a.error}; console: ${okConsole.join(' | ')}`);

  // 1b. refused origin, a request that needs a preflight (Authorization header)
  badNet.clear();
  const x = await probe(badPage, { Authorization: 'Bearer not-a-token' });
  await badPage.waitForTimeout(200);
  const xReqs = badNet.all().filter((r) => r.url === `${API}/api/data`);
  const pre = xReqs.find((r) => r.method === 'OPTIONS' || r.type === 'Preflight');
  const actual = xReqs.filter((r) => r.method === 'GET');
  const actualSent = actual.some((r) => r.rawStatus !== undefined || r.status !== undefined);
  const b = await probe(okPage);
  const bRl = parseRateLimit(b.rateLimit);
  // GCRA: every counted request moves the bucket's TAT 60/q s later, so
  // t_B = t_A - elapsed + k*T; k is how many requests the limiter counted
  // after A (B included).
  const T = 60 / 10;
  const k1 = aRl && bRl ? Math.round((bRl.t - aRl.t + (b.at - a.at) / 1000) / T) : NaN;
  const preAcao = pre?.rawHeaders && Object.keys(pre.rawHeaders).some((h) => h.toLowerCase() === 'access-control-allow-origin');
  check('cors-refused-preflight-blocked', !x.ok && x.isTypeError && !actualSent && k1 === 1,
    `page saw ${x.error}; preflight OPTIONS ${pre ? `answered ${pre.rawStatus ?? pre.status}, Access-Control-Allow-Origin ${preAcao ? 'PRESENT' : 'absent'}, browser: ${pre.corsError || pre.failed || '-'}` : 'not seen by CDP'}; `
    + `actual GET ${actualSent ? 'SENT' : 'never sent'} (browser: ${actual.map((r) => r.corsError || r.failed).join(',') || '-'}); `
    + `limiter counted ${k1} request(s) between two allowed probes (B included; 1 = neither the preflight nor a GET was counted; RateLimit ${a.rateLimit} -> ${b.rateLimit}, ${Math.round(b.at - a.at)} ms apart)`);

  // 1c. refused origin, the same simple fetch as 1a (no preflight)
  badNet.clear();
  const y = await probe(badPage);
  await badPage.waitForTimeout(200);
  const yReq = badNet.all().find((r) => r.url === `${API}/api/data` && r.method === 'GET');
  const c = await probe(okPage);
  const cRl = parseRateLimit(c.rateLimit);
  const k2 = bRl && cRl ? Math.round((cRl.t - bRl.t + (c.at - b.at) / 1000) / T) : NaN;
  const yAcao = yReq?.rawHeaders && Object.keys(yReq.rawHeaders).some((h) => h.toLowerCase() === 'access-control-allow-origin');
  check('cors-refused-simple-blocked', !y.ok && y.isTypeError && !yAcao,
    `page saw ${y.error}; the browser sent the GET (server answered ${yReq?.rawStatus ?? yReq?.status ?? '?'}, Access-Control-Allow-Origin ${yAcao ? 'PRESENT' : 'absent'}, browser: ${yReq?.corsError || yReq?.failed || '-'}); `
    + `limiter counted ${k2} (control: 2 = this GET + the probe; RateLimit ${b.rateLimit} -> ${c.rateLimit})`);
  check('cors-preflight-proof-control', k2 === 2,
    `a refused simple request IS counted (k=${k2}), so k=${k1} for the preflighted one shows its GET never reached the server`);

  // 1d. allowed origin with the same preflighted request: preflight passes
  const d = await probe(okPage, { Authorization: 'Bearer not-a-token' });
  check('cors-allowed-preflight-passes', d.ok && !!d.requestId,
    d.ok ? `status ${d.status} readable after a preflight, X-Request-Id=${d.requestId}, RateLimit=${d.rateLimit}` : `fetch failed: ${d.error}`);
  const corsConsole = badConsole.filter((l) => /CORS/i.test(l));
  note(`refused-origin console: ${corsConsole.join(' | ') || '(none)'}`);
  await okPage.close(); await badPage.close();

  // ======================= 2. Swagger UI at /docs ==========================
  // CSP collector control: the collector must see a violation where there is one.
  const ctl = await context.newPage();
  await ctl.addInitScript(CSP_COLLECTOR);
  await ctl.goto(`${allowedOrigin}/csp-control.html`);
  await ctl.waitForFunction(() => window.__csp.length > 0, null, { timeout: 5000 }).catch(() => {});
  const ctlV = await ctl.evaluate(() => window.__csp);
  check('csp-collector-control', ctlV.length > 0, `the init-script collector caught ${ctlV.length} violation(s) on a page made to violate (${ctlV.map((v) => v.directive).join(',')})`);
  await ctl.close();

  const stamp = Date.now().toString(36);
  const user = { email: `browser-${stamp}@example.test`, username: `browser_${stamp}`, name: 'Browser Harness', password: `Quiet-harbour-lantern-${stamp}-Vx` };
  const reg = await fetch(`${API}/auth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(user) });
  const regBody = await reg.text();
  check('register-user', reg.status === 201, `POST /auth/register -> ${reg.status}${reg.status === 201 ? '' : ` ${regBody}`}`);

  const docs = await context.newPage();
  await docs.addInitScript(CSP_COLLECTOR);
  const docsConsole = consoleLog(docs);
  const docsResponses = [];
  docs.on('response', (r) => docsResponses.push(r));
  const nav = await docs.goto(`${API}/docs`, { waitUntil: 'load' });
  await docs.locator('.opblock').first().waitFor({ timeout: 15000 });
  const ops = await docs.locator('.opblock').count();
  const docsCsp = await nav.headerValue('content-security-policy');
  await docs.waitForTimeout(300);
  let violations = await docs.evaluate(() => window.__csp);
  let errors = docsConsole.filter((l) => /^(error|pageerror)/.test(l));
  check('docs-renders-no-csp-violation', ops > 0 && violations.length === 0 && errors.length === 0,
    `${ops} operations rendered; ${violations.length} CSP violation(s)${violations.length ? ' ' + JSON.stringify(violations) : ''}; ${errors.length} console error(s)${errors.length ? ' ' + errors.join(' | ') : ''}; CSP: ${docsCsp}`);

  // Authorize with the oauth2 password flow.
  await docs.locator('.auth-wrapper button.authorize').click();
  const modal = docs.locator('.modal-ux');
  await modal.waitFor();
  // The oauth2 scheme's box (its heading reads "oauth2 (OAuth2, password)").
  const oauth = modal.locator('.auth-container').filter({ has: docs.locator('h4', { hasText: /^\s*oauth2\b/ }) });
  await oauth.locator('#oauth_username').fill(user.username);
  await oauth.locator('#oauth_password').fill(user.password);
  const tokenResp = docs.waitForResponse((r) => r.url().endsWith('/auth/token') && r.request().method() === 'POST', { timeout: 10000 });
  await oauth.locator('.auth-btn-wrapper button.authorize').click();
  const tr = await tokenResp;
  const tokenJson = await tr.json().catch(() => ({}));
  // Swagger UI then shows "Authorized" and a Logout button (aria-label
  // "Remove authorization") in place of the inputs.
  const loggedIn = await oauth.locator('button', { hasText: 'Logout' }).waitFor({ timeout: 5000 }).then(() => true, () => false)
    && (await oauth.innerText()).includes('Authorized');
  const authErr = await oauth.locator('.errors').allInnerTexts().catch(() => []);
  check('docs-authorize-oauth2-password', tr.status() === 200 && !!tokenJson.access_token && loggedIn,
    `POST /auth/token (${tr.request().postData()?.replace(/password=[^&]*/, 'password=***')}) -> ${tr.status()}, token_type=${tokenJson.token_type}, dialog ${loggedIn ? 'shows "Authorized" + Logout' : `not authorised ${authErr.join(' ')}`}`);
  await oauth.locator('button.btn-done').click();
  await modal.waitFor({ state: 'detached' });

  // Try it out -> Execute on GET /profile.
  const op = docs.locator('.opblock.opblock-get').filter({ has: docs.locator('.opblock-summary-path[data-path="/profile"]') });
  await op.locator('.opblock-summary').first().click();
  await op.locator('.try-out__btn').click();
  const profResp = docs.waitForResponse((r) => r.url() === `${API}/profile` && r.request().method() === 'GET', { timeout: 10000 });
  await op.locator('button.execute').click();
  const pr = await profResp;
  const authz = await pr.request().headerValue('authorization');
  const statusCell = op.locator('.live-responses-table tbody .response-col_status').first();
  await statusCell.waitFor({ timeout: 10000 });
  const shownStatus = (await statusCell.innerText()).trim();
  const shownBody = (await op.locator('.live-responses-table tbody .response-col_description pre').first().innerText()).trim();
  check('docs-try-it-out-profile', pr.status() === 200 && shownStatus === '200' && shownBody.includes(user.username),
    `GET /profile with Authorization ${authz ? authz.slice(0, 14) + '...' : 'MISSING'} -> ${pr.status()}; UI shows ${shownStatus} and body ${shownBody.replace(/\s+/g, ' ').slice(0, 160)}`);

  violations = await docs.evaluate(() => window.__csp);
  errors = docsConsole.filter((l) => /^(error|pageerror)/.test(l));
  check('docs-no-csp-violation-after-use', violations.length === 0 && errors.length === 0,
    `${violations.length} violation(s), ${errors.length} console error(s) after authorise + execute${errors.length ? ': ' + errors.join(' | ') : ''}`);

  fs.mkdirSync(path.dirname(screenshotPath), { recursive: true });
  // The page from the top (Authorize button, now locked) down to the end
  // of the live /profile response (status, body, headers).
  const live = op.locator('.live-responses-table').first();
  const liveBottom = await live.evaluate((el) => el.getBoundingClientRect().bottom + window.scrollY);
  await docs.screenshot({ path: screenshotPath, fullPage: true, clip: { x: 0, y: 0, width: 1280, height: Math.ceil(liveBottom + 16) } });
  // And the top of the page alone, at full size.
  await docs.evaluate(() => window.scrollTo(0, 0));
  await docs.screenshot({ path: screenshotPath.replace(/\.png$/i, '') + '-top.png', clip: { x: 0, y: 0, width: 1280, height: 360 } });
  check('docs-screenshot', fs.statSync(screenshotPath).size > 0, `${screenshotPath} (${fs.statSync(screenshotPath).size} bytes)`);
  await docs.close();

  // ======================= 3. framing is refused ===========================
  const fr = await context.newPage();
  const frConsole = consoleLog(fr);
  const frNet = await networkLog(context, fr);
  await fr.goto(`${allowedOrigin}/frames.html`);
  await fr.waitForFunction(() => window.loads.docs && window.loads.data && window.loads.control, null, { timeout: 10000 }).catch(() => {});
  await fr.waitForTimeout(300);
  const framesInfo = {};
  for (const f of fr.frames()) {
    if (f === fr.mainFrame()) continue;
    const name = f.name();
    let inner;
    try { inner = await f.evaluate(() => ({ href: location.href, text: document.body ? document.body.innerText.slice(0, 80) : '' })); }
    catch (e) { inner = { error: e.message.split('\n')[0] }; }
    framesInfo[name] = { url: f.url(), inner };
  }
  const parentView = await fr.evaluate(() => Object.fromEntries(['docs', 'data', 'control'].map((id) => {
    const el = document.getElementById(id);
    let doc;
    try { doc = el.contentDocument ? `readable (${el.contentDocument.URL})` : 'null'; } catch (e) { doc = `throws ${e.name}`; }
    return [id, doc];
  })));
  const messages = await fr.evaluate(() => window.messages);
  const net = frNet.all();
  // Chromium names only the framed origin in its message, so the two
  // framings are matched by count (one message per refused frame).
  const apiOrigin = new URL(API).origin;
  const framingMsgs = frConsole.filter((l) => l.includes(`Framing '${apiOrigin}/'`));
  note(`frames page console: ${frConsole.join(' | ') || '(none)'}`);
  note(`DevTools issues: ${JSON.stringify(frNet.issues().map((i) => i.details?.contentSecurityPolicyIssueDetails).filter(Boolean).map((d) => ({ blockedURL: d.blockedURL, violatedDirective: d.violatedDirective })))}`);
  for (const [id, url] of [['docs', `${API}/docs/`], ['data', `${API}/api/data`]]) {
    const f = framesInfo[id] || {};
    const n = net.find((r) => r.url === url && r.type === 'Document');
    const hdr = (h) => n?.rawHeaders && Object.entries(n.rawHeaders).find(([k]) => k.toLowerCase() === h)?.[1];
    const blocked = /^chrome-error:/.test(f.url || '') || /^chrome-error:/.test(f.inner?.href || '');
    check(`frame-refused-${id}`, blocked && framingMsgs.length >= 2,
      `iframe ${url}: server answered ${n?.rawStatus ?? n?.status ?? '?'} with CSP "${hdr('content-security-policy')}" and X-Frame-Options ${hdr('x-frame-options')}; frame document is ${f.url} (${JSON.stringify(f.inner)}); parent sees contentDocument ${parentView[id]}`);
  }
  const ctlFrame = framesInfo.control || {};
  check('frame-control-renders', messages.some((m) => m.data === 'control-rendered') && !/^chrome-error:/.test(ctlFrame.url || ''),
    `a cross-origin page without those headers renders in the same kind of iframe: ${ctlFrame.url}, text "${ctlFrame.inner?.text}", postMessage ${JSON.stringify(messages)}`);
  await fr.close();

  await context.close();
  const failed = results.filter((r) => !r.ok).length;
  exitCode = failed === 0 ? 0 : 1;
} catch (e) {
  check('harness', false, `aborted: ${e.stack || e}`);
  exitCode = 1;
} finally {
  if (browser) await browser.close().catch(() => {});
  for (const s of [allowedServer, refusedServer]) if (s) { s.closeAllConnections?.(); await new Promise((r) => s.close(r)); }
  const failed = results.filter((r) => !r.ok).length;
  console.log(`     run time ${((performance.now() - started) / 1000).toFixed(2)} s`);
  console.log(`${results.length - failed} passed, ${failed} failed`);
  process.exit(exitCode);
}
