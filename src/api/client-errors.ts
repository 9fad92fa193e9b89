/**
 * Requests Node's HTTP parser refuses before Express sees them. A request line and headers over Node's limit
 * (16 KiB: a URL with kilobytes of query) is a 431 as Node answers it, but with the API's error envelope and a JSON
 * content type, as documented on every route; any other malformed request is a plain 400, as Node would answer.
 */
import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';

export const HEADERS_TOO_LARGE_BODY = JSON.stringify({
  error: {
    code: 'headers_too_large',
    message: 'the request line and headers are over 16 KiB; send long text in a JSON body',
    details: null,
  },
});

function answer(socket: Duplex, status: string, body?: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const head = body
    ? `HTTP/1.1 ${status}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
    : `HTTP/1.1 ${status}\r\nConnection: close\r\n\r\n`;
  socket.end(head);
}

export function answerClientErrors(server: Server): void {
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (err.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    if (err.code === 'HPE_HEADER_OVERFLOW')
      answer(socket, '431 Request Header Fields Too Large', HEADERS_TOO_LARGE_BODY);
    else answer(socket, '400 Bad Request');
  });
}
