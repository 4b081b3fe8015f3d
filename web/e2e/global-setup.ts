// Before the browsers start: the voice note Chromium's fake microphone plays, spoken by
// espeak-ng (installed by scripts/system-packages) — Chromium reads it at launch.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

export const VOICE = 'I spent two hours on the Apollo redesign.';

export default function setup(): void {
  const file = resolve(process.env.TALLY_E2E_VOICE ?? 'test-results/voice.wav');
  mkdirSync(dirname(file), { recursive: true });
  execFileSync('espeak-ng', ['-v', 'en-us', '-s', '150', '-w', file, VOICE]);
}
