/**
 * How a local file is cut into the parts of a multipart upload, each part's body streamed from its own
 * byte range of the file, so an upload holds no part in memory (lib-storage copies every part into a
 * buffer of its own; that kept the agent above 128 MiB):
 *
 *   plain       part j = bytes [j*P, (j+1)*P) of the file, a read stream of exactly that range
 *   encrypted   [hdr][c0+tag]...[c(k-1)+tag] | [ck+tag]...[c(2k-1)+tag] | ... | [..][cN+tag, short]
 *               part j = sealed chunks j*k .. j*k+k-1 (the header before part 0), each chunk read from the
 *               file at index x chunk size and sealed as it is sent; k = P / chunk size
 *
 * Every part's length is known before it is sent (cipher.ts sealedLayout), as S3 wants it.
 */
import { createReadStream, promises as fsp } from 'node:fs';
import { Readable } from 'node:stream';
import { sealChunk, sealedLayout, TAG_BYTES, type OpenedHeader } from './cipher';

export interface Part {
  /** Plain bytes [plainStart, plainStart + plainBytes) of the file go into this part. */
  plainStart: number;
  plainBytes: number;
  /** Bytes sent (the part's Content-Length). */
  length: number;
  /** Encrypted: the chunks it holds, and whether the header comes first. */
  firstChunk: number;
  chunks: number;
}

export function planParts(size: number, partBytes: number, cipher?: OpenedHeader): Part[] {
  const parts: Part[] = [];
  if (!cipher) {
    for (let start = 0; start < size || parts.length === 0; start += partBytes) {
      const n = Math.min(partBytes, size - start);
      parts.push({ plainStart: start, plainBytes: n, length: n, firstChunk: 0, chunks: 0 });
    }
    return parts;
  }
  const { chunks } = sealedLayout(size, cipher);
  const perPart = Math.max(1, Math.floor(partBytes / cipher.chunkBytes));
  for (let first = 0; first < chunks; first += perPart) {
    const n = Math.min(perPart, chunks - first);
    const plainStart = first * cipher.chunkBytes;
    const plainBytes = Math.min(size, (first + n) * cipher.chunkBytes) - plainStart;
    parts.push({ plainStart, plainBytes, length: (first === 0 ? cipher.header.length : 0) + plainBytes + n * TAG_BYTES, firstChunk: first, chunks: n });
  }
  return parts;
}

/** The body of one part, read from `file` as it is sent; encrypted parts sealed chunk by chunk. */
export function partBody(file: string, name: string, part: Part, cipher?: OpenedHeader, totalChunks = 0): Readable {
  if (!cipher) {
    if (part.plainBytes === 0) return Readable.from([]);
    return createReadStream(file, { start: part.plainStart, end: part.plainStart + part.plainBytes - 1, highWaterMark: 1 << 20 });
  }
  // One sealed chunk buffered at a time (Readable.from would hold 16 by default: 16 MiB per part in flight).
  return Readable.from(
    (async function* sealed(): AsyncGenerator<Buffer> {
      if (part.firstChunk === 0) yield cipher.header;
      const fh = await fsp.open(file, 'r');
      try {
        for (let index = part.firstChunk; index < part.firstChunk + part.chunks; index++) {
          const start = index * cipher.chunkBytes;
          const want = Math.min(cipher.chunkBytes, part.plainStart + part.plainBytes - start);
          const plain = Buffer.allocUnsafe(Math.max(0, want));
          for (let got = 0; got < plain.length; ) {
            const { bytesRead } = await fh.read(plain, got, plain.length - got, start + got);
            if (bytesRead === 0) throw new Error(`${file} is shorter than when the upload began`);
            got += bytesRead;
          }
          yield sealChunk(cipher, name, index, index === totalChunks - 1, plain);
        }
      } finally {
        await fh.close();
      }
    })(),
    { highWaterMark: 1 },
  );
}
