/**
 * A stand-in for a team's CMS, to try the `webhook` driver by hand: `npm run demo:receiver`.
 *   POST /upload     receives pubflow's multipart upload; answers per the current mode
 *   POST /mode       {"mode": "ok" | "fail" | "slow" | "reject"}: 200 JSON, 500, never answers, 422
 *   GET  /requests   every upload received: taskId, attempt, Idempotency-Key, title, bytes, what it answered
 * Listens on 127.0.0.1:${DEMO_RECEIVER_PORT:-9999}.
 */
import http from 'node:http';

type Mode = 'ok' | 'fail' | 'slow' | 'reject';
interface Received {
  at: string;
  taskId?: string;
  attempt?: number;
  idempotencyKey?: string;
  title?: string;
  bytes: number;
  answered: string;
}

export function createDemoReceiver(initial: Mode = 'ok') {
  let mode: Mode = initial;
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/requests') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ mode, count: received.length, items: received }, null, 2));
      return;
    }
    if (req.method === 'POST' && req.url === '/mode') {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const next = (JSON.parse(body || '{}') as { mode?: Mode }).mode;
        if (next && ['ok', 'fail', 'slow', 'reject'].includes(next)) mode = next;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ mode }));
      });
      return;
    }
    if (req.method !== 'POST' || req.url !== '/upload') {
      res.statusCode = 404;
      res.end();
      return;
    }
    const rec: Received = {
      at: new Date().toISOString(),
      idempotencyKey: req.headers['idempotency-key'] as string | undefined,
      bytes: 0,
      answered: 'pending',
    };
    received.push(rec);
    let head = '';
    req.on('data', (chunk: Buffer) => {
      rec.bytes += chunk.length;
      if (head.length < 65536) {
        head += chunk.toString('utf8');
        // The metadata part comes first: pick its JSON out of the first bytes.
        const m = /name="metadata"[^\r\n]*\r\n(?:[^\r\n]+\r\n)*\r\n([^\r\n]*)\r\n/.exec(head);
        if (m && !rec.taskId) {
          try {
            const meta = JSON.parse(m[1] ?? '') as { taskId?: string; attempt?: number; title?: string };
            Object.assign(rec, { taskId: meta.taskId, attempt: meta.attempt, title: meta.title });
          } catch {
            /* not yet complete */
          }
        }
      }
    });
    res.on('close', () => {
      if (!res.writableFinished) rec.answered = `aborted by the client (${rec.answered})`;
    });
    req.on('end', () => {
      const current = mode;
      if (current === 'slow') {
        rec.answered = 'slow: waiting';
        return; // never answers; pubflow's cancel (or timeout) ends it
      }
      const [status, body] =
        current === 'ok'
          ? [200, { postId: `demo-${rec.taskId}-${rec.attempt}`, url: `http://127.0.0.1/posts/${rec.taskId}` }]
          : current === 'fail'
            ? [500, { error: 'demo receiver in fail mode' }]
            : [422, { error: 'demo receiver rejects this content' }];
      rec.answered = String(status);
      res.statusCode = status;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(body));
    });
  });
  return { server, received, setMode: (m: Mode) => (mode = m) };
}

if (require.main === module) {
  const port = Number(process.env.DEMO_RECEIVER_PORT ?? 9999);
  const { server } = createDemoReceiver((process.env.DEMO_RECEIVER_MODE as Mode) ?? 'ok');
  server.listen(port, '127.0.0.1', () => console.log(`demo receiver on http://127.0.0.1:${port}/upload`));
}
