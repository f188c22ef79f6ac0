// Compression bombs for the fault suite, written by hand so that they cost nothing to make: a raw deflate
// stream of one literal zero and then "copy 258 bytes from 1 back" again and again (fixed Huffman codes, 13
// bits per 258 bytes), which inflates to `bytes` zeros; wrapped as a gzip file or as one entry of a zip whose
// local header may claim any size.

/** Raw deflate data that inflates to `bytes` zero bytes (at least 1). */
export function zeroDeflate(bytes: number): Uint8Array {
  const copies = Math.floor((bytes - 1) / 258);
  const out = new Uint8Array(Math.ceil((3 + 8 + copies * 13 + 7) / 8) + 8);
  let bit = 0;
  const put = (value: number, n: number) => {
    for (let i = 0; i < n; i++, bit++) if ((value >> i) & 1) out[bit >> 3]! |= 1 << (bit & 7);
  };
  // Huffman codes are written most significant bit first.
  const putCode = (code: number, n: number) => {
    for (let i = n - 1; i >= 0; i--, bit++) if ((code >> i) & 1) out[bit >> 3]! |= 1 << (bit & 7);
  };
  put(1, 1); // BFINAL
  put(1, 2); // BTYPE 01: fixed Huffman
  putCode(0x30, 8); // literal 0
  for (let i = 0; i < copies; i++) {
    putCode(0xc5, 8); // length code 285: 258
    putCode(0, 5); // distance code 0: 1
  }
  putCode(0, 7); // end of block (256)
  return out.subarray(0, Math.ceil(bit / 8));
}

/** A gzip file of `bytes` zeros (the trailer's CRC is not computed: readers stop long before it). */
export function gzipBomb(bytes: number): Uint8Array {
  const body = zeroDeflate(bytes);
  const out = new Uint8Array(10 + body.length + 8);
  out.set([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
  out.set(body, 10);
  new DataView(out.buffer).setUint32(10 + body.length + 4, bytes >>> 0, true);
  return out;
}

/** A zip of `entries` (stored as given, or a bomb: `{ bomb: bytes, claims }`), with each local header's claimed size. */
export function zipOf(entries: Record<string, Uint8Array | { bomb: number; claims: number }>): Uint8Array {
  const enc = new TextEncoder();
  const locals: Uint8Array[] = [];
  const centrals: Uint8Array[] = [];
  let offset = 0;
  for (const [name, e] of Object.entries(entries)) {
    const n = enc.encode(name);
    const stored = e instanceof Uint8Array;
    const data = stored ? e : zeroDeflate(e.bomb);
    const claims = stored ? e.length : e.claims;
    const crc = stored ? crc32(e) : 0;
    const local = new Uint8Array(30 + n.length);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, 20, true);
    lv.setUint16(8, stored ? 0 : 8, true);
    lv.setUint32(14, crc, true);
    lv.setUint32(18, data.length, true);
    lv.setUint32(22, claims, true);
    lv.setUint16(26, n.length, true);
    local.set(n, 30);
    const central = new Uint8Array(46 + n.length);
    const cv = new DataView(central.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, 20, true);
    cv.setUint16(6, 20, true);
    cv.setUint16(10, stored ? 0 : 8, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, data.length, true);
    cv.setUint32(24, claims, true);
    cv.setUint16(28, n.length, true);
    cv.setUint32(42, offset, true);
    central.set(n, 46);
    locals.push(local, data);
    centrals.push(central);
    offset += local.length + data.length;
  }
  const cdSize = centrals.reduce((s, c) => s + c.length, 0);
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, centrals.length, true);
  ev.setUint16(10, centrals.length, true);
  ev.setUint32(12, cdSize, true);
  ev.setUint32(16, offset, true);
  const parts = [...locals, ...centrals, end];
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function crc32(data: Uint8Array): number {
  let c = ~0;
  for (const b of data) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}
