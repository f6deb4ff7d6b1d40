// Entry point of the `torpor` CLI (bin/torpor.js requires this file).
import { run } from './program';

run(process.argv).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`error: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
