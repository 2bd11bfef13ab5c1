// CPU profile of the Worker under `wrangler dev`, through its inspector (the Chrome
// DevTools protocol): where a request's time goes, by function, while a fixed load of
// GETs runs. A measuring aid for the request hot path (issue 13), not part of any test.
//
//   npx wrangler dev --port 8799 --inspector-port 9239 --show-interactive-dev-session=false &
//   node scripts/profile-worker.mjs http://127.0.0.1:8799/healthz 9239 [REQUESTS] [CLIENTS]
//
// Build the Worker with KEEP_NAMES=1 (scripts/build-worker.sh) so that wasm functions
// are profiled by name instead of by index. Prints self time per kind (our wasm; the
// JavaScript of worker-build's shim and wasm-bindgen's glue; the runtime's own code,
// its wasm<->JS trampolines included; idle), then per function (top 40).
import http from "node:http";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const WebSocket = require("ws"); // miniflare's dependency, already in node_modules

const [url, inspectorPort, requests = "3000", clients = "8"] = process.argv.slice(2);
if (!url || !inspectorPort) {
  console.error("usage: node scripts/profile-worker.mjs URL INSPECTOR_PORT [REQUESTS] [CLIENTS]");
  process.exit(2);
}

const targets = await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json();
// The user Worker's isolate; wrangler also lists its own internal Workers.
const target = targets.find((t) => !/^(core:|wrangler|__)/.test(t.title ?? "")) ?? targets[0];
const ws = new WebSocket(target.webSocketDebuggerUrl);
await new Promise((ok, fail) => ws.once("open", ok).once("error", fail));
let nextId = 0;
const pending = new Map();
ws.on("message", (data) => {
  const msg = JSON.parse(data);
  if (msg.id !== undefined && pending.has(msg.id)) {
    pending.get(msg.id)(msg);
    pending.delete(msg.id);
  }
});
const send = (method, params = {}) =>
  new Promise((ok) => {
    const id = ++nextId;
    pending.set(id, ok);
    ws.send(JSON.stringify({ id, method, params }));
  });

const agent = new http.Agent({ keepAlive: true, maxSockets: Number(clients) });
const get = () =>
  new Promise((ok, fail) => {
    http
      .get(url, { agent }, (res) => {
        res.resume();
        res.on("end", () => (res.statusCode < 500 ? ok() : fail(new Error(`status ${res.statusCode}`))));
      })
      .on("error", fail);
  });
const load = async (n) => {
  let left = n;
  await Promise.all(
    Array.from({ length: Number(clients) }, async () => {
      while (left-- > 0) await get();
    }),
  );
};

await load(200); // warm: the isolate compiled, the caches filled
await send("Profiler.enable");
await send("Profiler.setSamplingInterval", { interval: 50 });
await send("Profiler.start");
const started = performance.now();
await load(Number(requests));
const seconds = (performance.now() - started) / 1000;
const { result } = await send("Profiler.stop");
ws.close();
agent.destroy();

const { nodes, samples, timeDeltas } = result.profile;
const byId = new Map(nodes.map((n) => [n.id, n]));
// By the frame's script, not its name: wasm frames come from a `wasm://` URL (named or
// not), and the runtime's `wasm-to-js` trampolines have none.
const kind = ({ functionName, url: script }) =>
  functionName === "(idle)"
    ? "idle"
    : script.startsWith("wasm:")
      ? "wasm"
      : /\.m?js$/.test(script)
        ? "javascript"
        : "runtime";
const add = (map, key, us) => map.set(key, (map.get(key) ?? 0) + us);
const self = new Map();
const kinds = new Map();
let total = 0;
samples.forEach((id, i) => {
  const f = byId.get(id).callFrame;
  const dt = timeDeltas[i] ?? 0;
  add(self, `${f.functionName || "(anonymous)"}  ${f.url ? f.url.replace(/^.*\//, "") : ""}`, dt);
  add(kinds, kind(f), dt);
  total += dt;
});

console.log(`${requests} GETs of ${url} in ${seconds.toFixed(1)} s (${(Number(requests) / seconds).toFixed(0)} req/s), ${clients} clients`);
console.log("self time by kind (ms, % of sampled):");
for (const [k, us] of [...kinds].sort((a, b) => b[1] - a[1]))
  console.log(`  ${k.padEnd(11)} ${(us / 1000).toFixed(0).padStart(7)}  ${((100 * us) / total).toFixed(1)}%`);
console.log("top self time (ms, % of sampled, per request µs):");
for (const [key, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 40))
  console.log(
    `  ${(us / 1000).toFixed(1).padStart(8)} ${((100 * us) / total).toFixed(1).padStart(5)}% ${(us / Number(requests)).toFixed(1).padStart(7)}  ${key}`,
  );
