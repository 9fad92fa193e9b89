#!/usr/bin/env node
/** The `pubflow` bin (package.json): `npx pubflow --help`. */
import { main } from './program';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`pubflow: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 3;
  },
);
