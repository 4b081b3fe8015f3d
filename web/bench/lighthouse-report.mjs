// One line per Lighthouse run: the three scores and the metrics behind performance.
import { readFileSync } from 'node:fs';

const [preset, file] = process.argv.slice(2);
const report = JSON.parse(readFileSync(file, 'utf8'));
const score = (c) => Math.round(report.categories[c].score * 100);
const metric = (a) => report.audits[a].displayValue;
console.log(
  `lighthouse ${report.lighthouseVersion} (${preset}): performance ${score('performance')}, accessibility ${score('accessibility')}, ` +
    `best practices ${score('best-practices')} — first contentful paint ${metric('first-contentful-paint')}, ` +
    `largest ${metric('largest-contentful-paint')}, total blocking ${metric('total-blocking-time')}, ` +
    `layout shift ${metric('cumulative-layout-shift')}, ${Math.round(report.audits['total-byte-weight'].numericValue / 1024)} KiB transferred`,
);
