// A gateway in front of one Tally for auth-js's suite, standing where the suite expects a
// Supabase CLI (:54321) or one of its Docker GoTrue instances (:9999 …):
//
//   node gateway.cjs <port> <tally url> <path prefix> [anon key]
//
// The Docker instances are bare GoTrues, reached without `/auth/v1`: the prefix is added. A
// request without a key (which GoTrue and the CLI's /auth/v1 take) gets the anon key.
// Everything else passes through unchanged, bodies streamed both ways (tokens the suite signs
// with its RS256 test key verify in Tally, which has imported that key).
const http = require('node:http')

const [port, target, prefix, anonKey] = process.argv.slice(2)
const upstream = new URL(target)

const server = http.createServer((req, res) => {
    const headers = { ...req.headers, host: upstream.host }
    if (!headers.apikey && anonKey) headers.apikey = anonKey
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
