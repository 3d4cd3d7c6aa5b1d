// Runs a command against a real Calmony Pay daemon on its own redis-server, then stops both:
//
//   node clients/typescript/scripts/with-daemon.mjs -- <command> [args…]
//
// The daemon is target/debug/calmony-payd (built with `cargo build -p calmony-payd` when it is
// missing, or $CALMONY_PAYD_BIN); redis-server listens on a free loopback port (never 6379)
// with a temporary directory. The command gets CALMONY_API_BASE (http://127.0.0.1:<port>),
// CALMONY_API_KEY (a test key of project "acme") and CALMONY_OPERATOR_TOKEN (the sandbox's).
// Extra daemon settings pass through as CALMONY_* variables of the caller's own.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, existsSync, openSync } from "node:fs";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";

const repo = resolve(fileURLToPath(new URL("../../..", import.meta.url)));

export function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function accepts(port) {
  return new Promise((ok) => {
    const c = connect(port, "127.0.0.1");
    c.once("connect", () => {
      c.destroy();
      ok(true);
    });
    c.once("error", () => ok(false));
  });
}

export function daemonBinary() {
  const target = process.env.CARGO_TARGET_DIR ? resolve(repo, process.env.CARGO_TARGET_DIR) : join(repo, "target");
  const bin = process.env.CALMONY_PAYD_BIN ?? join(target, "debug/calmony-payd");
  if (!existsSync(bin)) {
    const r = spawnSync("cargo", ["build", "-p", "calmony-payd"], { cwd: repo, stdio: "inherit" });
    if (r.status !== 0) throw new Error("cargo build -p calmony-payd failed");
  }
  return bin;
}

/** Starts redis-server and the daemon; answers { base, key, operatorToken, stop() }. */
export async function startDaemon(extraEnv = {}) {
  const bin = daemonBinary();
  const dir = mkdtempSync(join(tmpdir(), "calmony-sdk-"));
  const redisPort = await freePort();
  const redis = spawn(
    "redis-server",
    ["--port", String(redisPort), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no", "--logfile", join(dir, "redis.log")],
    { stdio: "ignore" },
  );
  for (let i = 0; !(await accepts(redisPort)); i++) {
    if (i > 200) throw new Error(`redis-server did not listen on ${redisPort}`);
    await sleep(25);
  }
  const port = await freePort();
  const operatorToken = randomBytes(16).toString("hex");
  const env = {
    ...process.env,
    CALMONY_LISTEN: `127.0.0.1:${port}`,
    CALMONY_REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    CALMONY_DATA_DIR: join(dir, "data"),
    CALMONY_LOG_LEVEL: "info",
    CALMONY_API_BOOTSTRAP_TEST_KEY: "false",
    CALMONY_SHUTDOWN_GRACE_SECONDS: "5",
    CALMONY_SANDBOX_OPERATOR_TOKEN: operatorToken,
    ...extraEnv,
  };
  const logPath = join(dir, "daemon.log");
  const daemon = spawn(bin, ["serve"], { env, stdio: ["ignore", "ignore", openSync(logPath, "w")] });
  const stop = async () => {
    daemon.kill("SIGTERM");
    redis.kill("SIGTERM");
    await sleep(200);
    rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; ; i++) {
    const log = existsSync(logPath) ? readFileSync(logPath, "utf8") : "";
    if (log.includes("calmony-payd is serving")) break;
    if (daemon.exitCode !== null || i > 1200) {
      await stop();
      throw new Error(`the daemon did not start:\n${log}`);
    }
    await sleep(25);
  }
  const made = spawnSync(bin, ["keys", "create", "--project", "acme", "--mode", "test"], { env, encoding: "utf8" });
  const key = (made.stdout ?? "").trim();
  if (made.status !== 0 || !key.startsWith("sk_test_")) {
    await stop();
    throw new Error(`keys create failed: ${made.stderr}`);
  }
  return { base: `http://127.0.0.1:${port}`, key, operatorToken, logPath, stop };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const at = process.argv.indexOf("--");
  const command = at >= 0 ? process.argv.slice(at + 1) : [];
  if (command.length === 0) {
    console.error("usage: node with-daemon.mjs -- <command> [args…]");
    process.exit(2);
  }
  const d = await startDaemon();
  const child = spawn(command[0], command.slice(1), {
    stdio: "inherit",
    env: { ...process.env, CALMONY_API_BASE: d.base, CALMONY_API_KEY: d.key, CALMONY_OPERATOR_TOKEN: d.operatorToken },
  });
  const code = await new Promise((ok) => child.on("exit", (c, sig) => ok(c ?? (sig ? 1 : 0))));
  await d.stop();
  process.exit(code);
}
