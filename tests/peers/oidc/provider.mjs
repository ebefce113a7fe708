// A real OpenID Connect provider (oidc-provider, certified) for the SSO tests. Usage:
//   node provider.mjs PORT REDIRECT_URI
// One confidential client "clearsight" (secret "clearsight-test-secret") with REDIRECT_URI; the
// development login page (any password) and accounts whose claims carry groups:
//   alice -> groups [sre, payments], email alice@example.test
//   bob   -> groups [payments]
//   eve   -> groups [] (no mapped group)
// Prints "ready <issuer>" once listening on 127.0.0.1.
import Provider from 'oidc-provider';

const [port, redirectUri] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const accounts = {
  alice: { email: 'alice@example.test', groups: ['sre', 'payments'] },
  bob: { email: 'bob@example.test', groups: ['payments'] },
  eve: { email: 'eve@example.test', groups: [] },
};

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'clearsight',
    client_secret: 'clearsight-test-secret',
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  pkce: { required: () => true },
  claims: { openid: ['sub'], email: ['email'], groups: ['groups'], profile: ['preferred_username'] },
  conformIdTokenClaims: false, // the requested scopes' claims go into the ID token too
  features: { devInteractions: { enabled: true } },
  findAccount: (ctx, id) => {
    const a = accounts[id];
    if (!a) return undefined;
    return { accountId: id, claims: () => ({ sub: id, preferred_username: id, ...a }) };
  },
  cookies: { keys: ['clearsight-test-cookie-key'] },
});
provider.proxy = false;
provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});
