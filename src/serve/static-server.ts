import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as http from 'node:http';
import * as path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { listModels } from '../export/model-index';
import { O_NONBLOCK } from '../util/regular-file';

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.json': 'application/json; charset=utf-8', '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm', '.onnx': 'application/octet-stream', '.png': 'image/png', '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg', '.webp': 'image/webp', '.gif': 'image/gif', '.svg': 'image/svg+xml', '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8', '.md': 'text/plain; charset=utf-8',
};

export interface StaticServerOptions {
  /** The folder served at / (the web demo). */
  root: string;
  /** Read-only folders mounted at a URL prefix, e.g. { '/ort/': onnxruntime-web's dist }. */
  mounts?: Record<string, string>;
  host?: string;
  port?: number;
  /** Called once per request, after the response is sent. */
  log?: (line: string) => void;
}

/** The web demo's default layout: web-demo/ at /, onnxruntime-web's dist (scripts and wasm) at /ort/. */
export function demoServerOptions(): Pick<StaticServerOptions, 'root' | 'mounts'> {
  return {
    root: path.resolve(__dirname, '../../web-demo'),
    mounts: { '/ort/': path.dirname(require.resolve('onnxruntime-web')) },
  };
}

/**
 * Resolves a request path to a file inside `root`, or undefined when it is not one: decoded once, no NUL, no
 * backslash, no `..` segment, and (after following symbolic links) still inside the root. A root or file that does
 * not exist (or vanishes meanwhile) is undefined too.
 */
function resolveInside(root: string, urlPath: string): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return undefined;
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return undefined;
  const segments = decoded.split('/');
  if (segments.some((s) => s === '..' || s === '.')) return undefined;
  let realRoot: string;
  let real: string;
  try {
    realRoot = fs.realpathSync(root);
    real = fs.realpathSync(path.join(realRoot, ...segments.filter((s) => s !== '')));
  } catch {
    return undefined;
  }
  if (real !== realRoot && !real.startsWith(realRoot + path.sep)) return undefined;
  return real;
}

/** The names a page on this machine reaches the server by; anything else in Host is another site's page. */
const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]'];

/**
 * Whether a Host header names this server: a loopback name (or one of `extraNames`), with or without a port.
 * A page on evil.example whose DNS name is rebound to 127.0.0.1 still sends `Host: evil.example`, so checking the
 * header keeps the demo's files away from other sites even though the socket is local.
 */
export function allowedHost(host: string | undefined, extraNames: readonly string[] = []): boolean {
  if (host === undefined) return false;
  const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(host);
  if (!match) return false;
  if (match[2] !== undefined && Number(match[2]) > 65535) return false;
  const name = match[1]!.toLowerCase();
  return LOOPBACK_NAMES.includes(name) || extraNames.includes(name);
}

/** How a request ended, for the log line. */
interface Outcome {
  status: number;
  /** What went wrong: the connection closed before the response was complete (client gone, file changed), an error. */
  note?: string;
}

/**
 * A static file server for the web demo on 127.0.0.1: GET and HEAD only, files under the root and the mounts only,
 * correct MIME types (application/wasm for ORT's wasm), and the cross-origin isolation headers that let
 * onnxruntime-web use threads (SharedArrayBuffer). models/index.json is generated when the folder has none.
 * Requests whose Host is not this machine get 403. No request can stop the server: a file that vanishes, changes or
 * cannot be read ends in 404, 500 or a closed connection.
 */
export function startStaticServer(o: StaticServerOptions): Promise<{ server: http.Server; url: string }> {
  const extraNames = o.host !== undefined && !['0.0.0.0', '::'].includes(o.host) ? [o.host.includes(':') ? `[${o.host}]` : o.host] : [];
  const server = http.createServer((req, res) => {
    const started = Date.now();
    // Errors on either stream after the response is decided (client gone) are handled by closing; never let them escape.
    req.on('error', () => undefined);
    res.on('error', () => undefined);
    const log = (outcome: Outcome) => {
      if (o.log === undefined) return;
      const url = (req.url ?? '').replace(/[^\x21-\x7e]/g, (c) => encodeURIComponent(c));
      try {
        o.log(`${req.method} ${url} ${outcome.status} ${Date.now() - started} ms${outcome.note ? ` (${outcome.note})` : ''}`);
      } catch {
        // A log that cannot be written (closed stdout) must not take requests down with it.
      }
    };
    handleRequest(req, res, o, extraNames).then(log, (err: unknown) => {
      // A bug or an unexpected file-system error: answer 500 if nothing was sent yet, else drop the connection.
      if (!res.headersSent) {
        res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8', ...isolationHeaders() });
        res.end('internal error\n');
      } else {
        res.destroy();
      }
      log({ status: 500, note: `error: ${(err as Error).message}` });
    });
  });
  server.on('error', () => undefined); // after listening, a server-level error must not end the process either
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(new Error(err.code === 'EADDRINUSE' ? `port ${o.port} is already in use: pick another with --port` : err.message));
    });
    server.listen(o.port ?? 0, o.host ?? '127.0.0.1', () => {
      const address = server.address() as { port: number };
      resolve({ server, url: `http://${o.host ?? '127.0.0.1'}:${address.port}/` });
    });
  });
}

