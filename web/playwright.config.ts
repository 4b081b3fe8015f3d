// End-to-end tests of the web app and the Figma plugin in Debian's Chromium (never a
// downloaded browser), against a real Tally: TALLY_URL (the Rust harness starts one on a
// fresh database and passes its keys). The app is reached through a proxy the tests stop and
// restart to cut the network (e2e/support.ts).
import { resolve } from 'node:path';
import { defineConfig } from '@playwright/test';
import { ZONE } from './e2e/zone';

// The test code's own dates (seeded logs, this week's Monday) in the browser's time zone.
process.env.TZ = ZONE;

export default defineConfig({
  testDir: 'e2e',
  globalSetup: './e2e/global-setup.ts',
  workers: 1,
  fullyParallel: false,
  timeout: 90_000,
  expect: { timeout: 10_000 },
  reporter: [['list']],
  outputDir: 'test-results/output',
  use: {
    serviceWorkers: 'allow',
    permissions: ['microphone'],
    locale: 'en-GB',
    timezoneId: ZONE,
    viewport: { width: 1280, height: 860 },
    launchOptions: {
      executablePath: process.env.TALLY_CHROMIUM ?? '/usr/bin/chromium',
      args: [
        '--use-fake-ui-for-media-stream',
        '--use-fake-device-for-media-stream',
        `--use-file-for-fake-audio-capture=${resolve(process.env.TALLY_E2E_VOICE ?? 'test-results/voice.wav')}%noloop`,
      ],
    },
  },
});
