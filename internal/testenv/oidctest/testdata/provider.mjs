// A real OpenID provider (the certified npm package oidc-provider) for the
// tests and the README's walkthrough: client-credentials clients whose
// access tokens are JWTs (RFC 9068) for one audience. Settings come from
// the environment:
//
//   OIDC_PORT            the port (default 9400)
//   OIDC_HOST            the address to listen on (default 127.0.0.1; the
//                        compose stack's container listens on 0.0.0.0)
//   OIDC_ISSUER          the issuer (default http://127.0.0.1:OIDC_PORT)
//   OIDC_AUDIENCE        the resource (API) the tokens are for (default
//                        urn:shopstack:inventory); a client may ask for
//                        another with resource=…, and gets that audience
//   OIDC_JWKS_FILE       the private signing keys, a JWK Set (the first key
//                        of each algorithm signs); without it one RS256 key
//                        is made at start, so a restart rotates it
//   OIDC_CLIENTS_FILE    the clients, a JSON array of {client_id,
//                        client_secret, scope}; without it the demo clients
//                        below
//   OIDC_TOKEN_TTL       access token lifetime in seconds (default 600)
//
// Once it serves it prints "oidc-provider listening on <issuer>".
import { readFileSync } from 'node:fs';
import { generateKeyPair, exportJWK } from 'jose';
import Provider from 'oidc-provider';

const port = Number(process.env.OIDC_PORT || 9400);
const host = process.env.OIDC_HOST || '127.0.0.1';
const issuer = process.env.OIDC_ISSUER || `http://127.0.0.1:${port}`;
const audience = process.env.OIDC_AUDIENCE || 'urn:shopstack:inventory';
const ttl = Number(process.env.OIDC_TOKEN_TTL || 600);
const scopes = ['inventory:read', 'inventory:write', 'inventory:admin'];

async function signingKeys() {
  if (process.env.OIDC_JWKS_FILE) {
    return JSON.parse(readFileSync(process.env.OIDC_JWKS_FILE, 'utf8'));
  }
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { keys: [{ ...jwk, alg: 'RS256', use: 'sig', kid: `demo-${Date.now()}` }] };
}

// The demo clients: one per role, and one the provider knows that may ask
// for no inventory scope.
const demoClients = [
  { client_id: 'shelf-app', client_secret: 'shelf-app-secret', scope: 'inventory:read' },
  { client_id: 'pos-1', client_secret: 'pos-1-secret', scope: 'inventory:read inventory:write' },
  { client_id: 'ops', client_secret: 'ops-secret', scope: 'inventory:read inventory:write inventory:admin' },
  { client_id: 'mailer', client_secret: 'mailer-secret', scope: '' },
];

const clients = (process.env.OIDC_CLIENTS_FILE
  ? JSON.parse(readFileSync(process.env.OIDC_CLIENTS_FILE, 'utf8'))
  : demoClients
).map((c) => ({
  client_id: c.client_id,
  client_secret: c.client_secret,
  scope: c.scope || undefined,
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  token_endpoint_auth_method: c.token_endpoint_auth_method || 'client_secret_basic',
}));

const jwks = await signingKeys();
// Access tokens are signed by the first key of the first algorithm listed.
const alg = jwks.keys[0].alg || 'RS256';

const provider = new Provider(issuer, {
  jwks,
  clients,
  scopes,
  cookies: { keys: ['inventory-test-provider-cookie-key'] },
  ttl: {
    ClientCredentials: ttl,
    AccessToken: ttl,
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: false },
    revocation: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => audience,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resource) => ({
        scope: scopes.join(' '),
        audience: resource,
        accessTokenTTL: ttl,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg } },
      }),
    },
  },
});
provider.proxy = false;

const server = provider.listen(port, host, () => {
  console.log(`oidc-provider listening on ${issuer}`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
