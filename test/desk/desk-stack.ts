/**
 * The whole of pubflow for the desk's tests: the API tests' stack (test/api/fixtures.ts: a real Temporal dev server,
 * a real redis-server, the real worker pair and createApp, desk included), also listening on a free loopback port
 * for the browser. Only platforms are simulated: a WebhookReceiver on 127.0.0.1 and a ScriptedDriver
 * (`options.behave: 'auth-expired'` reports a logged-out account on the first attempt).
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { startApiStack, type ApiStack } from '../api/fixtures';

export type DeskStack = ApiStack & { url: string };

export async function startDeskStack(opts: { webhookUrl: string }): Promise<DeskStack> {
  const stack = await startApiStack({
    webhookUrl: opts.webhookUrl,
    listen: true,
    extraAccounts: [{ id: 'scr-login', platform: 'scripted', displayName: 'Logs out' }],
  });
  // A second video, for a retry that corrects it.
  writeFileSync(path.join(stack.mediaRoot, 'fixed.mp4'), randomBytes(16 * 1024));
  const { url } = stack;
  if (url === undefined) throw new Error('the stack is not listening');
  return { ...stack, url };
}