async function handleRequest(req: http.IncomingMessage, res: http.ServerResponse, o: StaticServerOptions, extraNames: readonly string[]): Promise<Outcome> {
  const fail = (status: number, message: string): Outcome => {
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', ...isolationHeaders() });
    res.end(req.method === 'HEAD' ? undefined : `${message}\n`);
    return { status };
  };
  if (!allowedHost(req.headers.host, extraNames)) return fail(403, 'forbidden: this server answers only to localhost, 127.0.0.1 and [::1]');
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    return fail(405, 'method not allowed');
  }
  const rawPath = (req.url ?? '/').split('?')[0]!.split('#')[0]!;
  let root = o.root;
  let rest = rawPath;
  for (const [prefix, dir] of Object.entries(o.mounts ?? {})) {
    if (rawPath.startsWith(prefix)) {
      root = dir;
      rest = rawPath.slice(prefix.length);
      break;
    }
  }
  const modelsDir = root === o.root ? path.join(o.root, 'models') : root;
  if (rawPath === '/models/index.json' && !fs.existsSync(path.join(modelsDir, 'index.json'))) {
    const body = JSON.stringify({ models: listModels(modelsDir) });
    res.writeHead(200, { 'Content-Type': MIME['.json']!, 'Cache-Control': 'no-cache', ...isolationHeaders() });
    res.end(req.method === 'HEAD' ? undefined : body);
    return { status: 200 };
  }
  const file = resolveInside(root, rest);
  if (file === undefined) return fail(rawPath.includes('..') || /%2e|%2f|%5c|%00/i.test(rawPath) ? 403 : 404, 'not found');
  // A folder serves its index.html (resolved again, so a linked index.html cannot lead outside either).
  let opened = await openRegularFile(file);
  let served = file;
  if (opened === undefined) {
    const index = resolveInside(root, `${rest}/index.html`);
    if (index !== undefined) opened = await openRegularFile(index);
    served = index ?? file;
  }
  if (opened === undefined) return fail(404, 'not found');
  const { handle, size } = opened;
  const type = MIME[path.extname(served).toLowerCase()] ?? 'application/octet-stream';
  res.writeHead(200, { 'Content-Type': type, 'Content-Length': size, 'Cache-Control': 'no-cache', 'X-Content-Type-Options': 'nosniff', ...isolationHeaders() });
  if (req.method === 'HEAD' || size === 0) {
    await handle.close().catch(() => undefined);
    res.end();
    return { status: 200 };
  }
  // Read from the descriptor that was measured: the file may be deleted or replaced by now, and its length was
  // announced. Reading stops at that length; a file that shrank closes the connection rather than leave the
  // client waiting for bytes that will not come.
  try {
    await pipeline(handle.createReadStream({ start: 0, end: size - 1 }), exactLength(size), res);
    return { status: 200 };
  } catch (err) {
    res.destroy();
    return { status: 200, note: `connection closed: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
  }
}

const NOT_SERVABLE = new Set(['ENOENT', 'ENOTDIR', 'EISDIR', 'EACCES', 'EPERM', 'ELOOP', 'ENXIO', 'ENAMETOOLONG']);

/**
 * Opens a path if it is a regular file, and returns its descriptor with its size. Non-blocking, so that a named pipe
 * put in the folder cannot hold the request (and a thread of the pool) until someone writes to it.
 */
async function openRegularFile(file: string): Promise<{ handle: fsp.FileHandle; size: number } | undefined> {
  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(file, fs.constants.O_RDONLY | O_NONBLOCK);
  } catch (err) {
    // Gone since it was resolved, no permission, a socket, or a folder on systems that refuse to open one: not
    // found. Anything else (out of descriptors, an I/O error) is the server's trouble: 500.
    if (NOT_SERVABLE.has((err as NodeJS.ErrnoException).code ?? '')) return undefined;
    throw err;
  }
  try {
    const stat = await handle.stat();
    if (stat.isFile()) return { handle, size: stat.size };
  } catch {
    // fall through: not servable
  }
  await handle.close().catch(() => undefined);
  return undefined;
}

/** Passes bytes through and fails at the end unless exactly `expected` came by. */
function exactLength(expected: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length;
      callback(null, chunk);
    },
    flush(callback) {
      callback(seen === expected ? null : new Error(`the file changed while being sent (${seen} of ${expected} bytes)`));
    },
  });
}

function isolationHeaders(): Record<string, string> {
  return {
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Embedder-Policy': 'require-corp',
    'Cross-Origin-Resource-Policy': 'same-origin',
  };
}
