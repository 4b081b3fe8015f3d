import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { defineConfig, type Plugin } from 'vite';

/** Writes the build's file list and a version into the service worker (`dist/sw.js`). */
function shell(): Plugin {
  return {
    name: 'tally-shell',
    apply: 'build',
    generateBundle(_options, bundle) {
      const sw = Object.values(bundle).find((f) => f.type === 'chunk' && f.name === 'sw');
      if (!sw || sw.type !== 'chunk') return;
      const files = Object.keys(bundle)
        .filter((f) => f !== sw.fileName && !f.endsWith('.map') && f !== 'index.html')
        .map((f) => `/${f}`)
        .sort();
      const version = createHash('sha256').update(files.join('\n')).digest('hex').slice(0, 12);
      sw.code = sw.code.replace('__TALLY_SHELL__', JSON.stringify(files).replace(/'/g, "\\'")).replace('__TALLY_VERSION__', version);
    },
  };
}

/** Writes `.br` and `.gz` beside each text file of the build, for `tally serve` to send to
 * browsers that accept them (no compression work per request). */
function precompress(): Plugin {
  return {
    name: 'tally-precompress',
    apply: 'build',
    closeBundle() {
      const walk = (dir: string): string[] =>
        readdirSync(dir).flatMap((f) => (statSync(join(dir, f)).isDirectory() ? walk(join(dir, f)) : [join(dir, f)]));
      for (const file of walk('dist').filter((f) => /\.(js|css|html|svg|webmanifest|json)$/.test(f))) {
        const bytes = readFileSync(file);
        if (bytes.length < 1024) continue;
        writeFileSync(`${file}.gz`, gzipSync(bytes, { level: 9 }));
        writeFileSync(`${file}.br`, brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }));
      }
    },
  };
}

/** `npm run dev`: the services of the Tally at TALLY_URL, reached through Vite's own origin. */
const tally = process.env.TALLY_URL ?? 'http://127.0.0.1:54321';
const proxy = Object.fromEntries(
  ['/auth', '/rest', '/storage', '/functions', '/app-config.json'].map((p) => [p, { target: tally }]),
);

export default defineConfig({
  plugins: [shell(), precompress()],
  server: { proxy: { ...proxy, '/realtime': { target: tally, ws: true } } },
  build: {
    target: 'es2022',
    rollupOptions: {
      input: { index: 'index.html', sw: 'src/sw.ts' },
      output: {
        entryFileNames: (chunk) => (chunk.name === 'sw' ? 'sw.js' : 'assets/[name]-[hash].js'),
      },
    },
  },
});
