// Test helper: one wssignd process on port 0 (the ports come from its
// event=ready line), stopped with SIGTERM; restart() keeps the ports.
// Also the RFC 8032 test key and the paths of the repository.

import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = process.env.WSSIGND_SOURCE_DIR || path.resolve(HERE, "..", "..", "..");
export const BUILD = process.env.WSSIGND_BUILD_DIR || path.join(REPO, "build");
export const BIN = process.env.WSSIGND_BIN || path.join(BUILD, "wssignd");
export const SEED = Buffer.from("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", "hex");
export const SEED_PUBLIC_B64 = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";

const READY_RE = /event=ready .*?\blisten=(\S+) .*?\bcontrol=(\S+)/;
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function tmpdir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), "wssign-js-test-"));
}

/** Polls pred() until it is true (or throws after timeoutMs). */
export async function until(pred, what = "condition", timeoutMs = 5000) {
  const end = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

export class Daemon {
  constructor(config = {}) {
    this.tmp = tmpdir();
    this.config = { listen: "127.0.0.1:0", ...config, control: { listen: "127.0.0.1:0", ...(config.control || {}) } };
    this.log = "";
    this.proc = null;
  }

  async start() {
    const configPath = path.join(this.tmp, "wssignd.json");
    fs.writeFileSync(configPath, JSON.stringify(this.config), { mode: 0o600 });
    this.log = "";
    this.proc = spawn(BIN, ["-c", configPath], { stdio: ["ignore", "pipe", "pipe"] });
    this.exited = new Promise((resolve) => this.proc.on("exit", (code, signal) => resolve({ code, signal })));
    const collect = (chunk) => { this.log += chunk.toString(); };
    this.proc.stdout.on("data", collect);
    this.proc.stderr.on("data", collect);
    let exit = null;
    this.exited.then((e) => { exit = e; });
    await until(() => {
      if (exit) throw new Error(`wssignd exited ${JSON.stringify(exit)} before event=ready:\n${this.log}`);
      return READY_RE.test(this.log);
    }, "event=ready", 10000);
    const [, listen, control] = READY_RE.exec(this.log);
    this.port = Number(listen.split(":").pop());
    this.controlPort = Number(control.split(":").pop());
    // A restart binds the same ports.
    this.config.listen = listen;
    this.config.control.listen = control;
    return this;
  }

  get wsUrl() {
    return `ws://127.0.0.1:${this.port}/v1/ws`;
  }

  get controlUrl() {
    return `http://127.0.0.1:${this.controlPort}`;
  }

  /** SIGTERM; resolves with the exit status (SIGKILL after 5 s). */
  async stop() {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return null;
    this.proc.kill("SIGTERM");
    const timer = sleep(5000).then(() => null);
    const result = await Promise.race([this.exited, timer]);
    if (result) return result;
    this.proc.kill("SIGKILL");
    return this.exited;
  }

  async restart() {
    await this.stop();
    return this.start();
  }
}

/** Runs fn(daemon) with a started daemon and always stops it; on failure prints its log. */
export async function withDaemon(config, fn) {
  const d = await new Daemon(config).start();
  try {
    return await fn(d);
  } catch (e) {
    console.log(`--- wssignd log ---\n${d.log.split("\n").slice(-60).join("\n")}\n--- end ---`);
    throw e;
  } finally {
    const r = await d.stop();
    fs.rmSync(d.tmp, { recursive: true, force: true });
    if (r && r.code !== 0 && r.code !== null) throw new Error(`wssignd exited ${r.code}`);
  }
}
