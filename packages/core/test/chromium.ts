/**
 * Debian's Chromium for the browser tests of every package, driven by playwright-core. A test
 * asks `hasChromium(t)` first: without /usr/bin/chromium it is skipped, by name (failed when
 * CI=true, where the browser tests must run); then `launchChromium()` starts it headless.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import type { TestContext } from 'node:test';
import { type Browser, chromium } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
const SKIP = 'Chromium not installed: apt-get install chromium';

/** True when Chromium is installed; otherwise skips `t` by name, or fails it when CI=true. */
export function hasChromium(t: TestContext): boolean {
  if (existsSync(CHROMIUM)) return true;
  if (process.env.CI === 'true') assert.fail(`${SKIP} (required when CI=true)`);
  t.skip(SKIP);
  return false;
}

/**
 * Starts Chromium headless, without its sandbox (it cannot start one as root, nor in many
 * containers) and without its background traffic (updates, sync, first-run pages).
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}
