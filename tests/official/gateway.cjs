// A gateway in front of one Tally for auth-js's suite, standing where the suite expects a
// Supabase CLI (:54321) or one of its Docker GoTrue instances (:9999 …):
//
//   node gateway.cjs <port> <tally url> <path prefix> <jwt secret> [signing keys file] [anon key]
//
// - Tokens the suite signs with its own RS256 test key (`signing_keys.json`, matched by `kid`
//   and verified with the key's public half) are signed again with HS256 and the instance's
//   secret, claims unchanged: Tally verifies HS256 only.
// - The Docker instances are bare GoTrues, reached without `/auth/v1`: the prefix is added. A
//   request without a key (which GoTrue and the CLI's /auth/v1 take) gets the anon key.
// Everything else passes through unchanged, bodies streamed both ways.
const http = require('node:http')
const crypto = require('node:crypto')
const fs = require('node:fs')
const jwt = require('jsonwebtoken')

const [port, target, prefix, secret, keysFile, anonKey] = process.argv.slice(2)
const upstream = new URL(target)

// kid → public key of the suite's RS256 test keys.
const publicKeys = new Map()
if (keysFile && keysFile !== '-') {
  for (const jwk of JSON.parse(fs.readFileSync(keysFile, 'utf8'))) {
    if (jwk.kty === 'RSA') publicKeys.set(jwk.kid, crypto.createPublicKey({ key: jwk, format: 'jwk' }))
  }
}

/** An RS256 token of the suite's key, signed again with HS256; anything else as it was. */
function resign(token) {
  const decoded = jwt.decode(token, { complete: true })
  const key = decoded && decoded.header.alg === 'RS256' && publicKeys.get(decoded.header.kid)
  if (!key) return token
  try {
    const claims = jwt.verify(token, key, { algorithms: ['RS256'], ignoreExpiration: true })
    return jwt.sign(claims, secret, { algorithm: 'HS256', noTimestamp: !('iat' in claims) })
  } catch {
    return token
  }
}

const server = http.createServer((req, res) => {
    const headers = { ...req.headers, host: upstream.host }
    if (headers.apikey) headers.apikey = resign(headers.apikey)
    else if (anonKey) headers.apikey = anonKey
    const bearer = /^Bearer (.+)$/i.exec(headers.authorization ?? '')
    if (bearer) headers.authorization = `Bearer ${resign(bearer[1])}`
    const forward = http.request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: `${prefix === '-' ? '' : prefix}${req.url}`,
        headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode, answer.headers)
        answer.pipe(res)
      }
    )
    forward.on('error', (e) => {
      res.writeHead(502, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ msg: `gateway: ${e.message}` }))
    })
    req.pipe(forward)
})
// `localhost` may be either family: listen on both loopbacks.
server.listen({ port: Number(port), host: '::', ipv6Only: false })
