/** Size and sha256 of bytes as they stream by (files of any size, never held whole). */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { StoredFileInfo } from './store.js';

/** The size and sha256 of everything `chunks` yields. */
export async function digestOf(
  chunks: AsyncIterable<Uint8Array | string>,
): Promise<StoredFileInfo> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of chunks) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    hash.update(bytes);
    size += bytes.length;
  }
  return { size, sha256: hash.digest('hex') };
}

/** The size and sha256 of a file's content. */
export async function digestFile(path: string): Promise<StoredFileInfo> {
  const handle = await open(path, 'r');
  try {
    return await digestOf(handle.createReadStream({ autoClose: false }));
  } finally {
    await handle.close();
  }
}
