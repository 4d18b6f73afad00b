/**
 * `deepvision serve` under hostile conditions: files that vanish or change while being served, clients that hang
 * up, special files, and pages on other origins (DNS rebinding) that send a foreign Host header. No request may
 * bring the server down.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { allowedHost, startStaticServer } from '../src/serve/static-server';

let server: http.Server;
let port: number;
let tmp: string;
let root: string;
const logged: string[] = [];

type Reply = { status: number; headers: http.IncomingHttpHeaders; body: Buffer } | { reset: string };

/** A raw request on a fresh connection; a reset or truncated body is reported, not thrown. */
function request(rawPath: string, o: { method?: string; headers?: http.OutgoingHttpHeaders; setHost?: boolean } = {}): Promise<Reply> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path: rawPath, method: o.method ?? 'GET', headers: o.headers, setHost: o.setHost, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (err) => resolve({ reset: err.message }));
      res.on('aborted', () => resolve({ reset: 'aborted' }));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', (err) => resolve({ reset: err.message }));
    // A request the server never answers fails the test instead of hanging it.
    req.setTimeout(10000, () => req.destroy(new Error('no answer within 10 s')));
    req.end();
  });
}

const status = (r: Reply) => ('reset' in r ? r.reset : r.status);

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-serve-hostile-'));
  root = path.join(tmp, 'demo');
  fs.mkdirSync(path.join(root, 'models'), { recursive: true });
  fs.writeFileSync(path.join(root, 'index.html'), '<!doctype html><title>demo</title>');
  fs.writeFileSync(path.join(root, 'big.bin'), Buffer.alloc(8 << 20, 7));
  const started = await startStaticServer({ root, port: 0, log: (line) => logged.push(line) });
  server = started.server;
  port = (server.address() as { port: number }).port;
});
afterAll(() => {
  server.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('files that change under the server', () => {
  test('a file deleted and recreated in a loop while requests hammer it: every answer is whole, a 404 or a closed socket', async () => {
    const file = path.join(root, 'churn.txt');
    fs.writeFileSync(file, 'A');
    // Another thread churns the file, so deletions land between any two steps of a request (same thread would not).
    const stop = new Int32Array(new SharedArrayBuffer(4));
    const worker = new Worker(`
      const fs = require('node:fs');
      const { workerData } = require('node:worker_threads');
      let n = 0;
      while (Atomics.load(workerData.stop, 0) === 0) {
        try { fs.unlinkSync(workerData.file); } catch {}
        if (n % 7 === 3) { try { fs.mkdirSync(workerData.file); fs.rmdirSync(workerData.file); } catch {} }
        try { fs.writeFileSync(workerData.file, 'A'.repeat(1 + (n++ % 5000))); } catch {}
        if (n % 2 === 0) Atomics.wait(workerData.stop, 0, 0, 1); // let the file exist for a while too
      }
    `, { eval: true, workerData: { file, stop } });
    const counts = new Map<string | number, number>();
    try {
      const started = Date.now();
      let sent = 0;
      const client = async () => {
        while (sent < 400 && Date.now() - started < 20000) {
          sent++;
          const r = await request('/churn.txt', { method: sent % 5 === 0 ? 'HEAD' : 'GET' });
          counts.set(status(r), (counts.get(status(r)) ?? 0) + 1);
          if (!('reset' in r) && r.status === 200 && r.body.length > 0) {
            // A 200 carries one complete version of the file: as many bytes as it announced, all 'A'.
            expect(r.body.length).toBe(Number(r.headers['content-length']));
            expect(r.body.every((b) => b === 0x41)).toBe(true);
          }
        }
      };
      await Promise.all(Array.from({ length: 16 }, client));
      expect(sent).toBeGreaterThanOrEqual(400);
    } finally {
      Atomics.store(stop, 0, 1);
      await worker.terminate();
    }
    console.log(`churn: ${JSON.stringify(Object.fromEntries(counts))}`);
    for (const key of counts.keys()) expect([200, 404, 'socket hang up', 'aborted', 'read ECONNRESET']).toContain(key);
    expect(counts.get(200) ?? 0).toBeGreaterThan(0);
    // Still up and serving.
    expect(status(await request('/index.html'))).toBe(200);
  });

  test('a client that hangs up mid-download, and many more, leave the server up', async () => {
    for (let i = 0; i < 20; i++) {
      await new Promise<void>((resolve) => {
        const req = http.request({ host: '127.0.0.1', port, path: '/big.bin', agent: false }, (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        });
        req.on('error', () => resolve());
        req.end();
      });
    }
    const r = await request('/big.bin', { method: 'HEAD' });
    expect(status(r)).toBe(200);
    expect(!('reset' in r) && r.headers['content-length']).toBe(String(8 << 20));
    // The server noticed, and said so in its log.
    for (let i = 0; i < 50 && !logged.some((l) => l.includes('connection closed')); i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(logged).toContainEqual(expect.stringMatching(/^GET \/big\.bin 200 \d+ ms \(connection closed: /));
  });

  test('a file that shrinks after its length was announced closes the connection instead of hanging', async () => {
    const file = path.join(root, 'shrinking.bin');
    fs.writeFileSync(file, Buffer.alloc(4 << 20, 1));
    const replies = await Promise.all(Array.from({ length: 8 }, async (_, i) => {
      const pending = request('/shrinking.bin');
      if (i % 2 === 0) setImmediate(() => fs.truncateSync(file, 1000));
      return pending;
    }));
    for (const r of replies) {
      if ('reset' in r) continue;
      expect(r.body.length).toBe(Number(r.headers['content-length']));
    }
    expect(status(await request('/index.html'))).toBe(200);
  });

  test('a named pipe (FIFO) is not opened for reading (that would block until a writer came): 404', async () => {
    const fifo = path.join(root, 'pipe.js');
    const made = spawnSync('mkfifo', [fifo]);
    if (made.status !== 0) {
      console.warn(`skipped: mkfifo is not available (${made.error?.message ?? made.stderr})`);
      return;
    }
    expect(status(await request('/pipe.js'))).toBe(404);
    fs.rmSync(fifo);
  });

  test('a folder without index.html, and one whose index.html vanished, answer 404', async () => {
    fs.mkdirSync(path.join(root, 'empty'));
    expect(status(await request('/empty/'))).toBe(404);
    expect(status(await request('/empty'))).toBe(404);
    fs.mkdirSync(path.join(root, 'page'));
    fs.writeFileSync(path.join(root, 'page', 'index.html'), 'page');
    expect(status(await request('/page/'))).toBe(200);
    fs.rmSync(path.join(root, 'page', 'index.html'));
    expect(status(await request('/page/'))).toBe(404);
    expect(status(await request('/'))).toBe(200);
  });

  test('a root folder that disappears gives errors, not a dead server; it serves again once back', async () => {
    const other = path.join(tmp, 'other-root');
    fs.mkdirSync(other);
    fs.writeFileSync(path.join(other, 'a.txt'), 'a');
    const s = await startStaticServer({ root: other, port: 0 });
    const otherPort = (s.server.address() as { port: number }).port;
    const get = (p: string) => new Promise<number | string>((resolve) => {
      http.get({ host: '127.0.0.1', port: otherPort, path: p, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      }).on('error', (err) => resolve(err.message));
    });
    try {
      expect(await get('/a.txt')).toBe(200);
      fs.rmSync(other, { recursive: true });
      expect([404, 500]).toContain(await get('/a.txt'));
      expect([200, 404, 500]).toContain(await get('/models/index.json'));
      fs.mkdirSync(other);
      fs.writeFileSync(path.join(other, 'a.txt'), 'a');
      expect(await get('/a.txt')).toBe(200);
    } finally {
      s.server.close();
    }
  });
});

describe('Host header (DNS rebinding)', () => {
  test.each(['localhost', '127.0.0.1', '[::1]', 'LOCALHOST'])('Host %s, with and without the port, is served', async (name) => {
    for (const host of [`${name}:${port}`, name]) {
      const r = await request('/index.html', { headers: { Host: host } });
      expect([host, status(r)]).toEqual([host, 200]);
    }
  });

  // PORT stands for the server's port, known only once it listens.
  test.each([
    'evil.example', 'evil.example:PORT', 'localhost.evil.example', '127.0.0.1.evil.example:PORT', 'localhost@evil.example:PORT',
    '127.0.0.2', '[::2]', '::1', '[::1]evil', 'localhost:http', 'localhost:PORT:PORT', 'localhost:-1', 'localhost:99999',
    '0.0.0.0', 'localhost%2f', 'local_host',
  ])('Host %j is refused', async (pattern) => {
    const r = await request('/index.html', { headers: { Host: pattern.replace(/PORT/g, String(port)) } });
    expect([400, 403, 421]).toContain(status(r));
    expect(!('reset' in r) && r.body.toString()).not.toContain('<title>demo</title>');
  });

  test('a request without a Host header, or with an empty one, is refused', async () => {
    const r = await request('/index.html', { setHost: false });
    expect([400, 403, 421]).toContain(status(r));
    for (const head of ['GET /index.html HTTP/1.1\r\nHost:\r\n', 'GET /index.html HTTP/1.0\r\n']) {
      const answer = await new Promise<string>((resolve) => {
        const socket = net.connect(port, '127.0.0.1', () => socket.end(`${head}Connection: close\r\n\r\n`));
        let text = '';
        socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
        socket.on('close', () => resolve(text));
        socket.on('error', () => resolve(text));
      });
      expect([head, answer.split('\r\n')[0]]).toEqual([head, expect.stringMatching(/^HTTP\/1\.[01] (400|403|421) /)]);
      expect(answer).not.toContain('<title>demo</title>');
    }
  });

  test('the generated models index is behind the same check', async () => {
    expect(status(await request('/models/index.json', { headers: { Host: 'evil.example' } }))).toBe(403);
    expect(status(await request('/models/index.json', { headers: { Host: `localhost:${port}` } }))).toBe(200);
  });

  test('allowedHost', () => {
    expect(allowedHost('localhost:8080')).toBe(true);
    expect(allowedHost('[::1]:1')).toBe(true);
    expect(allowedHost(undefined)).toBe(false);
    expect(allowedHost('localhost:0x50')).toBe(false);
  });
});
