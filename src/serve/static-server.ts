import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { listModels } from '../export/model-index';

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
 * backslash, no `..` segment, and (after following symbolic links) still inside the root.
 */
export function resolveInside(root: string, urlPath: string): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return undefined;
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return undefined;
  const segments = decoded.split('/');
  if (segments.some((s) => s === '..' || s === '.')) return undefined;
  const realRoot = fs.realpathSync(root);
  const candidate = path.join(realRoot, ...segments.filter((s) => s !== ''));
  let real: string;
  try {
    real = fs.realpathSync(candidate);
  } catch {
    return undefined;
  }
  if (real !== realRoot && !real.startsWith(realRoot + path.sep)) return undefined;
  return real;
}

/**
 * A static file server for the web demo on 127.0.0.1: GET and HEAD only, files under the root and the mounts only,
 * correct MIME types (application/wasm for ORT's wasm), and the cross-origin isolation headers that let
 * onnxruntime-web use threads (SharedArrayBuffer). models/index.json is generated when the folder has none.
 */
export function startStaticServer(o: StaticServerOptions): Promise<{ server: http.Server; url: string }> {
  const mounts = Object.entries(o.mounts ?? {});
  const server = http.createServer((req, res) => {
    const started = Date.now();
    const done = (status: number) => o.log?.(`${req.method} ${req.url} ${status} ${Date.now() - started} ms`);
    const fail = (status: number, message: string) => {
      res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', ...isolationHeaders() });
      res.end(req.method === 'HEAD' ? undefined : `${message}\n`);
      done(status);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return fail(405, 'method not allowed');
    }
    const rawPath = (req.url ?? '/').split('?')[0]!.split('#')[0]!;
    let root = o.root;
    let rest = rawPath;
    for (const [prefix, dir] of mounts) {
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
      return done(200);
    }
    let file = resolveInside(root, rest);
    if (file === undefined) return fail(rawPath.includes('..') || /%2e|%2f|%5c|%00/i.test(rawPath) ? 403 : 404, 'not found');
    let stat = fs.statSync(file);
    if (stat.isDirectory()) {
      file = path.join(file, 'index.html');
      if (!fs.existsSync(file)) return fail(404, 'not found');
      stat = fs.statSync(file);
    }
    if (!stat.isFile()) return fail(404, 'not found');
    const type = MIME[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
    res.writeHead(200, { 'Content-Type': type, 'Content-Length': stat.size, 'Cache-Control': 'no-cache', 'X-Content-Type-Options': 'nosniff', ...isolationHeaders() });
    if (req.method === 'HEAD') {
      res.end();
      return done(200);
    }
    const stream = fs.createReadStream(file);
    stream.on('error', () => res.destroy());
    stream.on('end', () => done(200));
    stream.pipe(res);
  });
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

function isolationHeaders(): Record<string, string> {
  return {
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Embedder-Policy': 'require-corp',
    'Cross-Origin-Resource-Policy': 'same-origin',
  };
}
