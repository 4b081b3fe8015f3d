// The first load of the built app: index.html and what it references (scripts, module
// preloads, styles, the manifest and icon), each as sent compressed (the build's .br / .gz).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const dist = process.argv[2] ?? 'dist';
const html = readFileSync(join(dist, 'index.html'), 'utf8');
const refs = ['/index.html', ...[...html.matchAll(/(?:src|href)="(\/[^"]+)"/g)].map((m) => m[1])];
const size = (file, ext) => (existsSync(file + ext) ? statSync(file + ext).size : statSync(file).size);
let br = 0;
let gz = 0;
let raw = 0;
for (const ref of new Set(refs)) {
  const file = join(dist, ref);
  raw += statSync(file).size;
  br += size(file, '.br');
  gz += size(file, '.gz');
}
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
console.log(`first load: ${new Set(refs).size} files, ${kb(gz)} gzip (${kb(br)} brotli, ${kb(raw)} uncompressed); target < 250 KB gzip`);
