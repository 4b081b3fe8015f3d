// After a build: no file of dist/ may hold a service_role key or the word itself (the app
// only ever has the anon key, served at run time).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const walk = (dir) => readdirSync(dir).flatMap((f) => (statSync(join(dir, f)).isDirectory() ? walk(join(dir, f)) : [join(dir, f)]));
const leaks = walk('dist').filter((f) => readFileSync(f).includes('service_role'));
if (leaks.length) {
  console.error(`service_role appears in the build: ${leaks.join(', ')}`);
  process.exit(1);
}
