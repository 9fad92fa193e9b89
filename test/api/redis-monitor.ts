/**
 * `redis-cli MONITOR` for tests: every command the server runs, including those a Lua script issues, decoded from
 * Redis's quoted form byte for byte. It lets a test see every value a key held, however briefly, instead of hoping
 * a poll lands in time. (ioredis's monitor() splits and unescapes lines naively, which breaks JSON values that
 * contain quotes.) Use only against a redis-server the test started.
 */
import net from 'node:net';

export class RedisMonitor {
  private buffered = '';
  private listeners: Array<(args: string[]) => void> = [];
  /** What a listener threw (kept, not rethrown: a throw here would be an uncaught exception in a socket callback). */
  readonly errors: unknown[] = [];

  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding('latin1'); // Redis quotes every non-ASCII byte as \xHH, so the stream is plain ASCII
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', () => undefined);
  }

  static async start(port: number): Promise<RedisMonitor> {
    const socket = net.connect(port, '127.0.0.1');
    const monitor = new RedisMonitor(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.once('data', (first: string) => (first.startsWith('+OK') ? resolve() : reject(new Error(first))));
      socket.write('MONITOR\r\n');
    });
    return monitor;
  }

  /** Called with each command's arguments (the command name first). */
  onCommand(listener: (args: string[]) => void): void {
    this.listeners.push(listener);
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: string): void {
    this.buffered += chunk;
    let end: number;
    while ((end = this.buffered.indexOf('\r\n')) >= 0) {
      const line = this.buffered.slice(0, end);
      this.buffered = this.buffered.slice(end + 2);
      if (!line.startsWith('+') || line === '+OK') continue;
      const args = parseMonitorLine(line);
      if (!args) continue;
      for (const l of this.listeners) {
        try {
          l(args);
        } catch (err) {
          this.errors.push(err);
        }
      }
    }
  }
}

const SIMPLE_ESCAPES: Record<string, number> = { n: 10, r: 13, t: 9, a: 7, b: 8, '\\': 92, '"': 34 };

/** `+1700000000.123 [0 lua] "SET" "k" "v"` -> ['SET', 'k', 'v'] (values decoded as UTF-8). */
export function parseMonitorLine(line: string): string[] | undefined {
  const start = line.indexOf('] "');
  if (start < 0) return undefined;
  const args: string[] = [];
  let i = start + 2;
  while (i < line.length) {
    if (line[i] !== '"') return undefined;
    i++;
    const bytes: number[] = [];
    while (i < line.length && line[i] !== '"') {
      if (line[i] === '\\') {
        const next = line[i + 1] ?? '';
        if (next === 'x') {
          bytes.push(parseInt(line.slice(i + 2, i + 4), 16));
          i += 4;
        } else {
          bytes.push(SIMPLE_ESCAPES[next] ?? next.charCodeAt(0));
          i += 2;
        }
      } else {
        bytes.push(line.charCodeAt(i));
        i++;
      }
    }
    args.push(Buffer.from(bytes).toString('utf8'));
    i += 2; // the closing quote and the space before the next argument
  }
  return args;
}
