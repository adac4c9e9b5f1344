// .npz in and out for the worker protocol (onnxpipe/models/wire.py): a zip of .npy files, stored
// (numpy's np.savez writes no compression; entries may carry zip64 fields). Shared by the Node
// worker and the browser page (where it is loaded as a plain script: no require, no Buffer).
"use strict";

(function (root) {
  const DTYPES = {
    "<f4": Float32Array, "<f8": Float64Array, "<i4": Int32Array, "<i8": BigInt64Array,
    "<u4": Uint32Array, "<i2": Int16Array, "<u2": Uint16Array, "|i1": Int8Array, "|u1": Uint8Array,
    "|b1": Uint8Array,
  };
  const DESCR = new Map([
    [Float32Array, "<f4"], [Float64Array, "<f8"], [Int32Array, "<i4"], [BigInt64Array, "<i8"],
    [Uint32Array, "<u4"], [Int16Array, "<i2"], [Uint16Array, "<u2"], [Int8Array, "|i1"],
  ]);

  let crcTable = null;
  function crc32(bytes) {
    if (!crcTable) {
      crcTable = new Uint32Array(256);
      for (let n = 0; n < 256; n++) {
        let c = n;
        for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
        crcTable[n] = c >>> 0;
      }
    }
    let c = 0xffffffff;
    for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  }

  function parseNpy(bytes) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (bytes[0] !== 0x93 || String.fromCharCode(...bytes.subarray(1, 6)) !== "NUMPY") {
      throw new Error("not an .npy entry");
    }
    const major = bytes[6];
    const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
    const start = major === 1 ? 10 : 12;
    const header = new TextDecoder().decode(bytes.subarray(start, start + headerLen));
    const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
    if (/'fortran_order':\s*True/.test(header)) throw new Error("fortran-order arrays are not supported");
    const dims = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(",").map((s) => s.trim()).filter(Boolean);
    const shape = dims.map(Number);
    const Type = DTYPES[descr];
    if (!Type) throw new Error(`dtype ${descr} is not supported`);
    const size = shape.reduce((a, b) => a * b, 1);
    const dataStart = start + headerLen;
    const copy = bytes.slice(dataStart, dataStart + size * Type.BYTES_PER_ELEMENT); // aligned
    const data = new Type(copy.buffer, 0, size);
    return { descr, shape, data };
  }

  function readNpz(bytes) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let eocd = -1;
    for (let i = bytes.length - 22; i >= 0; i--) {
      if (view.getUint32(i, true) === 0x06054b50) { eocd = i; break; }
    }
    if (eocd < 0) throw new Error("not a zip archive");
    let count = view.getUint16(eocd + 10, true);
    let offset = view.getUint32(eocd + 16, true);
    if (offset === 0xffffffff || count === 0xffff) {
      const zip64 = Number(view.getBigUint64(eocd - 20 + 8, true));
      count = Number(view.getBigUint64(zip64 + 32, true));
      offset = Number(view.getBigUint64(zip64 + 48, true));
    }
    const out = {};
    for (let e = 0; e < count; e++) {
      if (view.getUint32(offset, true) !== 0x02014b50) throw new Error("bad central directory");
      const method = view.getUint16(offset + 10, true);
      let compSize = view.getUint32(offset + 20, true);
      let size = view.getUint32(offset + 24, true);
      const nameLen = view.getUint16(offset + 28, true);
      const extraLen = view.getUint16(offset + 30, true);
      const commentLen = view.getUint16(offset + 32, true);
      let local = view.getUint32(offset + 42, true);
      const name = new TextDecoder().decode(bytes.subarray(offset + 46, offset + 46 + nameLen));
      let x = offset + 46 + nameLen;
      const end = x + extraLen;
      while (x + 4 <= end) {
        const id = view.getUint16(x, true);
        const len = view.getUint16(x + 2, true);
        if (id === 0x0001) {
          let p = x + 4;
          if (size === 0xffffffff) { size = Number(view.getBigUint64(p, true)); p += 8; }
          if (compSize === 0xffffffff) { compSize = Number(view.getBigUint64(p, true)); p += 8; }
          if (local === 0xffffffff) { local = Number(view.getBigUint64(p, true)); p += 8; }
        }
        x += 4 + len;
      }
      if (method !== 0) throw new Error(`entry ${name}: compressed entries are not supported`);
      const dataAt = local + 30 + view.getUint16(local + 26, true) + view.getUint16(local + 28, true);
      out[name.replace(/\.npy$/, "")] = parseNpy(bytes.subarray(dataAt, dataAt + compSize));
      offset += 46 + nameLen + extraLen + commentLen;
    }
    return out;
  }

  function npy(array) {
    const descr = array.descr || DESCR.get(array.data.constructor);
    if (!descr) throw new Error(`cannot write a ${array.data.constructor.name}`);
    const shape = array.shape.length === 1 ? `(${array.shape[0]},)` : `(${array.shape.join(", ")})`;
    let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
    const pad = 64 - ((10 + header.length + 1) % 64);
    header += " ".repeat(pad % 64) + "\n";
    const head = new TextEncoder().encode(header);
    const data = new Uint8Array(array.data.buffer, array.data.byteOffset, array.data.byteLength);
    const out = new Uint8Array(10 + head.length + data.length);
    out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
    new DataView(out.buffer).setUint16(8, head.length, true);
    out.set(head, 10);
    out.set(data, 10 + head.length);
    return out;
  }

  // arrays: {name: {shape, data (a typed array), descr (optional)}} -> a stored zip (no zip64)
  function writeNpz(arrays) {
    const enc = new TextEncoder();
    const locals = [];
    const central = [];
    let offset = 0;
    for (const [key, array] of Object.entries(arrays)) {
      const name = enc.encode(`${key}.npy`);
      const body = npy(array);
      const crc = crc32(body);
      const local = new Uint8Array(30 + name.length);
      const lv = new DataView(local.buffer);
      lv.setUint32(0, 0x04034b50, true); lv.setUint16(4, 20, true);
      lv.setUint32(14, crc, true); lv.setUint32(18, body.length, true); lv.setUint32(22, body.length, true);
      lv.setUint16(26, name.length, true);
      local.set(name, 30);
      const cd = new Uint8Array(46 + name.length);
      const cv = new DataView(cd.buffer);
      cv.setUint32(0, 0x02014b50, true); cv.setUint16(4, 20, true); cv.setUint16(6, 20, true);
      cv.setUint32(16, crc, true); cv.setUint32(20, body.length, true); cv.setUint32(24, body.length, true);
      cv.setUint16(28, name.length, true); cv.setUint32(42, offset, true);
      cd.set(name, 46);
      locals.push(local, body);
      central.push(cd);
      offset += local.length + body.length;
    }
    const cdSize = central.reduce((a, c) => a + c.length, 0);
    const end = new Uint8Array(22);
    const ev = new DataView(end.buffer);
    ev.setUint32(0, 0x06054b50, true);
    ev.setUint16(8, central.length, true); ev.setUint16(10, central.length, true);
    ev.setUint32(12, cdSize, true); ev.setUint32(16, offset, true);
    const parts = [...locals, ...central, end];
    const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  }

  const api = { readNpz, writeNpz, crc32 };
  if (typeof module !== "undefined" && module.exports) module.exports = api;
  else root.npz = api;
})(typeof self !== "undefined" ? self : this);
