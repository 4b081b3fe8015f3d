// Jest over one official test suite of a supabase-js checkout (SUITE_DIR: a package such as
// packages/core/storage-js; SUITE_FILES: its test files), transpiled only. The Supabase
// packages resolve to the checkout's own sources, the rest to the packages pinned here.
const path = require('node:path')

const packages = path.join(process.env.SUITE_DIR ?? '', '..')

module.exports = {
  rootDir: process.env.SUITE_DIR,
  roots: ['<rootDir>/test'],
  testMatch: (process.env.SUITE_FILES ?? '').split(' ').map((f) => `<rootDir>/test/${f}`),
  testEnvironment: 'node',
  modulePaths: [path.join(__dirname, 'node_modules')],
  moduleNameMapper: {
    '^@supabase/(auth|functions|postgrest|realtime|storage)-js$': `${packages}/$1-js/src/index.ts`,
    '^@supabase/tracing$': `${packages}/../shared/tracing/src/index.ts`,
  },
  transform: {
    '^.+\\.tsx?$': [
      require.resolve('ts-jest'),
      {
        diagnostics: false,
        tsconfig: {
          target: 'es2022',
          module: 'commonjs',
          esModuleInterop: true,
          isolatedModules: true,
          resolveJsonModule: true,
        },
      },
    ],
  },
  setupFiles: [path.join(__dirname, 'setup.cjs')],
  prettierPath: require.resolve('prettier'),
  // As upstream's configs: the clients retry with backoff, and a suite's files share one server.
  testTimeout: 30000,
  maxWorkers: 1,
  ci: true,
}
