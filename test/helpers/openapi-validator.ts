/**
 * Checks HTTP responses against the generated OpenAPI document (src/api/openapi.ts) with ajv (draft 2020-12, the
 * dialect of OpenAPI 3.1). `validateResponses(app)` wraps an Express app so that every response it sends is checked;
 * a response that disagrees with the document fails the test that caused it (an afterEach hook reports it).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { openApiDocument } from '../../src/api/openapi';

type Json = Record<string, unknown>;
type Doc = { paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, Json> } };
interface Operation {
  responses: Record<string, { content?: Record<string, { schema: Json }> }>;
}

const DEFS_ID = 'urn:pubflow:openapi';
const COMPONENT_REF = '#/components/schemas/';

/** `#/components/schemas/X` -> `<prefix>X`, everywhere in a JSON value. */
function rewriteRefs(value: unknown, prefix: string): unknown {
  if (Array.isArray(value)) return value.map((v) => rewriteRefs(v, prefix));
  if (typeof value !== 'object' || value === null) return value;
  const out: Json = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] =
      k === '$ref' && typeof v === 'string' && v.startsWith(COMPONENT_REF)
        ? prefix + v.slice(COMPONENT_REF.length)
        : rewriteRefs(v, prefix);
  }
  return out;
}

export interface ResponseToCheck {
  method: string;
  /** The request path as sent (a query string is ignored). */
  path: string;
  status: number;
  contentType?: string;
  /** The raw body text. */
  body: string;
}

export class OpenApiValidator {
  private readonly ajv: Ajv2020;
  private readonly doc: Doc;
  private readonly templates: Array<{ template: string; re: RegExp }>;
  private readonly compiled = new Map<Json, ValidateFunction>();

  constructor(doc: object = openApiDocument) {
    this.doc = doc as Doc;
    // strict: an unknown keyword or format in a generated schema is an error, not silently ignored.
    this.ajv = new Ajv2020({ strict: true, allErrors: true, allowUnionTypes: true });
    addFormats(this.ajv);
    this.ajv.addSchema({ $id: DEFS_ID, $defs: rewriteRefs(this.doc.components.schemas, '#/$defs/') as Json });
    this.templates = Object.keys(this.doc.paths).map((template) => ({
      template,
      re: new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^/}]+\}/g, '[^/]+')}$`),
    }));
  }

  /** A validator for one schema of the document (a component ref, or an inline schema). */
  compile(schema: Json): ValidateFunction {
    let fn = this.compiled.get(schema);
    if (!fn) {
      fn = this.ajv.compile(rewriteRefs(schema, `${DEFS_ID}#/$defs/`) as Json);
      this.compiled.set(schema, fn);
    }
    return fn;
  }

  /** Compiles every schema in the document (components, parameters, request bodies, responses). */
  compileAll(): number {
    let n = 0;
    const visit = (v: unknown, key: string) => {
      if (Array.isArray(v)) return v.forEach((x) => visit(x, ''));
      if (typeof v !== 'object' || v === null) return;
      if (key === 'schema') {
        this.compile(v as Json);
        n++;
        return;
      }
      for (const [k, x] of Object.entries(v)) visit(x, k);
    };
    visit(this.doc.paths, '');
    for (const name of Object.keys(this.doc.components.schemas)) {
      this.compile({ $ref: `${COMPONENT_REF}${name}` });
      n++;
    }
    return n;
  }

  /** The path template a request path falls under, if any. */
  templateFor(path: string): string | undefined {
    const bare = path.split('?')[0] ?? path;
    return this.templates.find((t) => t.re.test(bare))?.template;
  }

  /** Problems with one response; empty when it is as documented. */
  check(r: ResponseToCheck): string[] {
    const where = `${r.method} ${r.path} -> ${r.status}`;
    const template = this.templateFor(r.path);
    const op = template ? this.doc.paths[template]?.[r.method.toLowerCase()] : undefined;
    if (!op) {
      // Not a documented operation: the app's fallback answers 404 (no such path), or 405 (the path exists with
      // other methods), in the error envelope, or 204 to OPTIONS on a documented path.
      if (template && r.method === 'OPTIONS' && r.status === 204) return r.body === '' ? [] : [`${where}: a body`];
      if (r.status !== 404 && !(template && r.status === 405))
        return [`${where}: no documented operation for this method and path`];
      return this.checkBody(where, { $ref: `${COMPONENT_REF}Error` }, r);
    }
    const response = op.responses[String(r.status)];
    if (!response) return [`${where}: status ${r.status} is not documented for ${r.method} ${template}`];
    const schema = response.content?.['application/json']?.schema;
    if (!schema) {
      // A documented text body (GET /metrics): the content type must be the documented one.
      const text = Object.keys(response.content ?? {}).find((t) => t.startsWith('text/'));
      if (text) return r.contentType?.startsWith(text) ? [] : [`${where}: content type ${r.contentType}, not ${text}`];
      return r.body === '' ? [] : [`${where}: a body, where the document declares none`];
    }
    return this.checkBody(where, schema, r);
  }

  private checkBody(where: string, schema: Json, r: ResponseToCheck): string[] {
    if (!/^application\/json\b/.test(r.contentType ?? ''))
      return [`${where}: Content-Type ${r.contentType ?? '(none)'}, where the document declares application/json`];
    let body: unknown;
    try {
      body = JSON.parse(r.body);
    } catch {
      return [`${where}: the body is not JSON: ${r.body.slice(0, 200)}`];
    }
    const validate = this.compile(schema);
    if (validate(body)) return [];
    const errors = (validate.errors ?? []).map((e) => `${e.instancePath || '(root)'} ${e.message ?? ''}`);
    return [`${where}: ${errors.join('; ')}; body: ${r.body.slice(0, 500)}`];
  }
}

