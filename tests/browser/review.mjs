// The review page in a real browser: Debian's Chromium driven by playwright-core.
//
// Two reviewers take one case through the page as a person would: sign in, find the case in
// the queue, see it blurred with its category and list above the image, reveal it with a
// reason and see it blur again, confirm; a second confirm by the same reviewer is refused;
// the second reviewer confirms; the audit history and the reviewer's reveals show it.
// A screenshot is saved after every step.
//
// Environment:
//   REVIEW_URL     the review page, e.g. http://127.0.0.1:8787/
//   REVIEW_USERS   path of review-users.json: {"reviewer-a": "password", "reviewer-b": …}
//   CASE_ID        a case whose quarantined object is an image, not yet decided
//   ARTIFACTS      directory for the screenshots (created)
//   EXPECT_LIST, EXPECT_CATEGORY   optional: the case's list name and category
//   CHROMIUM       optional: the browser (default /usr/bin/chromium)
//
// Exit status 0 when every check passed; 1 with the failed check named otherwise.

import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const TOTAL_TIMEOUT_MS = 240_000;
const STEP_TIMEOUT_MS = 20_000;

function need(name) {
  const value = process.env[name];
  if (!value) fail(`environment variable ${name} is not set`);
  return value;
}

function fail(message) {
  console.error(`review.mjs: FAILED: ${message}`);
  process.exit(1);
}

const reviewUrl = need('REVIEW_URL');
const usersPath = need('REVIEW_USERS');
const caseId = need('CASE_ID');
const artifacts = need('ARTIFACTS');
const expectList = process.env.EXPECT_LIST || '';
const expectCategory = process.env.EXPECT_CATEGORY || '';
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';

let users;
try {
  users = JSON.parse(fs.readFileSync(usersPath, 'utf8'));
} catch (err) {
  fail(`cannot read the reviewers' passwords from ${usersPath}: ${err.message}`);
}
for (const u of ['reviewer-a', 'reviewer-b']) {
  if (typeof users[u] !== 'string') fail(`${usersPath} has no password for ${u}`);
}
if (!fs.existsSync(executablePath)) fail(`${executablePath} is missing (make test installs Debian's chromium)`);
fs.mkdirSync(artifacts, { recursive: true });

class CheckFailed extends Error {}

function check(condition, message) {
  if (!condition) throw new CheckFailed(message);
}

const watchdog = setTimeout(() => {
  console.error(`review.mjs: FAILED: the whole run took longer than ${TOTAL_TIMEOUT_MS / 1000} s`);
  process.exit(1);
}, TOTAL_TIMEOUT_MS);

const browser = await chromium.launch({
  executablePath,
  headless: true,
  timeout: 30_000,
  // No internet here: without these Chromium keeps trying to reach Google's services.
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});

const consoleLines = [];
const pageErrors = [];
let page;
let stepNo = 0;
let currentStep = 'start';

async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const p = await context.newPage();
  p.setDefaultTimeout(STEP_TIMEOUT_MS);
  p.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
  p.on('console', (m) => consoleLines.push(`[${currentStep}] ${m.type()}: ${m.text()}`));
  p.on('pageerror', (e) => pageErrors.push(`[${currentStep}] ${e.message}`));
  return p;
}

async function step(name, fn) {
  stepNo += 1;
  currentStep = name;
  const file = path.join(artifacts, `${String(stepNo).padStart(2, '0')}-${name}.png`);
  const started = Date.now();
  try {
    await fn();
    check(pageErrors.length === 0, `the page threw: ${pageErrors.join('; ')}`);
    await page.screenshot({ path: file, fullPage: true, timeout: 10_000 });
    console.log(`ok   ${String(stepNo).padStart(2)} ${name} (${Date.now() - started} ms) → ${file}`);
  } catch (err) {
    const failed = file.replace(/\.png$/, '-FAILED.png');
    await page?.screenshot({ path: failed, fullPage: true, timeout: 10_000 }).catch(() => {});
    throw new CheckFailed(`step ${stepNo} "${name}": ${err.message.split('\n')[0]}${err instanceof CheckFailed ? '' : `\n${err.stack}`}\n  screenshot: ${failed}`);
  }
}

