/**
 * Helpers for the console's browser tests: axe-core checks and screenshots at a phone's and a desktop's width.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { expect } from 'vitest';
import { ROOT } from './process.js';

/** Git-ignored: every page at both widths, each run. */
export const SCREENSHOTS = join(ROOT, 'test', '.screenshots');
const AXE = join(ROOT, 'node_modules', 'axe-core', 'axe.min.js');
let axeSource: string | undefined;

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[] }[];
}

/** Runs axe-core on the page as it is, and fails on any serious or critical violation (listing them). */
export async function expectAccessible(page: Page): Promise<void> {
  // Evaluated through the DevTools protocol: page.addScriptTag would be an inline script, which the console's
  // CSP refuses (as it should); the browser context keeps that CSP on, so the tests see what people get.
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(axeSource ??= readFileSync(AXE, 'utf8'));
  const violations = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run: (ctx: Document) => Promise<{ violations: AxeViolation[] }> } }).axe;
    const result = await axe.run(document);
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target })) }));
  });
  const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(bad.map((v) => `${v.impact} ${v.id}: ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)).toEqual([]);
}

/** Screenshots the page at 1280 px and at 360 px wide (full page), then puts the width back. Answers the two files. */
export async function screenshots(page: Page, name: string): Promise<string[]> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const files: string[] = [];
  for (const width of [1280, 360]) {
    await page.setViewportSize({ width, height: width === 360 ? 740 : 800 });
    // Nothing wider than the viewport: no sideways scrolling on a phone.
    expect(await page.evaluate(() => document.documentElement.scrollWidth), `${name} at ${width}px`).toBeLessThanOrEqual(width);
    const file = join(SCREENSHOTS, `${name}-${width}.png`);
    await page.screenshot({ path: file, fullPage: true });
    files.push(file);
  }
  await page.setViewportSize({ width: 1280, height: 800 });
  return files;
}

/** Both checks, for a page in a state worth showing. */
export async function checkPage(page: Page, name: string): Promise<void> {
  await expectAccessible(page);
  await screenshots(page, name);
}

/** Signs in through the login page as a person would, and waits for My account. */
export async function signIn(page: Page, url: string, username = 'admin', password = 'admin-password'): Promise<void> {
  await page.goto(`${url}/login`);
  await page.getByLabel('Username', { exact: true }).fill(username);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByRole('heading', { name: 'My account' }).waitFor();
}

/** The console's navigation. */
export const nav = (page: Page) => page.getByRole('navigation', { name: 'Console' });

/** A list page's "1–50 of 90", as its pager says it. */
export const range = (page: Page) => page.getByRole('navigation', { name: 'Pages' }).getByRole('status').textContent();
