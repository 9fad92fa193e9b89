/** The API's server span per request (tracing on only): the parent of the workflow start the request makes. */
import * as otel from '@opentelemetry/api';
import type { RequestHandler } from 'express';

export function traceRequests(tracer: otel.Tracer): RequestHandler {
  return (req, res, next) => {
    const parent = otel.propagation.extract(otel.ROOT_CONTEXT, req.headers);
    const span = tracer.startSpan(
      `${req.method}`,
      { kind: otel.SpanKind.SERVER, attributes: { 'http.request.method': req.method, 'url.path': req.path } },
      parent,
    );
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      // The route pattern, not the URL (ids stay out of span names); unmatched requests keep the bare method.
      const route = (req.route as { path?: unknown } | undefined)?.path;
      if (typeof route === 'string') {
        span.updateName(`${req.method} ${req.baseUrl}${route}`);
        span.setAttribute('http.route', `${req.baseUrl}${route}`);
      }
      span.setAttribute('http.response.status_code', res.statusCode);
      const requestId = res.getHeader('X-Request-Id');
      if (typeof requestId === 'string') span.setAttribute('pubflow.request_id', requestId);
      if (res.statusCode >= 500) span.setStatus({ code: otel.SpanStatusCode.ERROR });
      span.end();
    };
    res.once('finish', end);
    res.once('close', end);
    otel.context.with(otel.trace.setSpan(parent, span), next);
  };
}
