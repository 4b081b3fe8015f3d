import { createHash } from 'node:crypto';
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

export default defineConfig({
  plugins: [shell()],
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
