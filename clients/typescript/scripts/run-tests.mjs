// The SDK's tests: regenerate the types from the running daemon's /openapi.json and fail if
// the committed src/generated.ts differs, then run the compiled tests (dist-test/*.test.js)
// with Node's test runner against the real daemon.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { generate } from "./generate-types.mjs";
import { startDaemon } from "./with-daemon.mjs";

const d = await startDaemon();
let code = 1;
try {
  const doc = await (await fetch(`${d.base}/openapi.json`)).json();
  const committed = readFileSync(new URL("../src/generated.ts", import.meta.url), "utf8");
  if (committed !== generate(doc)) {
    console.error("src/generated.ts differs from the daemon's /openapi.json: run `node scripts/generate-types.mjs <url>/openapi.json` and commit it");
    process.exitCode = 1;
  } else {
    const tests = readdirSync(new URL("../dist-test", import.meta.url))
      .filter((f) => f.endsWith(".test.js"))
      .map((f) => `dist-test/${f}`);
    const child = spawn(process.execPath, ["--test", ...tests], {
      stdio: "inherit",
      cwd: new URL("..", import.meta.url),
      env: { ...process.env, CALMONY_API_BASE: d.base, CALMONY_API_KEY: d.key, CALMONY_OPERATOR_TOKEN: d.operatorToken },
    });
    code = await new Promise((ok) => child.on("exit", (c) => ok(c ?? 1)));
    process.exitCode = code;
  }
} finally {
  await d.stop();
}

// `npm pack` makes a tarball that installs and loads both ways.
if (process.exitCode === 0 || process.exitCode === undefined) {
  const dir = mkdtempSync(join(tmpdir(), "calmony-pack-"));
  const run = (cmd, args, cwd) => {
    const r = spawnSync(cmd, args, { cwd, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr}`);
    return r.stdout.trim();
  };
  try {
    const tgz = run("npm", ["pack", "--silent", "--pack-destination", dir], new URL("..", import.meta.url).pathname);
    writeFileSync(join(dir, "package.json"), '{ "name": "pack-check", "private": true }');
    run("npm", ["install", "--silent", "--no-audit", "--no-fund", join(dir, tgz.split("\n").pop())], dir);
    run(process.execPath, ["-e", 'const { CalmonyPay } = require("calmony-pay"); if (typeof CalmonyPay.webhooks.verifySignature !== "function") process.exit(1)'], dir);
    run(process.execPath, ["--input-type=module", "-e", 'import { CalmonyPay } from "calmony-pay"; if (typeof new CalmonyPay({ apiKey: "sk_test_x" }).customers.list !== "function") process.exit(1)'], dir);
    console.log(`npm pack: ${tgz} installs and loads with require and import`);
  } catch (e) {
    console.error(`npm pack check failed: ${e.message}`);
    process.exitCode = 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
