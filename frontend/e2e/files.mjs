// Files for the attachment steps, made here (nothing is downloaded): PNG pictures drawn pixel by
// pixel (an encoder over node's zlib), a small real PDF, and REST uploads from the test itself.
import { randomBytes } from "node:crypto";
import { deflateSync } from "node:zlib";

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** An RGB PNG of `width` × `height`, each pixel from `pixel(x, y)` → [r, g, b] (0–255). */
export function png(width, height, pixel) {
  const raw = Buffer.alloc((width * 3 + 1) * height);
  let o = 0;
  for (let y = 0; y < height; y++) {
    raw[o++] = 0;
    for (let x = 0; x < width; x++) {
      const [r, g, b] = pixel(x, y);
      raw[o++] = r;
      raw[o++] = g;
      raw[o++] = b;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bits per channel
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(raw, { level: 6 })),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

const mix = (a, b, t) => Math.round(a + (b - a) * Math.min(1, Math.max(0, t)));
const mixRgb = (a, b, t) => [mix(a[0], b[0], t), mix(a[1], b[1], t), mix(a[2], b[2], t)];

/** A wide panorama: dusk sky, a low sun, a ridge of mountains and a lake that mirrors them. */
export function panorama(width = 3200, height = 760) {
  const horizon = height * 0.62;
  const sun = { x: width * 0.68, y: horizon - height * 0.1, r: height * 0.09 };
  return png(width, height, (x, y) => {
    const ridge = horizon - height * (0.16 + 0.07 * Math.sin(x / 170) + 0.05 * Math.sin(x / 61 + 1.3) + 0.02 * Math.sin(x / 23));
    const sy = y < horizon ? y : 2 * horizon - y; // the lake mirrors the sky
    const d = Math.hypot(x - sun.x, sy - sun.y);
    let c = mixRgb([38, 52, 120], [250, 160, 90], sy / horizon);
    if (d < sun.r) c = [255, 228, 160];
    else if (d < sun.r * 3) c = mixRgb([255, 200, 130], c, (d - sun.r) / (sun.r * 2));
    if (sy > ridge) c = mixRgb([40, 34, 70], [24, 20, 44], (sy - ridge) / (horizon - ridge + 1));
    if (y >= horizon) c = mixRgb(c, [14, 22, 48], 0.35 + 0.05 * Math.sin(y / 3 + x / 40));
    return c;
  });
}

/** A tall portrait (a phone's photo of a waterfall between cliffs). */
export function portrait(width = 1080, height = 2400) {
  return png(width, height, (x, y) => {
    const fall = Math.abs(x - width / 2 - 40 * Math.sin(y / 260)) < width * (0.09 + 0.03 * Math.sin(y / 90));
    const t = y / height;
    if (fall) {
      const foam = 222 + 18 * Math.sin(y / 11 + x / 17) * Math.sin(y / 5);
      return [Math.round(foam), Math.min(255, Math.round(foam + 10)), 250];
    }
    const rock = 0.5 + 0.5 * Math.sin(x / 37 + y / 53) * Math.sin(y / 29);
    const moss = mixRgb([56, 92, 60], [92, 84, 70], rock);
    return mixRgb(moss, [20, 36, 30], t * 0.8);
  });
}

/** A square snapshot in one colour with soft rings, for grids. */
export function snapshot(size, [r, g, b]) {
  return png(size, size, (x, y) => {
    const d = Math.hypot(x - size / 2, y - size / 2) / size;
    const k = 0.75 + 0.25 * Math.cos(d * 28);
    return [Math.round(r * k), Math.round(g * k), Math.round(b * k)];
  });
}

/** A small real PDF (one page of text), with `padding` bytes of random binary in a stream so
 * that a download has to bring every byte back unchanged. */
export function pdf(title, padding = 160_000) {
  const text = `BT /F1 24 Tf 72 760 Td (${title.replace(/[()\\]/gu, "")}) Tj ET`;
  const noise = randomBytes(padding);
  const parts = [];
  const offsets = [];
  let length = 0;
  const push = (b) => {
    const buf = Buffer.isBuffer(b) ? b : Buffer.from(b, "latin1");
    parts.push(buf);
    length += buf.length;
  };
  push("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n");
  const obj = (n, body) => {
    offsets[n] = length;
    push(`${n} 0 obj\n`);
    for (const b of [].concat(body)) push(b);
    push("\nendobj\n");
  };
  obj(1, "<< /Type /Catalog /Pages 2 0 R >>");
  obj(2, "<< /Type /Pages /Kids [3 0 R] /Count 1 >>");
  obj(3, "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> /XObject << >> >> >>");
  obj(4, [`<< /Length ${text.length} >>\nstream\n`, text, "\nendstream"]);
  obj(5, "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>");
  obj(6, [`<< /Length ${noise.length} >>\nstream\n`, noise, "\nendstream"]);
  const xref = length;
  push(`xref\n0 7\n0000000000 65535 f \n`);
  for (let n = 1; n <= 6; n++) push(`${String(offsets[n]).padStart(10, "0")} 00000 n \n`);
  push(`trailer\n<< /Size 7 /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`);
  return Buffer.concat(parts);
}

/** Uploads bytes as `name` with the token, as the app does (one multipart part, `file`). */
export async function restUpload(origin, token, name, bytes, type = "application/octet-stream") {
  const form = new FormData();
  form.append("file", new Blob([bytes], { type }), name);
  const r = await fetch(`${origin}/api/uploads`, { method: "POST", headers: { Authorization: `Bearer ${token}` }, body: form });
  const json = await r.json().catch(() => null);
  if (r.status !== 201) throw new Error(`upload of ${name}: ${r.status} ${JSON.stringify(json)}`);
  return json;
}
