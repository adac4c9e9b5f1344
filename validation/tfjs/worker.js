// The TensorFlow.js worker: a graph model on @tensorflow/tfjs's cpu or wasm backend under plain
// Node.js (no tfjs-node, no native TensorFlow), served with onnxpipe's worker protocol
// (onnxpipe/models/wire.py): frames of b"ONNXPIPE" | u64 LE header size | u64 LE body size |
// JSON header | .npz body. One model per process, loaded once:
//   {"op": "open", "model": FOLDER, "backend": "cpu" | "wasm"} -> its signature and tfjs version
//   {"op": "run"} + inputs by signature name -> outputs by signature name, "seconds" of inference
// stdout belongs to the protocol: everything tfjs prints goes to stderr (the worker's log).
"use strict";

const fs = require("fs");
const path = require("path");
const { readNpz, writeNpz } = require("./npz.js");

for (const level of ["log", "info", "warn", "error", "debug"]) {
  console[level] = (...args) => process.stderr.write(args.join(" ") + "\n");
}
const tf = require("@tensorflow/tfjs");

const MAGIC = Buffer.from("ONNXPIPE");
const TF_DTYPES = { DT_FLOAT: "float32", DT_INT32: "int32", DT_INT64: "int32", DT_BOOL: "bool", DT_HALF: "float32" };
const NUMPY = { float32: "float32", int32: "int32", bool: "bool" };
const state = {};

function send(kind, header, arrays) {
  const head = Buffer.from(JSON.stringify({ ...(header || {}), kind }));
  const body = arrays ? Buffer.from(writeNpz(arrays)) : Buffer.alloc(0);
  const start = Buffer.alloc(24);
  MAGIC.copy(start, 0);
  start.writeBigUInt64LE(BigInt(head.length), 8);
  start.writeBigUInt64LE(BigInt(body.length), 16);
  const frame = Buffer.concat([start, head, body]);
  let at = 0;
  while (at < frame.length) {
    try {
      at += fs.writeSync(1, frame, at);
    } catch (e) {
      if (e.code !== "EAGAIN") throw e;
    }
  }
}

function describe(signature) {
  return Object.entries(signature || {}).map(([key, t]) => ({
    name: key,
    tensor: t.name,
    dtype: TF_DTYPES[t.dtype] || t.dtype,
    shape: ((t.tensorShape || {}).dim || []).map((d) => Number(d.size)),
  }));
}

async function open(req) {
  const folder = req.model;
  const json = JSON.parse(fs.readFileSync(path.join(folder, "model.json"), "utf8"));
  const specs = [];
  const buffers = [];
  for (const group of json.weightsManifest || []) {
    specs.push(...group.weights);
    for (const p of group.paths) {
      const file = path.resolve(folder, p);
      if (path.dirname(file) !== path.resolve(folder)) throw new Error(`weight shard ${p} lies outside ${folder}`);
      const b = fs.readFileSync(file);
      buffers.push(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    }
  }
  const total = buffers.reduce((a, b) => a + b.byteLength, 0);
  const weightData = new Uint8Array(total);
  let at = 0;
  for (const b of buffers) { weightData.set(new Uint8Array(b), at); at += b.byteLength; }
  if (req.backend === "wasm") {
    const wasm = require("@tensorflow/tfjs-backend-wasm");
    wasm.setWasmPaths(path.join(path.dirname(require.resolve("@tensorflow/tfjs-backend-wasm")), path.sep));
  }
  if (!(await tf.setBackend(req.backend))) throw new Error(`the ${req.backend} backend did not initialise`);
  await tf.ready();
  const model = await tf.loadGraphModel(
    tf.io.fromMemory({
      modelTopology: json.modelTopology,
      weightSpecs: specs,
      weightData: weightData.buffer,
      format: json.format,
      generatedBy: json.generatedBy,
      convertedBy: json.convertedBy,
      signature: json.signature,
      userDefinedMetadata: json.userDefinedMetadata,
      modelInitializer: json.modelInitializer,
    }),
  );
  const signature = json.signature || {};
  state.model = model;
  state.inputs = describe(signature.inputs);
  state.outputs = describe(signature.outputs);
  return {
    version: tf.version.tfjs,
    node: process.versions.node,
    backend: tf.getBackend(),
    inputs: state.inputs,
    outputs: state.outputs,
  };
}

async function run(arrays) {
  const feeds = {};
  for (const t of state.inputs) {
    const a = arrays[t.name];
    if (!a) throw new Error(`input ${t.name} not given`);
    let values = a.data;
    if (values instanceof BigInt64Array) values = Int32Array.from(values, (v) => Number(v));
    feeds[t.tensor] = tf.tensor(values, a.shape, a.descr === "|b1" ? "bool" : t.dtype);
  }
  const names = state.outputs.map((t) => t.tensor);
  const t0 = process.hrtime.bigint();
  let results;
  try {
    results = state.model.execute(feeds, names);
  } catch (e) {
    if (!/executeAsync/.test(String(e && e.message))) throw e;
    results = await state.model.executeAsync(feeds, names); // control flow, dynamic shapes
  }
  results = Array.isArray(results) ? results : [results];
  const data = await Promise.all(results.map((r) => r.data()));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const out = {};
  state.outputs.forEach((t, i) => {
    const dtype = results[i].dtype;
    out[t.name] = {
      shape: results[i].shape,
      data: dtype === "bool" ? Uint8Array.from(data[i]) : data[i],
      descr: dtype === "bool" ? "|b1" : undefined,
    };
  });
  for (const r of [...results, ...Object.values(feeds)]) r.dispose();
  return [{ seconds }, out];
}

async function handle(header, arrays) {
  if (header.op === "open") return [await open(header), null];
  if (header.op === "run") return run(arrays);
  throw new Error(`unknown op ${header.op}`);
}

// Frames from stdin, answered in order.
let pending = Buffer.alloc(0);
let busy = Promise.resolve();
function pump() {
  while (pending.length >= 24) {
    if (!pending.subarray(0, 8).equals(MAGIC)) throw new Error("not a worker-protocol frame");
    const headSize = Number(pending.readBigUInt64LE(8));
    const bodySize = Number(pending.readBigUInt64LE(16));
    if (pending.length < 24 + headSize + bodySize) return;
    const header = JSON.parse(pending.subarray(24, 24 + headSize).toString("utf8"));
    const body = pending.subarray(24 + headSize, 24 + headSize + bodySize);
    pending = pending.subarray(24 + headSize + bodySize);
    const arrays = body.length ? readNpz(new Uint8Array(body)) : {};
    busy = busy.then(async () => {
      try {
        const [reply, outputs] = await handle(header, arrays);
        send("reply", reply, outputs);
      } catch (e) {
        send("error", {
          type: (e && e.name) || "Error",
          message: String((e && e.message) || e),
          error_kind: null,
          traceback: String((e && e.stack) || e),
        });
      }
    });
  }
}
process.stdin.on("data", (chunk) => {
  pending = Buffer.concat([pending, chunk]);
  pump();
});
process.stdin.on("end", () => busy.then(() => process.exit(0)));
