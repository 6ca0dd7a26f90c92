#!/usr/bin/env node
// Makes the npm `solc` package (solcjs) look like a native solc binary to py-solc-x, so the
// Python side has one code path whichever compiler is found. py-solc-x only ever runs
// `<solc> --version` (and parses "Version: X.Y.Z+commit.H") and `<solc> --standard-json` with
// the input on stdin; this adapter answers exactly those two, stdout carrying only the
// version text or the output JSON. The `solcjs` CLI shipped with the package cannot stand in:
// it prints a bare version and rejects the standard-JSON flags py-solc-x uses.
//
// `solc` is loaded from the project's node_modules, located the way backend/paths.py does it:
// $ANCHORLINE_HOME/node_modules, else the checkout this file sits in (backend/chain/../..).
"use strict";

const fs = require("fs");
const path = require("path");

function fail(message) {
  process.stderr.write(message + "\n");
  process.exit(1);
}

function loadSolc() {
  const projectRoot = process.env.ANCHORLINE_HOME || path.resolve(__dirname, "..", "..");
  const modulePath = path.join(projectRoot, "node_modules", "solc");
  if (!fs.existsSync(path.join(modulePath, "package.json"))) {
    fail(`solcjs adapter: the npm package 'solc' is not installed at ${modulePath}; run \`npm ci\` in ${projectRoot}`);
  }
  return require(modulePath);
}

const args = process.argv.slice(2);
if (args.length !== 1 || (args[0] !== "--version" && args[0] !== "--standard-json")) {
  // Same wording as native solc, which py-solc-x turns into UnknownOption.
  const given = args.length ? `unrecognised option '${args.join(" ")}'` : "no option given";
  fail(`${given}: this solcjs adapter only supports --version and --standard-json`);
}

const solc = loadSolc();
if (args[0] === "--version") {
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
} else {
  let output;
  try {
    output = solc.compile(fs.readFileSync(0, "utf8"));
  } catch (err) {
    fail(`solcjs adapter: compilation crashed: ${err && err.stack ? err.stack : err}`);
  }
  // Like native solc, diagnostics travel inside the JSON and the exit status stays 0.
  process.stdout.write(output);
}
