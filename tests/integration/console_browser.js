// console_browser.js URL TOPIC GROUP LAG VICTIM - drives Debian's chromium
// (playwright-core) through the admin console at URL: the page must show
// TOPIC's partitions and GROUP's lag of LAG records on TOPIC-0 after the
// script has redrawn it; then it prints "READY" and waits for a line on
// stdin (the test stops broker VICTIM meanwhile), after which the page must
// show that broker as down. Prints "DOWN" and exits 0; any failure, a page
// error or a blocked resource exits 1. Every wait has a deadline.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const readline = require('readline');
const { chromium } = require('playwright-core');

const [url, topic, group, lag, victim] = process.argv.slice(2);
const WAIT_MS = 60000;

function nextLine() {
  const rl = readline.createInterface({ input: process.stdin });
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no go-ahead on stdin')), 120000);
    rl.once('line', () => { clearTimeout(t); rl.close(); resolve(); });
  });
}

async function main() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'chronik-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    timeout: WAIT_MS,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const errors = [];
  try {
    const page = ctx.pages()[0] || await ctx.newPage();
    page.on('pageerror', (e) => errors.push('page error: ' + e.message));
    page.on('console', (m) => { if (m.type() === 'error') errors.push('console: ' + m.text()); });
    page.on('requestfailed', (r) => errors.push('request failed: ' + r.url()));
    const resp = await page.goto(url, { timeout: WAIT_MS });
    if (!resp.ok()) throw new Error('GET / answered ' + resp.status());
    // redrawn by the script (not only the server's rendering)
    await page.waitForFunction(() => document.getElementById('console').dataset.updated, null, { timeout: WAIT_MS });
    await page.waitForSelector(`#topics tr[data-topic="${topic}"]`, { timeout: WAIT_MS });
    await page.waitForFunction(([g, t, want]) => [...document.querySelectorAll('#groups tr')]
      .some((tr) => tr.dataset.group === g && tr.cells[3].textContent === t + '-0' && tr.cells[6].textContent === want),
    [group, topic, lag], { timeout: WAIT_MS });
    // every broker with its registered listeners
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll('#brokers tr[data-broker]')];
      return rows.length > 0 && rows.every((tr) => /^PLAINTEXT 127\.0\.0\.1:\d+ \(PLAINTEXT\)$/.test(tr.cells[2].textContent));
    }, null, { timeout: WAIT_MS });
    // the rate charts: one per counter, each with a line once two answers have come
    await page.waitForFunction(() => [...document.querySelectorAll('#rates svg polyline')]
      .filter((l) => l.getAttribute('points').split(' ').length >= 2).length === 3, null, { timeout: WAIT_MS });
    if (errors.length) throw new Error(errors.join('; '));
    console.log('READY');
    await nextLine();
    await page.waitForSelector(`#brokers tr[data-broker="${victim}"] td.state-down`, { timeout: WAIT_MS });
    await page.waitForFunction((v) => [...document.querySelectorAll('#problems li')]
      .some((li) => li.textContent === `broker ${v} is down`), victim, { timeout: WAIT_MS });
    if (errors.length) throw new Error(errors.join('; '));
    console.log('DOWN');
  } finally {
    await ctx.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

main().then(() => process.exit(0), (e) => { console.error(e.stack || String(e)); process.exit(1); });
