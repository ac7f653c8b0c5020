// The JavaScript package: `npm pack` holds the sources and declarations
// only, the declarations compile under --strict against a typed use of the
// API and the examples, and the ten-line examples (clients/js/examples/,
// shown in docs/CLIENTS.md) sign for the daemon in Node.

import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";

import * as wssign from "../../../clients/js/src/index.js";
import { HERE, REPO, SEED, tmpdir, until, withDaemon } from "./daemon.mjs";

const PKG = path.join(REPO, "clients", "js");
const EXAMPLES = path.join(PKG, "examples");

/** A directory where `@wssign/client` resolves to clients/js. */
function project() {
  const dir = tmpdir();
  fs.mkdirSync(path.join(dir, "node_modules", "@wssign"), { recursive: true });
  fs.symlinkSync(PKG, path.join(dir, "node_modules", "@wssign", "client"));
  return dir;
}

test("npm pack holds the sources and the declarations", () => {
  const out = JSON.parse(execFileSync("npm", ["pack", "--dry-run", "--json"], { cwd: PKG, stdio: ["ignore", "pipe", "ignore"] }));
  const files = out[0].files.map((f) => f.path).sort();
  for (const want of ["package.json", "README.md", "src/index.js", "src/index.d.ts", "src/signer.js", "src/client.js"]) {
    assert.ok(files.includes(want), `${want} missing from ${files}`);
  }
  assert.equal(files.some((f) => f.startsWith("node_modules") || f.startsWith("examples")), false, String(files));
  assert.equal(out[0].name, "@wssign/client");
});

test("the declarations compile under --strict", () => {
  const dir = project();
  try {
    for (const f of ["signer.mjs", "request.mjs"]) fs.copyFileSync(path.join(EXAMPLES, f), path.join(dir, f));
    fs.copyFileSync(path.join(HERE, "types.ts"), path.join(dir, "types.ts"));
    fs.writeFileSync(path.join(dir, "tsconfig.json"), JSON.stringify({
      compilerOptions: { strict: true, noEmit: true, module: "nodenext", moduleResolution: "nodenext", target: "es2022",
        lib: ["es2022", "dom"], types: [], allowJs: true, checkJs: true, skipLibCheck: false },
      files: ["globals.d.ts", "types.ts", "signer.mjs", "request.mjs"],
    }));
    fs.writeFileSync(path.join(dir, "globals.d.ts"), "declare const process: { env: Record<string, string | undefined>; on(e: string, f: () => void): void };\n");
    const tsc = path.join(PKG, "node_modules", "typescript", "bin", "tsc");
    try {
      execFileSync(process.execPath, [tsc, "-p", dir, "--pretty", "false"], { cwd: dir, stdio: "pipe" });
    } catch (e) {
      assert.fail(`tsc:\n${e.stdout}${e.stderr}`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("the examples are in the docs", () => {
  const doc = fs.readFileSync(path.join(REPO, "docs", "CLIENTS.md"), "utf8");
  for (const f of ["signer.mjs", "request.mjs"]) {
    const code = fs.readFileSync(path.join(EXAMPLES, f), "utf8");
    assert.ok(code.trim().split("\n").length <= 11, `${f} is longer than ten lines`);
    assert.ok(doc.includes("```js\n" + code + "```"), `${f} is not shown as is in CLIENTS.md`);
  }
});

test("the examples sign for the daemon", () => withDaemon({}, async (d) => {
  const dir = project();
  const example = (f) => {
    const code = fs.readFileSync(path.join(EXAMPLES, f), "utf8")
      .replace("ws://127.0.0.1:8080", d.wsUrl.replace("/v1/ws", "")).replace("http://127.0.0.1:8081", d.controlUrl);
    fs.writeFileSync(path.join(dir, f), code);
    return path.join(dir, f);
  };
  fs.writeFileSync(path.join(dir, "signer.key"), SEED.toString("hex") + "\n", { mode: 0o600 });
  const signer = spawn(process.execPath, [example("signer.mjs")], { cwd: dir, stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  signer.stdout.on("data", (c) => { out += c; });
  try {
    await until(() => out.includes("signer: introduced"), "the example signer's introduction", 10000);
    const printed = execFileSync(process.execPath, [example("request.mjs")], { cwd: dir }).toString().trim();
    assert.match(printed, /^[A-Za-z0-9+/]{86}==$/);
    const key = await wssign.Key.fromSeed(SEED);
    assert.ok(await wssign.verify(key.publicKey, new TextEncoder().encode("invoice:42"), wssign.protocol.b64decode(printed)));
  } finally {
    signer.kill("SIGTERM");
    await new Promise((r) => signer.on("exit", r));
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.match(out, /signer: closed/);
}));
