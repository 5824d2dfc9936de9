/**
 * The dashboard's front end as Vite builds it into `dist/ui/`: index.html and hashed assets,
 * served without a session (they hold no data); any other path under /ui gets index.html, so the
 * front end's own routes load on a reload. Files are read from disk on each request (a rebuild
 * needs no restart), only from inside the folder.
 */
import { readFile, stat } from 'node:fs/promises';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** `dist/ui` of this checkout: from src/server/ui (tests) and dist/server/ui (the build) alike. */
export const DEFAULT_UI_DIR = fileURLToPath(new URL('../../../dist/ui/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.wasm': 'application/wasm',
};

/** Headers every dashboard page is served with: no framing, no sniffing, no other origins. */
export const PAGE_HEADERS: Record<string, string> = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'same-origin',
  'content-security-policy':
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
};

async function fileIn(root: string, relative: string): Promise<string | undefined> {
  const path = resolve(root, relative);
  if (path !== root && !path.startsWith(root.endsWith(sep) ? root : root + sep)) return undefined;
  try {
    return (await stat(path)).isFile() ? path : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The response for `GET /ui/<rest>`: the file, index.html for a path that is no file (but not
 * for a missing asset, which is a 404 so a stale page fails visibly), or a 503 saying how to
 * build the front end.
 */
export async function staticResponse(root: string, rest: string): Promise<Response> {
  const dir = resolve(root);
  const index = await fileIn(dir, 'index.html');
  if (!index)
    return new Response(
      `The dashboard's front end is not built (no ${join(dir, 'index.html')}): run \`npm run build\` in the Strand checkout, then reload.\n`,
      { status: 503, headers: { 'content-type': 'text/plain; charset=utf-8', ...PAGE_HEADERS } },
    );
  let relative: string;
  try {
    relative = decodeURIComponent(rest);
  } catch {
    relative = '';
  }
  relative = relative.replace(/^\/+/, '');
  const file = relative === '' ? index : await fileIn(dir, relative);
  if (!file && /^assets\//.test(relative))
    return new Response('not found\n', {
      status: 404,
      headers: { 'content-type': 'text/plain; charset=utf-8', ...PAGE_HEADERS },
    });
  const path = file ?? index;
  const body = await readFile(path);
  const hashed = path !== index && /[.-][A-Za-z0-9_-]{8,}\.\w+$/.test(path);
  return new Response(body, {
    headers: {
      'content-type': TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream',
      // Hashed assets never change; index.html names the current ones, so it is never cached.
      'cache-control': hashed ? 'public, max-age=31536000, immutable' : 'no-cache',
      ...PAGE_HEADERS,
    },
  });
}
