/** `deepvision serve`'s file server: only files under the demo folder and its mounts, with the right types. */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { demoServerOptions, startStaticServer } from '../src/serve/static-server';

let server: http.Server;
let base: URL;
let tmp: string;

/** A raw request: the path is sent exactly as written (no URL normalization by the client). */
function get(rawPath: string, method = 'GET'): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: base.hostname, port: base.port, path: rawPath, method }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('latin1') }));
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-serve-'));
  const root = path.join(tmp, 'demo');
  fs.mkdirSync(path.join(root, 'models', 'm1'), { recursive: true });
  fs.writeFileSync(path.join(root, 'index.html'), '<!doctype html><title>demo</title>');
  fs.writeFileSync(path.join(root, 'models', 'm1', 'model.json'), JSON.stringify({ name: 'm1', training: { dataset: 'shapes', validation: { top1: 0.5 } } }));
  fs.writeFileSync(path.join(tmp, 'secret.txt'), 'SECRET');
  fs.symlinkSync(path.join(tmp, 'secret.txt'), path.join(root, 'link.txt'));
  const started = await startStaticServer({ root, mounts: demoServerOptions().mounts, port: 0 });
  server = started.server;
  base = new URL(started.url);
});
afterAll(() => {
  server.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('serves the page, onnxruntime-web scripts and wasm with correct types and isolation headers, on 127.0.0.1', async () => {
  expect(base.hostname).toBe('127.0.0.1');
  const page = await get('/');
  expect(page.status).toBe(200);
  expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
  expect(page.headers['cross-origin-opener-policy']).toBe('same-origin');
  expect(page.headers['cross-origin-embedder-policy']).toBe('require-corp');
  const wasm = await get('/ort/ort-wasm-simd-threaded.jsep.wasm', 'HEAD');
  expect(wasm.status).toBe(200);
  expect(wasm.headers['content-type']).toBe('application/wasm');
  expect((await get('/ort/ort.webgpu.min.js', 'HEAD')).headers['content-type']).toBe('text/javascript; charset=utf-8');
  expect((await get('/ort/ort-wasm-simd-threaded.jsep.mjs', 'HEAD')).headers['content-type']).toBe('text/javascript; charset=utf-8');
  expect((await get('/models/m1/model.json')).headers['content-type']).toBe('application/json; charset=utf-8');
  expect((await get('/nothing-here.js')).status).toBe(404);
  expect((await get('/', 'POST')).status).toBe(405);
});

test('lists the exported models when the folder has no index.json', async () => {
  const r = await get('/models/index.json');
  expect(JSON.parse(r.body)).toEqual({ models: [{ id: 'm1', name: 'm1', dataset: 'shapes', top1: 0.5 }] });
});

test.each([
  '/../package.json', '/../../package.json', '/%2e%2e/package.json', '/%2E%2E/%2e%2e/package.json', '/..%2fpackage.json',
  '/..%2Fpackage.json', '/%2e%2e%2fpackage.json', '/models/../../package.json', '/models/%2e%2e/%2e%2e/secret.txt',
  '/ort/../../package.json', '/ort/%2e%2e/%2e%2e/%2e%2e/package.json', '/ort/..%2f..%2fpackage.json', '/..%5cpackage.json',
  '/%252e%252e/package.json', '/..%00/package.json', '/%c0%ae%c0%ae/package.json', '/link.txt', '/../secret.txt', '/.%2e/secret.txt',
])('refuses %s', async (rawPath) => {
  const r = await get(rawPath);
  expect([403, 404]).toContain(r.status);
  expect(r.body).not.toContain('"name": "deepvision"');
  expect(r.body).not.toContain('"onnxruntime-web"');
  expect(r.body).not.toContain('SECRET');
});
