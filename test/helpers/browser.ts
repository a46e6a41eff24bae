/**
 * Headless Debian Chromium through playwright-core, for the tests that log in the way a person does.
 * Never skips: a missing Chromium fails the test with how to install it.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/** Where Debian's `chromium` package puts the browser; USHER_TEST_CHROMIUM overrides it. */
export const CHROMIUM_PATH = process.env.USHER_TEST_CHROMIUM ?? '/usr/bin/chromium';

const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

export interface BrowserOptions {
  /**
   * A domain (such as `example.test`) whose hosts all resolve to 127.0.0.1 (`--host-resolver-rules`), so
   * that a test can sign in on one host name and use another, as across subdomains; requests to them go through.
   */
  loopbackDomain?: string;
}

/** Launches headless Chromium; close it yourself (or use withBrowser). */
export async function launchBrowser(opts: BrowserOptions = {}): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`Chromium not found at ${CHROMIUM_PATH}: run \`apt-get install -y chromium\` (or set USHER_TEST_CHROMIUM)`);
  }
  const args = opts.loopbackDomain ? [...ARGS, `--host-resolver-rules=MAP *.${opts.loopbackDomain} 127.0.0.1`] : ARGS;
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args, timeout: 30_000 });
}

const isLoopback = (url: URL, domain: string | undefined) =>
  ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname) ||
  (domain !== undefined && url.hostname.endsWith(`.${domain}`)) ||
  url.protocol === 'data:' ||
  url.protocol === 'about:';

/**
 * Runs `fn` with a new page in a new context of a freshly launched Chromium, and closes the browser
 * whatever happens. Requests to anything but loopback (and `opts.loopbackDomain`) are aborted (the IdP pages @import web fonts),
 * and every wait defaults to 10 s (navigations 15 s).
 */
export async function withBrowser<T>(fn: (page: Page, context: BrowserContext, browser: Browser) => Promise<T>, opts: BrowserOptions = {}): Promise<T> {
  const browser = await launchBrowser(opts);
  try {
    const context = await browser.newContext();
    await context.route(
      (url) => !isLoopback(url, opts.loopbackDomain),
      (route) => route.abort(),
    );
    const page = await context.newPage();
    page.setDefaultTimeout(10_000);
    page.setDefaultNavigationTimeout(15_000);
    return await fn(page, context, browser);
  } finally {
    await browser.close();
  }
}

/**
 * On a page showing oidc-provider's development login form (any login/password is accepted, and the
 * login becomes the `sub`): fills it, submits it, clicks through the consent page when one comes, and
 * waits until the browser has left the IdP and loaded the page it was sent to (the RP's callback, and
 * wherever that redirects). Returns that page's URL.
 */
export async function fillIdpLogin(page: Page, login: string, password = 'password'): Promise<string> {
  const idpOrigin = new URL(page.url()).origin;
  const offIdp = (url: URL) => url.origin !== idpOrigin;
  const form = page.locator('form:has(input[name="prompt"][value="login"])');
  await form.locator('input[name="login"]').fill(login);
  await form.locator('input[name="password"]').fill(password);
  await form.locator('button[type="submit"]').click();

  const consent = page.locator('form:has(input[name="prompt"][value="consent"]) button[type="submit"]');
  // Whichever comes first: the RP, or a consent page. The loser settles quietly later.
  const first = await Promise.race([
    page.waitForURL(offIdp, { waitUntil: 'load' }).then(
      () => 'rp' as const,
      (err: Error) => err,
    ),
    consent.waitFor({ state: 'visible' }).then(
      () => 'consent' as const,
      (err: Error) => err,
    ),
  ]);
  if (first instanceof Error) throw new Error(`after the IdP login form, at ${page.url()}: ${first.message}`);
  if (first === 'consent') {
    await consent.click();
    await page.waitForURL(offIdp, { waitUntil: 'load' });
  }
  return page.url();
}
