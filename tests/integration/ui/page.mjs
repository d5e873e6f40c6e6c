// SPDX-License-Identifier: Apache-2.0
// Drives kiln's flame graph page in Debian's headless Chromium with
// playwright-core (agent/http/ui/package-lock.json pins it), and prints
// what it saw as one JSON object for tests/integration/test_ui.py to judge:
// console errors, speedscope's sandwich table (its DOM) for all processes,
// for one pid and for another, whether a new window showed itself without
// a reload, and a screenshot.
//   node page.mjs BASE_URL PID OTHER_PID SCREENSHOT.png
import { createRequire } from 'module';
import path from 'path';
import { fileURLToPath } from 'url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '../../../agent/http/ui/package.json'));
const { chromium } = require('playwright-core');

const [base, pid, otherPid, screenshot] = process.argv.slice(2);
const result = { errors: [], steps: [] };
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  // SwiftShader: WebGL (speedscope draws with it) without a GPU.
  args: ['--no-sandbox', '--enable-unsafe-swiftshader', '--use-angle=swiftshader'],
});

try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.on('console', (message) => {
    if (message.type() === 'error') result.errors.push(message.text());
  });
  page.on('pageerror', (error) => result.errors.push(error.message));

  const body = page.locator('body');
  const loads = async () => Number(await body.getAttribute('data-loads') || 0);

  // The frame of the viewer's load number n, once it has navigated there.
  async function viewerFrame(n) {
    const deadline = Date.now() + 20000;
    for (;;) {
      const frame = page.frames().find((f) => f.url().includes(`/viewer/index.html?load=${n}#`));
      if (frame) return frame;
      if (Date.now() > deadline) throw new Error(`the viewer never loaded profile ${n}`);
      await page.waitForTimeout(100);
    }
  }

  // The viewer has imported the profile asked for after load number before,
  // and shows its sandwich table with rows in it.
  async function sandwich(before) {
    await page.waitForFunction((n) => Number(document.body.dataset.loads || 0) > n, before,
      { timeout: 20000 });
    const frame = await viewerFrame(await loads());
    await frame.getByText('Sandwich').click({ timeout: 20000 });
    await frame.waitForFunction(() => /\d\s*(ns|µs|ms|s) \(/.test(document.body.innerText),
      null, { timeout: 20000 });
    return await frame.locator('body').innerText();
  }

  const started = Date.now();
  await page.goto(base + '/');
  await page.waitForFunction(() => Number(document.body.dataset.windows || 0) >= 1,
    null, { timeout: 30000 });
  await (await viewerFrame(await loads())).getByText('Sandwich').waitFor({ timeout: 20000 });
  result.load_ms = Date.now() - started;

  // One window picked: the proportions are read from a profile that stays.
  let before = await loads();
  const picked = await page.locator('#window option').nth(1).getAttribute('value');
  await page.selectOption('#window', picked);
  result.picked = picked;
  result.all = await sandwich(before);
  result.steps.push('all');

  before = await loads();
  await page.selectOption('#pid', pid);
  result.pid = await sandwich(before);
  result.pid_url = await body.getAttribute('data-shown');
  result.steps.push('pid');
  // The flame graph of that process, for the README.
  await (await viewerFrame(await loads())).getByText('Left Heavy').click();
  await page.waitForTimeout(500);
  await page.screenshot({ path: screenshot });

  before = await loads();
  await page.selectOption('#pid', otherPid);
  result.other = await sandwich(before);
  result.steps.push('other');

  // Following the newest again: a window written from now on shows itself.
  await page.selectOption('#pid', '');
  await page.selectOption('#window', '');
  await page.evaluate(() => { window.kilnTestMarker = 'not reloaded'; });
  const windows = Number(await body.getAttribute('data-windows'));
  before = await loads();
  await page.waitForFunction(
    ([w, l]) => Number(document.body.dataset.windows) > w && Number(document.body.dataset.loads) > l,
    [windows, before], { timeout: 30000 });
  result.follow = {
    windows_before: windows,
    windows_after: Number(await body.getAttribute('data-windows')),
    marker: await page.evaluate(() => window.kilnTestMarker),
    shown: await body.getAttribute('data-shown'),
  };
  result.steps.push('follow');
} catch (error) {
  result.failure = String(error && error.message || error);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