// --- what the page shows --------------------------------------------------------------

const caseRow = (id) => `#queue-rows tr[data-case-id=${JSON.stringify(id)}]`;

async function visible(selector) {
  return page.locator(selector).isVisible();
}

async function text(selector) {
  return ((await page.locator(selector).first().textContent()) || '').trim();
}

async function caseStatus() {
  return page.locator('#case-status [data-status]').getAttribute('data-status');
}

async function waitForStatus(status) {
  await page.waitForSelector(`#case-status [data-status="${status}"]`, { timeout: STEP_TIMEOUT_MS });
}

async function signIn(user) {
  await page.waitForSelector('#view-signin:not([hidden])');
  await page.fill('#signin-user', user);
  await page.fill('#signin-password', users[user]);
  await page.click('#signin-submit');
  try {
    await page.waitForSelector('#view-signin', { state: 'hidden', timeout: STEP_TIMEOUT_MS });
  } catch {
    throw new CheckFailed(`signing in as ${user} failed: ${await text('#signin-error')}`);
  }
  await page.waitForFunction((u) => document.getElementById('whoami').textContent.includes(u), user);
}

async function signOut() {
  await page.click('#signout');
  await page.waitForSelector('#view-signin:not([hidden])');
  const stored = await page.evaluate(() => sessionStorage.getItem('hashgate.session'));
  check(stored === null, 'the token is still in sessionStorage after signing out');
  const left = await page.evaluate(() => document.getElementById('case-match-list').children.length + document.getElementById('queue-rows').children.length);
  check(left === 0, 'case data is still in the page after signing out');
}

// Open the queue and the case from its row (loading more pages if needed).
async function openCaseFromQueue() {
  if (!(await visible('#view-queue'))) await page.click('[data-nav="queue"]');
  await page.waitForSelector('#view-queue:not([hidden])');
  await page.waitForFunction(() => !/Loading/.test(document.getElementById('queue-status').textContent));
  for (let i = 0; i < 20 && (await page.locator(caseRow(caseId)).count()) === 0; i++) {
    if (!(await visible('#queue-more'))) break;
    await page.click('#queue-more');
    await page.waitForTimeout(300);
  }
  check((await page.locator(caseRow(caseId)).count()) === 1, `case ${caseId} is not in the queue (${await text('#queue-status')})`);
  check((await page.locator('#view-queue img').count()) === 0, 'the queue shows images');
  const rowText = await text(caseRow(caseId));
  check(rowText.length > 0, 'the queue row is empty');
  if (expectList) check(rowText.includes(expectList), `the queue row does not name the list ${expectList}: ${rowText}`);
  await page.click(`${caseRow(caseId)} a`);
  await page.waitForSelector('#case-body:not([hidden])');
  check((await text('#case-title')).includes(caseId), `the case view shows ${await text('#case-title')}, not ${caseId}`);
  await page.waitForSelector('#preview-image[data-state="blurred"]');
  await page.waitForFunction(() => {
    const img = document.getElementById('preview-image');
    return img && img.complete && img.naturalWidth > 0;
  });
}

async function imageState() {
  return page.evaluate(() => {
    const img = document.getElementById('preview-image');
    if (!img) return null;
    return {
      state: img.getAttribute('data-state'),
      filter: getComputedStyle(img).filter,
      width: img.naturalWidth,
      height: img.naturalHeight,
      src: img.src,
      complete: img.complete,
    };
  });
}

