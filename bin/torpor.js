#!/usr/bin/env node
// The CLI is TypeScript compiled to dist/ by `npm run build` (npm start and npm test build too).
const path = require('node:path');
const main = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
try {
  require.resolve(main);
} catch {
  process.stderr.write('torpor: the CLI is not built yet: run `npm ci && npm run build` in ' + path.dirname(__dirname) + '\n');
  process.exit(2);
}
require(main);
