/**
 * What Schemathesis found in the live API (test/contract/schemathesis.test.ts), each pinned here so it stays fixed
 * without the fuzzer: query integers that were coerced from text the document does not allow. Every response is
 * also checked against the document by the fixtures' hook.
 */
import request from 'supertest';
import { publish, publishBody, startApiStack, type ApiStack } from './fixtures';
import { WebhookReceiver } from '../helpers/webhook-receiver';

let stack: ApiStack;
let receiver: WebhookReceiver;

beforeAll(async () => {
  receiver = await WebhookReceiver.start();
  stack = await startApiStack({ webhookUrl: receiver.url });
});

afterAll(async () => {
  await stack?.close();
  await receiver?.close();
});

const api = () => request(stack.app);

type ErrorOut = { error: { code: string; message: string; details: unknown } };

describe('query integers (limit, offset) are decimal digits only', () => {
  // `offset=` was taken for offset 0 (200): Schemathesis's negative_data_rejection check, seed 1.
  test.each([
    ['/api/v1/tasks', 'offset', ''],
    ['/api/v1/tasks', 'offset', ' '],
    ['/api/v1/tasks', 'offset', '0x10'],
    ['/api/v1/tasks', 'limit', '1e2'],
    ['/api/v1/tasks', 'limit', ' 7 '],
    ['/api/v1/tasks', 'limit', '7.0'],
    ['/api/v1/reviews', 'offset', ''],
    ['/api/v1/reviews', 'limit', '0x10'],
  ])('GET %s?%s=%j is a 400 naming the parameter', async (route, name, value) => {
    const res = await api()
      .get(route)
      .query({ [name]: value });
    const body = res.body as ErrorOut;
    expect([res.status, body.error.code]).toEqual([400, 'invalid_request']);
    expect(body.error.message).toBe(`query.${name}: must be a whole number in decimal digits`);
  });

  test('digits still page, and bounds are still checked', async () => {
    const a = await publish(stack.app, publishBody());
    const b = await publish(stack.app, publishBody());
    const first = await api().get('/api/v1/tasks').query({ type: 'publish', limit: '1', offset: '0' });
    const second = await api().get('/api/v1/tasks').query({ type: 'publish', limit: '1', offset: '1' });
    expect([first.status, second.status]).toEqual([200, 200]);
    const ids = [first, second].map((r) => (r.body as { items: Array<{ task_id: string }> }).items[0]?.task_id);
    expect(new Set(ids)).toEqual(new Set([a, b]));
    const tooSmall = await api().get('/api/v1/tasks').query({ limit: '0' });
    expect([tooSmall.status, (tooSmall.body as ErrorOut).error.message]).toEqual([
      400,
      'query.limit: Too small: expected number to be >=1',
    ]);
    const negative = await api().get('/api/v1/tasks').query({ offset: '-1' });
    expect((negative.body as ErrorOut).error.message).toMatch(/^query\.offset: Too small/);
  });
});