async function checkBlurred(where) {
  const img = await imageState();
  check(img, `${where}: no preview image`);
  check(img.state === 'blurred', `${where}: the preview is ${img.state}, not blurred`);
  check(/blur\(/.test(img.filter) && /grayscale\(1\)/.test(img.filter), `${where}: the preview's CSS filter is "${img.filter}", not a blur and grayscale`);
  check(img.width > 0 && img.width <= 256 && img.height > 0 && img.height <= 256, `${where}: the preview is ${img.width}x${img.height}, more than 256 px`);
  check(img.src.startsWith('blob:'), `${where}: the preview is not a blob URL: ${img.src}`);
  return img;
}

async function decide(decision, reason, classification, useShortcut) {
  if (useShortcut) {
    await page.locator('#case-title').focus();
    await page.keyboard.press({ confirm: 'c', false_positive: 'f', escalate: 'e' }[decision]);
    const chosen = await page.evaluate(() => document.querySelector('input[name="decision"]:checked')?.value);
    check(chosen === decision, `the shortcut chose ${chosen}, not ${decision}`);
    const focused = await page.evaluate(() => document.activeElement?.id);
    check(['decision-classification', 'decision-reason'].includes(focused), `the shortcut left the focus on ${focused}`);
  } else {
    await page.check(`input[name="decision"][value="${decision}"]`);
  }
  check(await page.locator('#decision-submit').isDisabled(), 'a decision can be submitted without a reason');
  if (classification) await page.selectOption('#decision-classification', classification);
  await page.fill('#decision-reason', reason);
  check(await page.locator('#decision-submit').isEnabled(), 'the decision cannot be submitted with a reason');
  await page.click('#decision-submit');
  await page.waitForFunction(() => !document.getElementById('decision-error').hidden || !document.getElementById('decision-done').hidden);
}

async function auditActions() {
  return page.$$eval('#case-audit tbody tr td.action', (cells) => cells.map((c) => c.textContent.trim()));
}

// --- the run ----------------------------------------------------------------------------

let exitCode = 0;
try {
  page = await newPage();

  await step('sign-in-page', async () => {
    const res = await page.goto(reviewUrl, { waitUntil: 'load' });
    check(res && res.ok(), `GET ${reviewUrl} answered ${res && res.status()}`);
    await page.waitForSelector('#view-signin:not([hidden])');
    check(!(await visible('#signin-error')), `the sign-in page reports: ${await text('#signin-error')}`);
  });

  await step('queue-as-reviewer-a', async () => {
    await signIn('reviewer-a');
    await page.waitForSelector('#view-queue:not([hidden])');
    await page.waitForFunction(() => !/Loading/.test(document.getElementById('queue-status').textContent));
  });

  let preview;
  await step('case-blurred', async () => {
    await openCaseFromQueue();
    check((await caseStatus()) === 'pending_review', `the case is ${await caseStatus()}, not pending_review`);
    preview = await checkBlurred('the first preview');
    // Hovering never unblurs.
    await page.hover('#preview-image');
    check(/blur\(/.test((await imageState()).filter), 'hovering unblurs the preview');
    const matches = await text('#case-matches');
    const list = await text('#case-matches .match-list-name');
    const category = await text('#case-matches .match-category');
    check(list && category, `the case shows no list or category: "${matches}"`);
    if (expectList) check(list === expectList, `the list shown is "${list}", not "${expectList}"`);
    if (expectCategory) check(category === expectCategory, `the category shown is "${category}", not "${expectCategory}"`);
    const kind = await text('#case-matches .match-kind');
    check(kind === 'exact', `the match kind shown is "${kind}", not "exact" (the case matched by its digest)`);
    const order = await page.evaluate(() => {
      const m = document.getElementById('case-matches');
      const img = document.getElementById('preview-image');
      return {
        before: !!(m.compareDocumentPosition(img) & Node.DOCUMENT_POSITION_FOLLOWING),
        above: m.getBoundingClientRect().bottom <= img.getBoundingClientRect().top,
      };
    });
    check(order.before, 'the category and list come after the image in the document');
    check(order.above, 'the category and list are not shown above the image');
    check((await page.locator('#case-audit tbody tr').count()) > 0, 'the case shows no audit history');
    check((await text('#case-details')).includes('md5'), 'the case details show no digests');
  });

  let revealSeconds;
  let revealedUrl;
  await step('revealed', async () => {
    check(await page.locator('#reveal-button').isDisabled(), 'reveal is possible without a reason');
    await page.fill('#reveal-reason', 'browser test: checking the classification');
    check(await page.locator('#reveal-button').isEnabled(), 'reveal stays disabled with a reason');
    await page.click('#reveal-button');
    await page.waitForFunction(() => {
      const img = document.getElementById('preview-image');
      return (img && img.getAttribute('data-state') === 'revealed') || !document.getElementById('reveal-error').hidden;
    });
    check(!(await visible('#reveal-error')), `the reveal was refused: ${await text('#reveal-error')}`);
    const img = await imageState();
    check(img.src !== preview.src && img.src.startsWith('blob:'), 'the revealed image is not a new blob URL');
    check(!/blur\(/.test(img.filter), `the revealed image is still blurred by the page: ${img.filter}`);
    check(await visible('#reveal-countdown'), 'no countdown is shown');
    revealSeconds = Number(await page.getAttribute('#reveal-countdown', 'data-seconds'));
    const shown = Number(await text('#reveal-seconds'));
    check(revealSeconds > 0 && shown > 0 && shown <= revealSeconds, `the countdown shows "${await text('#reveal-countdown')}"`);
    check(revealSeconds <= 60, `a reveal lasts ${revealSeconds} s; start the server with HASHGATE_REVEAL_SECONDS=2 for this test`);
    revealedUrl = img.src;
  });

  await step('blurred-again', async () => {
    await page.waitForSelector('#preview-image[data-state="blurred"]', { timeout: (revealSeconds + 5) * 1000 });
    const img = await checkBlurred('after the reveal');
    check(img.src === preview.src, 'the re-blurred image is not the blurred preview');
    // An image element may load blob: URLs under the page's policy; a revoked one fails.
    const revoked = await page.evaluate((url) => new Promise((resolve) => {
      const probe = new Image();
      probe.onload = () => resolve(false);
      probe.onerror = () => resolve(true);
      probe.src = url;
    }), revealedUrl);
    check(revoked, 'the revealed image is still readable after the re-blur (blob URL not revoked)');
    check((await text('#reveal-countdown')).includes('Blurred again'), `the countdown shows "${await text('#reveal-countdown')}"`);
  });

  await step('confirmed-by-reviewer-a', async () => {
    await decide('confirm', 'browser test: first reviewer confirms', 'A1', true);
    check(!(await visible('#decision-error')), `the confirm was refused: ${await text('#decision-error')}`);
    await waitForStatus('awaiting_second_review');
  });

  await step('second-confirm-refused', async () => {
    await decide('confirm', 'browser test: the same reviewer again', 'A1', true);
    check(await visible('#decision-error'), 'a second confirm by the same reviewer was accepted');
    const message = await text('#decision-error');
    check(message.length > 'Not recorded: '.length, `the refusal has no message: "${message}"`);
    check((await caseStatus()) === 'awaiting_second_review', `the refused confirm changed the status to ${await caseStatus()}`);
    console.log(`     refusal shown: ${message}`);
  });

  await step('signed-out', async () => {
    await signOut();
  });

  await step('confirmed-by-reviewer-b', async () => {
    await signIn('reviewer-b');
    await openCaseFromQueue();
    await checkBlurred('reviewer-b\'s preview');
    check((await caseStatus()) === 'awaiting_second_review', `reviewer-b sees the case ${await caseStatus()}`);
    await decide('confirm', 'browser test: second reviewer confirms', 'A1', false);
    check(!(await visible('#decision-error')), `reviewer-b's confirm was refused: ${await text('#decision-error')}`);
    await waitForStatus('confirmed');
  });

  await step('audit-history', async () => {
    await page.waitForFunction(() => Array.from(document.querySelectorAll('#case-audit td.action')).filter((c) => c.textContent.trim() === 'decided').length >= 2, null, { timeout: STEP_TIMEOUT_MS }).catch(() => {});
    const actions = await auditActions();
    const count = (a) => actions.filter((x) => x === a).length;
    for (const [action, least] of [['viewed', 2], ['preview_served', 2], ['revealed', 1], ['decided', 2]]) {
      check(count(action) >= least, `the audit history has ${count(action)} "${action}" entries, expected at least ${least}: ${actions.join(', ')}`);
    }
    const reviewers = await page.$$eval('#case-reviews tbody tr td:nth-child(2)', (c) => c.map((x) => x.textContent.trim()));
    check(reviewers.includes('reviewer-a') && reviewers.includes('reviewer-b'), `the reviews shown are by ${reviewers.join(', ')}`);
    check(await page.locator('#decision-submit').isDisabled(), 'decisions are still offered on the confirmed case');
    await page.locator('#case-audit').scrollIntoViewIfNeeded();
  });

  await step('audit-admins-only', async () => {
    await page.click('#help-button');
    check(await page.locator('#help').isVisible(), 'the shortcut help does not open');
    await page.keyboard.press('Escape');
    await page.goto(new URL('#/audit', reviewUrl).href);
    await page.waitForSelector('#audit-error:not([hidden])');
    check(/admins only/i.test(await text('#audit-error')), `a reviewer sees "${await text('#audit-error')}" on the audit page`);
  });

  await step('reveals-of-reviewer-a', async () => {
    await signOut();
    await signIn('reviewer-a');
    await page.goto(new URL('#/me', reviewUrl).href);
    await page.waitForSelector('#me-body:not([hidden])');
    const count = await page.getAttribute('#me-count', 'data-count');
    check(count === '1', `reviewer-a's page shows ${count} reveals today ("${await text('#me-count')}"), not 1`);
    const rows = await page.$$eval('#me-reveals tbody tr', (r) => r.map((x) => x.textContent));
    check(rows.length === 1 && rows[0].includes(caseId), `reviewer-a's reveals list: ${JSON.stringify(rows)}`);
  });

  if (typeof users['admin-a'] === 'string') {
    await step('audit-verified-by-admin', async () => {
      await signOut();
      await signIn('admin-a');
      await page.goto(new URL('#/audit', reviewUrl).href);
      await page.waitForSelector('#audit-verdict[data-ok]');
      check((await page.getAttribute('#audit-verdict', 'data-ok')) === 'true', `the audit chain does not verify: ${await text('#audit-body')}`);
    });
  }

  await step('bad-token-back-to-sign-in', async () => {
    await page.evaluate(() => {
      const s = JSON.parse(sessionStorage.getItem('hashgate.session'));
      s.token = 'eyJhbGciOiJub25lIn0.eyJ1c2VybmFtZSI6Im1hbGxvcnkifQ.';
      sessionStorage.setItem('hashgate.session', JSON.stringify(s));
    });
    await page.goto(new URL('#/queue', reviewUrl).href);
    await page.reload();
    await page.waitForSelector('#view-signin:not([hidden])');
    check(/401/.test(await text('#signin-message')), `after a refused token the sign-in page says "${await text('#signin-message')}"`);
  });
} catch (err) {
  console.error(`review.mjs: FAILED at ${err.message}`);
  exitCode = 1;
} finally {
  fs.writeFileSync(path.join(artifacts, 'console.log'), consoleLines.join('\n') + '\n');
  if (exitCode !== 0 && consoleLines.length) {
    console.error('--- browser console (last 30 lines) ---');
    console.error(consoleLines.slice(-30).join('\n'));
  }
  await browser.close().catch(() => {});
  clearTimeout(watchdog);
}
if (exitCode === 0) console.log(`review.mjs: all checks passed; screenshots in ${artifacts}`);
process.exit(exitCode);
