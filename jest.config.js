/**
 * One jest config for every tier; native tests run real processes, so they run in band.
 * @kubernetes/client-node 1.x (and a few of its dependencies) ship as ES modules only: jest runs
 * CommonJS, so those packages are transformed too (ts-jest with allowJs).
 */
const esmPackages = ['@kubernetes/client-node', 'openid-client', 'oauth4webapi', 'jose', 'hpagent', 'isomorphic-ws'];

module.exports = {
  testEnvironment: 'node',
  transform: {
    '^.+\\.[tj]s$': ['ts-jest', { tsconfig: { module: 'commonjs', esModuleInterop: true, strict: true, allowJs: true }, diagnostics: { exclude: ['**/node_modules/**'] } }],
  },
  transformIgnorePatterns: [`/node_modules/(?!(${esmPackages.join('|')})/)`],
  testMatch: ['<rootDir>/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  testTimeout: 120000,
  reporters: ['default', '<rootDir>/scripts/jest-summary-reporter.js'],
};
