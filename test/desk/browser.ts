/**
 * Headless Chromium for the desk tests: Debian's `chromium` package, provisioned by scripts/provision.sh (`make
 * tools`), driven by puppeteer-core (which never downloads a browser). Found via PUBFLOW_CHROMIUM_PATH, .tools/env,
 * or `chromium` on PATH. A missing browser fails the test, saying what to run; it is never skipped.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { readToolEnv } from '../helpers/tools';

export function chromiumPath(): string {
  const explicit = process.env.PUBFLOW_CHROMIUM_PATH;
  if (explicit) {
    if (existsSync(explicit)) return explicit;
    throw new Error(`PUBFLOW_CHROMIUM_PATH=${explicit} does not exist; unset it, or run \`make tools\``);
  }
  const provisioned = readToolEnv().PUBFLOW_CHROMIUM;
  if (provisioned && existsSync(provisioned)) return provisioned;
  for (const name of ['chromium', 'chromium-browser']) {
    try {
      const found = execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();
      if (found) return found;
    } catch {
      // not on PATH
    }
  }
  throw new Error(
    "no Chromium for the desk browser tests: run `make tools` (scripts/provision.sh installs Debian's chromium " +
      'package as root), or set PUBFLOW_CHROMIUM_PATH to a Chromium binary',
  );
}

export async function launchBrowser(): Promise<Browser> {
  return puppeteer.launch({
    executablePath: chromiumPath(),
    headless: true,
    // --no-sandbox: the tests run as root in CI, where Chromium's sandbox refuses to start.
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--no-first-run', '--disable-extensions'],
  });
}

/** Signs in through the form with `token`, ending on the overview. */
export async function signIn(page: Page, baseUrl: string, token: string): Promise<void> {
  await page.goto(`${baseUrl}/ui/login`);
  await page.type('input[name="token"]', token);
  await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
}

/** Waits until the page's text content of `selector` satisfies `pred` (polled in the browser). */
export async function waitForText(page: Page, selector: string, pred: string, timeout = 30_000): Promise<void> {
  await page.waitForFunction(
    (sel: string, re: string) => {
      // Runs in the page (this project's tsconfig has no DOM lib).
      type Doc = { querySelector(s: string): { textContent: string | null } | null };
      const el = (globalThis as unknown as { document: Doc }).document.querySelector(sel);
      return !!el && new RegExp(re).test(el.textContent ?? '');
    },
    { timeout },
    selector,
    pred,
  );
}
