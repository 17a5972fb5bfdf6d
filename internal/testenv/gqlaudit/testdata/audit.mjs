// Runs the GraphQL-over-HTTP spec's audit suite (graphql-http's
// auditServer) against the URL given as the first argument, and writes one
// JSON object per audit to stdout: {id, name, status, reason, status code
// and body of the response that failed it}. status is "ok", "notice" (a MAY
// not met), "warn" (a SHOULD) or "error" (a MUST). Extra request headers,
// if any, come as JSON in AUDIT_HEADERS (an Authorization header, say).
import { auditServer } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs URL');
  process.exit(2);
}
const extra = JSON.parse(process.env.AUDIT_HEADERS || 'null') ?? {};
const fetchFn = (input, init = {}) => {
  const headers = new Headers(init.headers);
  for (const [k, v] of Object.entries(extra)) headers.set(k, v);
  return fetch(input, { ...init, headers });
};

const results = await auditServer({ url, fetchFn });
for (const r of results) {
  const out = { id: r.id, name: r.name, status: r.status };
  if (r.status !== 'ok') {
    out.reason = r.reason;
    if (r.response) {
      out.responseStatus = r.response.status;
      out.responseContentType = r.response.headers.get('content-type');
      try {
        out.responseBody = await r.response.text();
      } catch {
        // a body the audit read already
      }
    }
  }
  console.log(JSON.stringify(out));
}