let shared: OpenApiValidator | undefined;
const violations: string[] = [];
let checked = 0;

/** How many responses the wrapped apps have checked so far (so a test can see the hook is on). */
export const checkedResponses = (): number => checked;

/** Throws (failing the current test) if any response since the last call disagreed with the document. */
export function assertResponsesValid(): void {
  const found = violations.splice(0);
  if (found.length > 0)
    throw new Error(
      `${found.length} response(s) do not match /openapi.json:\n${found.map((v) => `- ${v}`).join('\n')}`,
    );
}

function hook(validator: OpenApiValidator, req: IncomingMessage, res: ServerResponse): void {
  const method = req.method ?? 'GET';
  const path = req.url ?? '/';
  if (method === 'HEAD') return;
  const chunks: Buffer[] = [];
  const keep = (chunk: unknown, encoding: unknown) => {
    if (typeof chunk === 'string')
      chunks.push(Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8'));
    else if (chunk instanceof Uint8Array) chunks.push(Buffer.from(chunk));
  };
  const write = res.write.bind(res) as (...args: unknown[]) => boolean;
  const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
  res.write = ((...args: unknown[]) => {
    keep(args[0], args[1]);
    return write(...args);
  }) as ServerResponse['write'];
  res.end = ((...args: unknown[]) => {
    if (typeof args[0] !== 'function') keep(args[0], args[1]);
    const contentType = res.getHeader('content-type');
    // Never throws into the app: a broken schema is reported like a mismatch.
    checked++;
    try {
      violations.push(
        ...validator.check({
          method,
          path,
          status: res.statusCode,
          contentType: typeof contentType === 'string' ? contentType : undefined,
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
    } catch (err) {
      violations.push(`${method} ${path} -> ${res.statusCode}: the validator failed: ${(err as Error).message}`);
    }
    return end(...args);
  }) as ServerResponse['end'];
}

/**
 * The same app, every response of which is checked against the document. Everything else (its router, `listen`)
 * is the app's own, so supertest and route walks see the real app.
 */
export function validateResponses<T extends (req: IncomingMessage, res: ServerResponse) => void>(app: T): T {
  const validator = (shared ??= new OpenApiValidator());
  return new Proxy(app, {
    apply(target, thisArg, args: [IncomingMessage, ServerResponse, ...unknown[]]) {
      hook(validator, args[0], args[1]);
      return Reflect.apply(target, thisArg, args) as unknown;
    },
  });
}

// In a jest file that loads this module, a mismatching response fails the test (or the suite's hooks) it came from.
if (typeof afterEach === 'function' && typeof afterAll === 'function') {
  afterEach(assertResponsesValid);
  afterAll(assertResponsesValid);
}
