// Jest over the official postgrest-js test files (POSTGREST_JS_TESTS: a checkout's
// packages/core/postgrest-js/test), transpiled only, against Tally through setup.cjs.
const path = require('node:path')

// Older files are written for Jest 28's snapshots (`Object {`), newer ones for today's.
const legacy = process.env.SNAPSHOT_LEGACY === '1'

// The client under test: the checkout's own sources (its tests expect them), else
// POSTGREST_JS_CLIENT (a module), else the released one pinned here.
const sources = path.join(process.env.POSTGREST_JS_TESTS ?? '', '..', 'src', 'index.ts')
const client = require('node:fs').existsSync(sources)
  ? sources
  : (process.env.POSTGREST_JS_CLIENT ?? '@supabase/postgrest-js')

module.exports = {
  rootDir: process.env.POSTGREST_JS_TESTS,
  testMatch: ['<rootDir>/*.test.ts'],
  testEnvironment: 'node',
  modulePaths: [path.join(__dirname, 'node_modules')],
  moduleNameMapper: { '^\\.\\./src(/index)?$': client },
  transform: {
    '^.+\\.ts$': [
      require.resolve('ts-jest'),
      {
        diagnostics: false,
        tsconfig: {
          target: 'es2022',
          module: 'commonjs',
          esModuleInterop: true,
          isolatedModules: true,
        },
      },
    ],
  },
  setupFiles: [path.join(__dirname, 'setup.cjs')],
  snapshotFormat: { escapeString: legacy, printBasicPrototype: legacy },
  // As upstream's config: the client retries failed requests with backoff.
  testTimeout: 30000,
  ci: true,
}
