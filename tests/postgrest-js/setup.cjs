// The suite talks to a PostgREST at http://localhost:3000 (older checkouts) or the Supabase
// CLI's http://localhost:54321/rest/v1 (newer ones) that needs no key; here every such request
// goes to Tally's /rest/v1 with the anon key, as supabase-js would send it.
const target = `${process.env.TALLY_URL}/rest/v1`
const key = process.env.TALLY_ANON_KEY
const send = globalThis.fetch

globalThis.fetch = (input, init = {}) => {
  const request = input instanceof Request ? input : null
  const url = String(request ? request.url : input)
    .replace(/^http:\/\/localhost:54321\/rest\/v1/, target)
    .replace(/^http:\/\/localhost:3000/, target)
  const headers = new Headers(init.headers ?? request?.headers)
  if (!headers.has('apikey')) headers.set('apikey', key)
  if (!headers.has('authorization')) headers.set('authorization', `Bearer ${key}`)
  return send(request ? new Request(url, request) : url, { ...init, headers })
}
