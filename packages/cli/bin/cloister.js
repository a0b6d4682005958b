#!/usr/bin/env node
// The `cloister` command. Runs the compiled CLI (built by `npm install`'s prepare step, `tsc -b`).
import { main } from '../dist/src/main.js';

process.exitCode = await main(process.argv);
