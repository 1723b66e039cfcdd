// Monsoon's icon, drawn from one description into an SVG, PNGs (W3C PNG specification,
// RGBA, 8 bits a channel) at the sizes the web app manifest and Apple's home screen ask for,
// and an ICO holding PNGs for /favicon.ico. No image library: the picture is a rounded
// square and a thick "M" with round caps and joins, which a signed distance draws exactly.
import { deflateSync } from "node:zlib";

// In a unit square: the "M" as a polyline, its stroke width, the colours.
const M = [[0.28, 0.7], [0.28, 0.32], [0.5, 0.56], [0.72, 0.32], [0.72, 0.7]];
const STROKE = 0.11;
const BACKGROUND = [0xd7, 0x3a, 0x31]; // the site's accent red
const INK = [0xff, 0xff, 0xff];
// "any" icons are a rounded square; maskable ones fill the square, and the platform cuts
// its own shape: everything that matters lies in the safe zone, the centred circle of
// radius 0.4 (W3C Web Application Manifest, "icon masks"). The M reaches 0.35 from the centre.
const RADIUS = 0.22;

const hex = (rgb) => "#" + rgb.map((c) => c.toString(16).padStart(2, "0")).join("");

/** The icon as SVG. */
export function svg({ maskable = false } = {}) {
  const r = maskable ? 0 : RADIUS * 100;
  const points = M.map(([x, y]) => `${x * 100} ${y * 100}`).join(" L");
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100">` +
    `<rect width="100" height="100" rx="${r}" fill="${hex(BACKGROUND)}"/>` +
    `<path d="M${points}" fill="none" stroke="${hex(INK)}" stroke-width="${STROKE * 100}" ` +
    `stroke-linecap="round" stroke-linejoin="round"/></svg>\n`;
}

// Signed distances (negative inside) in unit coordinates.
function roundedSquare(x, y, r) {
  const qx = Math.abs(x - 0.5) - (0.5 - r);
  const qy = Math.abs(y - 0.5) - (0.5 - r);
  return Math.hypot(Math.max(qx, 0), Math.max(qy, 0)) + Math.min(Math.max(qx, qy), 0) - r;
}
function segment(x, y, [ax, ay], [bx, by]) {
  const dx = bx - ax, dy = by - ay;
  const h = Math.min(1, Math.max(0, ((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy)));
  return Math.hypot(x - ax - dx * h, y - ay - dy * h);
}
function stroke(x, y) {
  let d = Infinity;
  for (let i = 1; i < M.length; i++) d = Math.min(d, segment(x, y, M[i - 1], M[i]));
  return d - STROKE / 2;
}

/** RGBA pixels of the icon at `size`×`size`, anti-aliased over one pixel. */
function pixels(size, maskable) {
  const out = Buffer.alloc(size * size * 4);
  const coverage = (d) => Math.min(1, Math.max(0, 0.5 - d * size));
  for (let py = 0; py < size; py++) {
    for (let px = 0; px < size; px++) {
      const x = (px + 0.5) / size, y = (py + 0.5) / size;
      const bg = maskable ? 1 : coverage(roundedSquare(x, y, RADIUS));
      const ink = coverage(stroke(x, y));
      const i = (py * size + px) * 4;
      for (let c = 0; c < 3; c++) out[i + c] = Math.round(BACKGROUND[c] * (1 - ink) + INK[c] * ink);
      out[i + 3] = Math.round(255 * bg);
    }
  }
  return out;
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, "ascii");
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** The icon as a PNG of `size`×`size`. */
export function png(size, { maskable = false } = {}) {
  const rgba = pixels(size, maskable);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr.set([8, 6, 0, 0, 0], 8); // 8 bits, RGBA, deflate, adaptive filtering, no interlace
  const rows = Buffer.alloc(size * (size * 4 + 1));
  for (let y = 0; y < size; y++) {
    rows[y * (size * 4 + 1)] = 0; // filter: none
    rgba.copy(rows, y * (size * 4 + 1) + 1, y * size * 4, (y + 1) * size * 4);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(rows, { level: 9 })),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

/** An ICO file holding the icon as PNGs of the given sizes (each at most 256). */
export function ico(sizes) {
  const images = sizes.map((size) => png(size));
  const header = Buffer.alloc(6 + 16 * sizes.length);
  header.writeUInt16LE(0, 0); // reserved
  header.writeUInt16LE(1, 2); // type: icon
  header.writeUInt16LE(sizes.length, 4);
  let offset = header.length;
  sizes.forEach((size, i) => {
    const entry = 6 + 16 * i;
    header[entry] = size % 256; // 0 means 256
    header[entry + 1] = size % 256;
    header.writeUInt16LE(1, entry + 4); // colour planes
    header.writeUInt16LE(32, entry + 6); // bits per pixel
    header.writeUInt32LE(images[i].length, entry + 8);
    header.writeUInt32LE(offset, entry + 12);
    offset += images[i].length;
  });
  return Buffer.concat([header, ...images]);
}

/** Every icon file the site serves: logical name → bytes. */
export function icons() {
  return {
    "icon.svg": Buffer.from(svg()),
    "icon-192.png": png(192),
    "icon-512.png": png(512),
    "icon-maskable-192.png": png(192, { maskable: true }),
    "icon-maskable-512.png": png(512, { maskable: true }),
    "apple-touch-icon.png": png(180, { maskable: true }),
    "favicon.ico": ico([16, 32, 48]),
  };
}
