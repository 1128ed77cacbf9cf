// Development OpenID Connect provider standing in for ATLAS IAM on 127.0.0.1.
//
// A real OIDC implementation (npm oidc-provider) with a login form that checks passwords, demo accounts whose
// `groups` and `wlcg.groups` claims look like IAM's, and one confidential client (the hub). Logout at the hub ends the
// session here too (RP-initiated logout: end_session_endpoint, with the hub's post-logout redirect registered).
// Access tokens are JWTs (RS256, signed with the provider's key, audience `access_token_audience`), as IAM issues
// them, so that relying services (rucio) validate them themselves; as at IAM, userinfo accepts them too.
// Usage: node provider.mjs CONFIG.json   (the file is written by `af.tools.local`; it holds the demo passwords)
//
// CONFIG.json: {"issuer": "http://127.0.0.1:5556", "host": "127.0.0.1", "port": 5556,
//   "node_modules": "/path/to/node_modules" (where npm installed oidc-provider; this script may live elsewhere),
//   "keys_file": "state/oidc/keys.json", "access_token_ttl": 600, "access_token_audience": "rucio",
//   "tls_cert": "cert.pem", "tls_key": "key.pem" (optional: https, for relying services that accept only https
//   issuers, such as rucio),
//   "clients": [{"client_id": ..., "client_secret": ..., "redirect_uris": [...], "post_logout_redirect_uris": [...]}],
//   "accounts": {"alice": {"password": ..., "email": ..., "groups": ["atlas"]}}}
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

// The package is imported from the folder named in the configuration, not from this script's location, so that
// the script runs from wherever the facility's Python package is installed.
async function importPackage(nodeModules, name) {
  const folder = path.join(nodeModules, name);
  const manifest = JSON.parse(fs.readFileSync(path.join(folder, 'package.json'), 'utf8'));
  return import(pathToFileURL(path.join(folder, manifest.main || 'index.js')).href);
}

