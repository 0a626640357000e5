// CPU-heavy work for the process's piscina pool (runtime/cpu-pool.ts), in plain JavaScript so a
// pool worker starts without a TypeScript loader. Buffers come in by transfer; results are cloned.
// The same functions run inline (runtime/cpu-pool.ts) when work is too small to be worth a hop.
'use strict';
const { gzipSync, gunzipSync, crc32 } = require('node:zlib');

/** Snapshot envelope: one format byte (0 raw, 1 gzip), then the payload. */
const RAW = 0;
const GZIP = 1;

function concat(chunks) {
  if (chunks.length === 1) return chunks[0];
  let n = 0;
  for (const c of chunks) n += c.byteLength;
  const out = new Uint8Array(n);
  let at = 0;
  for (const c of chunks) { out.set(c, at); at += c.byteLength; }
  return out;
}

function pack({ chunks, level }) {
  const data = concat(chunks);
  const body = level > 0 ? gzipSync(data, { level }) : data;
  const out = new Uint8Array(body.byteLength + 1);
  out[0] = level > 0 ? GZIP : RAW;
  out.set(body, 1);
  return { bytes: out, checksum: crc32(out) };
}

function unpack({ chunks }) {
  const stored = concat(chunks);
  const checksum = crc32(stored);
  if (stored.byteLength === 0) throw new Error('a snapshot envelope needs at least its format byte');
  const body = stored.subarray(1);
  let data;
  if (stored[0] === RAW) data = new Uint8Array(body);
  else if (stored[0] === GZIP) data = new Uint8Array(gunzipSync(body));
  else throw new Error(`unknown snapshot format byte ${stored[0]}`);
  return { data, checksum };
}

module.exports = function run(task) {
  switch (task.op) {
    case 'pack': return pack(task);
    case 'unpack': return unpack(task);
    default: throw new Error(`unknown cpu task ${String(task.op)}`);
  }
};
module.exports.pack = pack;
module.exports.unpack = unpack;