function readConfig(file) {
  let config;
  try {
    config = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read provider configuration ${file}: ${err.message}`);
  }
  for (const key of ['issuer', 'host', 'port', 'keys_file', 'clients', 'accounts']) {
    if (config[key] === undefined) throw new Error(`provider configuration ${file} lacks "${key}"`);
  }
  return config;
}

// Signing and cookie keys survive restarts so that issued tokens and sessions stay valid.
function loadOrCreateKeys(file) {
  if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8'));
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: crypto.randomUUID(), use: 'sig', alg: 'RS256' };
  const keys = { jwks: { keys: [jwk] }, cookies: [crypto.randomBytes(32).toString('hex')] };
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(keys), { mode: 0o600 });
  return keys;
}

// IAM sends group names without a slash in `groups` and with a leading slash in `wlcg.groups`.
function accountClaims(username, account) {
  const groups = account.groups || [];
  return {
    sub: username,
    preferred_username: username,
    name: account.name || username,
    email: account.email || `${username}@example.org`,
    email_verified: true,
    groups,
    'wlcg.groups': groups.map((g) => `/${g}`),
  };
}

// The claims of `scopes` (a set) from `claims`, as userinfo answers them.
function claimsOfScopes(scopeClaims, scopes, claims) {
  const names = new Set([...scopes].flatMap((scope) => scopeClaims[scope] || []));
  return Object.fromEntries(Object.entries(claims).filter(([name]) => names.has(name)));
}

// The payload of a JWT access token this provider signed and that is still valid, else undefined.
// oidc-provider's userinfo refuses tokens with an audience; IAM's userinfo accepts its JWT access tokens.
function verifiedAccessToken(token, publicKeys, issuer) {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  let header;
  let payload;
  try {
    header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
    payload = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  const key = publicKeys.get(header.kid);
  if (header.alg !== 'RS256' || !key) return undefined;
  const signed = crypto.verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), key, Buffer.from(parts[2], 'base64url'));
  const now = Math.floor(Date.now() / 1000);
  if (!signed || payload.iss !== issuer || !(payload.exp > now)) return undefined;
  return payload;
}

function sendJson(res, status, body, headers = {}) {
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  res.end(JSON.stringify(body));
}

// userinfo for JWT access tokens (GET or POST with the bearer header); opaque tokens go to oidc-provider.
function jwtUserinfo(req, res, { publicKeys, issuer, accounts, scopeClaims }) {
  const [kind, token] = (req.headers.authorization || '').split(' ');
  if (kind?.toLowerCase() !== 'bearer' || !token || token.split('.').length !== 3) return false;
  const payload = verifiedAccessToken(token, publicKeys, issuer);
  const scopes = new Set((payload?.scope || '').split(' '));
  const account = payload && accounts[payload.sub];
  if (!account || !scopes.has('openid')) {
    sendJson(res, 401, { error: 'invalid_token' }, { 'WWW-Authenticate': 'Bearer error="invalid_token"' });
    return true;
  }
  sendJson(res, 200, claimsOfScopes(scopeClaims, scopes, accountClaims(payload.sub, account)));
  return true;
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function loginPage(uid, clientId, message) {
  const error = message ? `<p class="error" role="alert">${escapeHtml(message)}</p>` : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Development IAM: sign in</title>
<style>body{font-family:sans-serif;max-width:24em;margin:4em auto}label,input,button{display:block;width:100%;margin:.4em 0}
.error{color:#b00}</style></head>
<body><h1>Development IAM</h1><p>Sign in to <b>${escapeHtml(clientId)}</b> (stand-in for ATLAS IAM).</p>${error}
<form method="post" action="/interaction/${escapeHtml(uid)}" autocomplete="off">
<label for="username">Username</label><input id="username" name="username" required autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" required>
<button type="submit" id="sign-in">Sign in</button></form></body></html>`;
}

// RP-initiated logout: the hub asked for it, so the confirmation form (with its CSRF token) is sent at once;
// the button is there for browsers without JavaScript.
async function logoutSource(ctx, form) {
  ctx.type = 'html';
  ctx.body = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Development IAM: signing out</title></head>
<body><h1>Development IAM</h1><p>Signing you out…</p>${form}
<input type="hidden" form="op.logoutForm" name="logout" value="yes">
<button type="submit" form="op.logoutForm" id="sign-out">Sign out</button>
<script>document.getElementById('op.logoutForm').submit();</script></body></html>`;
}

function readForm(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => {
      body += chunk;
      if (body.length > 10000) reject(new Error('form too large'));
    });
    req.on('end', () => resolve(new URLSearchParams(body)));
    req.on('error', reject);
  });
}

function passwordMatches(account, password) {
  if (!account) return false;
  const expected = crypto.createHash('sha256').update(account.password).digest();
  const given = crypto.createHash('sha256').update(password || '').digest();
  return crypto.timingSafeEqual(expected, given);
}

function sendHtml(res, status, html) {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(html);
}

async function handleInteraction(provider, accounts, req, res) {
  const details = await provider.interactionDetails(req, res);
  const { uid, prompt, params } = details;
  if (prompt.name !== 'login') {
    // Consent is granted by loadExistingGrant below (the hub is a first-party client), so only login is asked.
    sendHtml(res, 400, `<p>unexpected prompt ${escapeHtml(prompt.name)}</p>`);
    return;
  }
  if (req.method === 'GET') {
    sendHtml(res, 200, loginPage(uid, params.client_id));
    return;
  }
  if (req.method !== 'POST') {
    sendHtml(res, 405, '<p>method not allowed</p>');
    return;
  }
  const form = await readForm(req);
  const username = (form.get('username') || '').trim();
  if (!passwordMatches(accounts[username], form.get('password'))) {
    console.log(`login refused for "${username}"`);
    sendHtml(res, 401, loginPage(uid, params.client_id, 'Invalid username or password.'));
    return;
  }
  console.log(`login accepted for "${username}"`);
  await provider.interactionFinished(req, res, { login: { accountId: username } }, { mergeWithLastSubmission: false });
}

async function main() {
  const configFile = process.argv[2];
  if (!configFile) throw new Error('usage: node provider.mjs CONFIG.json');
  const config = readConfig(configFile);
  const { default: Provider } = await importPackage(config.node_modules, 'oidc-provider');
  const keys = loadOrCreateKeys(config.keys_file);
  const accounts = config.accounts;
  const scopeClaims = {
    openid: ['sub'],
    profile: ['preferred_username', 'name', 'groups'],
    email: ['email', 'email_verified'],
    'wlcg.groups': ['wlcg.groups'],
  };
  const scopes = ['openid', 'offline_access', ...Object.keys(scopeClaims)];
  const audience = config.access_token_audience || 'rucio';
  const resource = 'urn:af:access-tokens'; // the one resource indicator (an absolute URI); its audience differs
  const publicKeys = new Map(
    keys.jwks.keys.map((jwk) => [jwk.kid, crypto.createPublicKey({ key: jwk, format: 'jwk' })]),
  );

  const provider = new Provider(config.issuer, {
    clients: config.clients.map((client) => ({
      client_id: client.client_id,
      client_secret: client.client_secret,
      redirect_uris: client.redirect_uris,
      post_logout_redirect_uris: client.post_logout_redirect_uris || [],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    })),
    jwks: keys.jwks,
    cookies: { keys: keys.cookies },
    claims: scopeClaims,
    scopes,
    conformIdTokenClaims: false,
    clockTolerance: 0,
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: { enabled: true, logoutSource },
      // every access token is for `audience` (one resource server), a JWT, also after a refresh
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => resource,
        useGrantedResource: async () => true,
        getResourceServerInfo: async () => ({
          scope: scopes.join(' '),
          audience,
          accessTokenFormat: 'jwt',
          accessTokenTTL: config.access_token_ttl || 600,
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    ttl: { AccessToken: config.access_token_ttl || 600, IdToken: 3600, RefreshToken: 14 * 24 * 3600 },
    async findAccount(_ctx, sub) {
      const account = accounts[sub];
      if (!account) return undefined;
      return { accountId: sub, claims: async () => accountClaims(sub, account) };
    },
    // IAM issues refresh tokens to the hub without an explicit offline_access consent screen.
    async issueRefreshToken(_ctx, client) {
      return client.grantTypeAllowed('refresh_token');
    },
    // First-party client: grant what it asks for instead of showing a consent screen.
    async loadExistingGrant(ctx) {
      const existing = ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (existing) {
        const grant = await ctx.oidc.provider.Grant.find(existing);
        if (grant) return grant;
      }
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      const requested = [...ctx.oidc.requestParamScopes].join(' ');
      grant.addOIDCScope(requested);
      grant.addResourceScope(resource, requested);
      await grant.save();
      return grant;
    },
  });

  const callback = provider.callback();
  const userinfoPath = '/me'; // oidc-provider's default route, announced as userinfo_endpoint
  const userinfoContext = { publicKeys, issuer: config.issuer, accounts, scopeClaims };
  const tls = config.tls_cert ? { cert: fs.readFileSync(config.tls_cert), key: fs.readFileSync(config.tls_key) } : null;
  const handler = (req, res) => {
    if (req.url.split('?')[0] === userinfoPath && jwtUserinfo(req, res, userinfoContext)) return;
    if (req.url.startsWith('/interaction/')) {
      handleInteraction(provider, accounts, req, res).catch((err) => {
        console.error(`interaction failed: ${err.message}`);
        sendHtml(res, 400, `<p>login failed: ${escapeHtml(err.message)}</p>`);
      });
      return;
    }
    callback(req, res);
  };
  const server = tls ? https.createServer(tls, handler) : http.createServer(handler);
  server.listen(config.port, config.host, () => {
    console.log(`development OIDC provider listening on ${config.issuer}`);
  });
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

await main();
